import { BulkString } from '../model/bulk-string.ts'

export interface BulkOptions {
  /** the member name whose long string values are kept as bytes */
  key: string
  /** shorter values are ordinary strings */
  minBytes: number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
// decodes to a string starting with U+0000; only used when the text has no `\u0000` of its own
const SENTINEL = '\u0000sluice-bulk:'
const SENTINEL_JSON = '"\\u0000sluice-bulk:'
const NUL_ESCAPE = Buffer.from('\\u0000')

function isSpace (b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

/** The index of the quote closing the string literal opened at `open`, or -1. */
function closingQuote (buf: Buffer, open: number): number {
  let q = buf.indexOf(QUOTE, open + 1)
  while (q !== -1) {
    let slashes = 0
    for (let i = q - 1; i > open && buf[i] === BACKSLASH; i--) slashes++
    if ((slashes & 1) === 0) return q
    q = buf.indexOf(QUOTE, q + 1)
  }
  return -1
}

/** No escape and no control character: the literal's bytes are its string's UTF-8. */
function isPlain (buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i] as number
    if (b < 0x20 || b === BACKSLASH) return false
  }
  return true
}

/**
 * JSON.parse of the UTF-8 `buf`, except that the string values of members named `opts.key`
 * (below the top level) that are at least `opts.minBytes` long and contain no escape come
 * back as BulkString views of `buf` instead of strings. Only the bytes around those values are
 * turned into a JS string. Throws what JSON.parse throws for malformed JSON: the values it
 * replaces are well-formed string literals, so the substitution changes no verdict.
 *
 * The scan follows JSON's lexical structure: outside a string, a quote always opens one, so
 * skipping from each opening quote to its unescaped closing quote visits every literal, and
 * the bytes between literals give the nesting depth and whether a literal is a member name.
 */
export function parseWithBulkStrings (buf: Buffer, opts: BulkOptions): unknown {
  if (buf.length < opts.minBytes || buf.includes(NUL_ESCAPE)) return JSON.parse(buf.toString('utf8'))
  const bulk: Array<[number, number]> = []
  let depth = 0
  let pos = 0
  let lastKey: string | null = null
  let lastKeyEnd = -1
  while (pos < buf.length) {
    const open = buf.indexOf(QUOTE, pos)
    if (open === -1) break
    for (let i = pos; i < open; i++) {
      const b = buf[i]
      if (b === 0x7b || b === 0x5b) depth++
      else if (b === 0x7d || b === 0x5d) depth--
    }
    const close = closingQuote(buf, open)
    if (close === -1) break // unterminated: JSON.parse reports it
    let next = close + 1
    while (next < buf.length && isSpace(buf[next] as number)) next++
    if (buf[next] === COLON) {
      lastKey = close - open - 1 <= opts.key.length ? buf.toString('utf8', open + 1, close) : null
      lastKeyEnd = close
    } else if (lastKey === opts.key && depth > 1 && close - open - 1 >= opts.minBytes && followsColon(buf, lastKeyEnd, open) && isPlain(buf, open + 1, close)) {
      bulk.push([open, close])
    }
    pos = close + 1
  }
  if (bulk.length === 0) return JSON.parse(buf.toString('utf8'))
  let text = ''
  let from = 0
  for (let i = 0; i < bulk.length; i++) {
    const [open, close] = bulk[i] as [number, number]
    text += buf.toString('utf8', from, open) + SENTINEL_JSON + String(i) + '"'
    from = close + 1
  }
  text += buf.toString('utf8', from)
  const parsed = JSON.parse(text) as unknown
  const views = bulk.map(([open, close]) => new BulkString(buf.subarray(open + 1, close)))
  restore(parsed, opts.key, views)
  return parsed
}

/** Only whitespace and one colon between the member name and the value. */
function followsColon (buf: Buffer, keyEnd: number, open: number): boolean {
  let colons = 0
  for (let i = keyEnd + 1; i < open; i++) {
    const b = buf[i] as number
    if (b === COLON) colons++
    else if (!isSpace(b)) return false
  }
  return colons === 1
}

function restore (v: unknown, key: string, views: BulkString[]): void {
  if (typeof v !== 'object' || v === null) return
  if (Array.isArray(v)) {
    for (const item of v) restore(item, key, views)
    return
  }
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) {
    const child = o[k]
    if (k === key && typeof child === 'string' && child.startsWith(SENTINEL)) o[k] = views[Number(child.slice(SENTINEL.length))]
    else restore(child, key, views)
  }
}

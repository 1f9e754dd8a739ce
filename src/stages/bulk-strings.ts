import { BulkString } from '../model/bulk-string.ts'
import { scanJson } from './json-scan.ts'

export interface BulkOptions {
  /** the member name whose long string values are kept as bytes */
  key: string
  /** shorter values are ordinary strings */
  minBytes: number
}

// decodes to a string starting with U+0000, which no message holds (json-scan.ts rejects `\u0000`)
const SENTINEL = '\u0000sluice-bulk:'
const SENTINEL_JSON = '"\\u0000sluice-bulk:'

/**
 * JSON.parse of the UTF-8 `buf`, except that the string literals at `bulk` (json-scan.ts found
 * them: values of members named `key`, below the top level, long, without escapes) come back
 * as BulkString views of `buf` instead of strings. Only the bytes around those values are
 * turned into a JS string. Throws what JSON.parse throws for malformed JSON: the values it
 * replaces are well-formed string literals, so the substitution changes no verdict.
 */
export function parseBulk (buf: Buffer, bulk: ReadonlyArray<readonly [number, number, boolean]>, key: string): unknown {
  if (bulk.length === 0) return JSON.parse(buf.toString('utf8'))
  let text = ''
  let from = 0
  for (let i = 0; i < bulk.length; i++) {
    const [open, close] = bulk[i] as readonly [number, number, boolean]
    text += buf.toString('utf8', from, open) + SENTINEL_JSON + String(i) + '"'
    from = close + 1
  }
  text += buf.toString('utf8', from)
  const parsed = JSON.parse(text) as unknown
  const views = bulk.map(([open, close, base64]) => new BulkString(buf.subarray(open + 1, close), base64))
  restore(parsed, key, views)
  return parsed
}

/** scanJson + parseBulk, with nesting up to `maxDepth` (json-scan.ts's checks included). */
export function parseWithBulkStrings (buf: Buffer, opts: BulkOptions, maxDepth = 512): unknown {
  return parseBulk(buf, scanJson(buf, { maxDepth, bulk: opts }).bulk, opts.key)
}

/** Puts the views back in place of their sentinels; iterative, so no depth is too deep for it. */
function restore (root: unknown, key: string, views: BulkString[]): void {
  const todo: unknown[] = [root]
  while (todo.length > 0) {
    const v = todo.pop()
    if (typeof v !== 'object' || v === null) continue
    if (Array.isArray(v)) {
      for (const item of v) todo.push(item)
      continue
    }
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) {
      const child = o[k]
      if (k === key && typeof child === 'string' && child.startsWith(SENTINEL)) o[k] = views[Number(child.slice(SENTINEL.length))]
      else todo.push(child)
    }
  }
}

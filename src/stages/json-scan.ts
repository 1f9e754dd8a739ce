import { isUtf8 } from 'node:buffer'
import { SluiceError } from '../errors.ts'
import { BASE64, PLAIN, spanClass } from '../model/base64-bytes.ts'

/** One member of the top-level object: its name and the byte spans of its name literal and its value. */
export interface TopMember {
  readonly name: string
  /** the name's literal, quotes included: [keyStart, keyEnd) */
  readonly keyStart: number
  readonly keyEnd: number
  /** the value's text, without surrounding whitespace: [start, end) */
  readonly start: number
  readonly end: number
}

export interface ScanOptions {
  /** deeper nesting of objects and arrays is poison (SLUICE_ERR_TOO_DEEP) */
  maxDepth: number
  /** string values of members with this name, below the top level, at least minBytes long, without escapes: reported in `bulk` */
  bulk?: { key: string, minBytes: number }
}

export interface Scan {
  /** the top-level object's members in order; null when the document is not an object */
  members: TopMember[] | null
  /** [open quote, close quote, base64] of the bulk string values (ScanOptions.bulk); base64: spanClass's BASE64 */
  bulk: Array<[number, number, boolean]>
  /**
   * No byte of the message is a backslash, tab, newline or carriage return: the text of any
   * of its values is its own COPY text (copy-encoder.ts escapes nothing else; JSON allows
   * those three only as whitespace between tokens, and a backslash only in an escape)
   */
  copyPlain: boolean
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c

function isSpace (b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

/** The index of the quote closing the string literal opened at `open`, or -1. */
export function closingQuote (buf: Buffer, open: number): number {
  let q = buf.indexOf(QUOTE, open + 1)
  while (q !== -1) {
    let slashes = 0
    for (let i = q - 1; i > open && buf[i] === BACKSLASH; i--) slashes++
    if ((slashes & 1) === 0) return q
    q = buf.indexOf(QUOTE, q + 1)
  }
  return -1
}

const HEX4 = /^[0-9A-Fa-f]{4}$/

/** The code unit of the four hex digits at `at`, or -1 (malformed: JSON.parse reports it). */
function hex4 (buf: Buffer, at: number): number {
  const s = buf.toString('latin1', at, Math.min(at + 4, buf.length))
  return HEX4.test(s) ? Number.parseInt(s, 16) : -1
}

/**
 * The escapes of one string literal's content [from, to) that no column can hold as produced:
 * `\u0000` (PostgreSQL text and jsonb have no NUL) and a surrogate escape that is not half of a
 * pair (JSON.parse would make a lone UTF-16 surrogate, which has no UTF-8 form: a replacement
 * character would be stored instead). `i` is the first backslash at or after `from` (or -1);
 * returns the first one at or after `to`, so that a scan looks for each backslash once.
 */
function checkEscapes (buf: Buffer, i: number, to: number): number {
  while (i !== -1 && i < to) {
    if (buf[i + 1] === 0x75) { // \u
      const cu = hex4(buf, i + 2)
      if (cu === 0) throw new SluiceError('SLUICE_ERR_NUL', `a string holds \\u0000 (at byte ${i}), which PostgreSQL text and jsonb cannot store`)
      if (cu >= 0xd800 && cu <= 0xdbff) {
        const low = buf[i + 6] === BACKSLASH && buf[i + 7] === 0x75 ? hex4(buf, i + 8) : -1
        if (low < 0xdc00 || low > 0xdfff) throw loneSurrogate(buf, i)
        i = buf.indexOf(BACKSLASH, i + 12)
        continue
      }
      if (cu >= 0xdc00 && cu <= 0xdfff) throw loneSurrogate(buf, i)
      i = buf.indexOf(BACKSLASH, i + 6)
      continue
    }
    i = buf.indexOf(BACKSLASH, i + 2)
  }
  return i
}

function loneSurrogate (buf: Buffer, at: number): SluiceError {
  return new SluiceError('SLUICE_ERR_UTF8', `a string holds the lone surrogate escape ${buf.toString('latin1', at, at + 6)} (at byte ${at}), which is not a Unicode character`)
}

/** The name of a member from its literal [open, close]: plain bytes, or JSON.parse for one with escapes. */
function memberName (buf: Buffer, open: number, close: number, escaped: boolean): string {
  return escaped ? JSON.parse(buf.toString('utf8', open, close + 1)) as string : plainText(buf, open + 1, close)
}

// Short ASCII texts seen before, by a hash of their bytes: the member names of one kind of
// message recur in every message, and decoding each into a fresh string was 2% of the
// worker's CPU (bench/hot-path.ts). Emptied when full, so hostile names cost memory only up
// to the bound and the names in use come back.
const NAMES = new Map<number, string>()
const NAMES_MAX = 4096
const NAME_BYTES_MAX = 64

/** bytes [from, to) of buf as text (UTF-8, no escapes to undo), a string seen before when there is one. */
export function plainText (buf: Buffer, from: number, to: number): string {
  const len = to - from
  if (len > NAME_BYTES_MAX) return buf.toString('utf8', from, to)
  const h = textHash(buf, from, to)
  const seen = NAMES.get(h)
  if (seen !== undefined && sameBytes(seen, buf, from, to)) return seen
  const text = buf.toString('utf8', from, to)
  // one UTF-16 unit per byte: ASCII only, so that sameBytes can compare units with bytes
  if (text.length === len) {
    if (NAMES.size >= NAMES_MAX) NAMES.clear()
    NAMES.set(h, text)
  }
  return text
}

/** FNV-1a-like hash of bytes [from, to) (exported for the tests' collisions). */
export function textHash (buf: Buffer, from: number, to: number): number {
  let h = to - from
  for (let k = from; k < to; k++) h = Math.imul(h ^ (buf[k] as number), 0x01000193)
  return h
}

/** Whether the ASCII string `s` is bytes [from, to) of buf. */
function sameBytes (s: string, buf: Buffer, from: number, to: number): boolean {
  if (s.length !== to - from) return false
  for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) !== buf[from + k]) return false
  return true
}

/**
 * One pass over a message's bytes before JSON.parse sees them, following JSON's lexical
 * structure (outside a string, a quote always opens one; skipping from each opening quote to
 * its unescaped closing quote visits every literal). It rejects, as poison:
 *  - bytes that are not UTF-8 (SLUICE_ERR_UTF8): never replaced by U+FFFD;
 *  - nesting deeper than `maxDepth` (SLUICE_ERR_TOO_DEEP): nothing recursive sees it;
 *  - `\u0000` (SLUICE_ERR_NUL) and lone surrogate escapes (SLUICE_ERR_UTF8).
 * and reports where each top-level member's value is, so that what is stored is the
 * producer's own text (numbers exactly as sent), and the bulk string candidates.
 * Malformed JSON is not judged here: JSON.parse reports it afterwards.
 */
export function scanJson (buf: Buffer, opts: ScanOptions): Scan {
  if (!isUtf8(buf)) throw new SluiceError('SLUICE_ERR_UTF8', `the message is not valid UTF-8 (${firstBadByte(buf)})`)
  const max = opts.maxDepth
  const bulkKey = opts.bulk?.key
  const bulkMin = opts.bulk?.minBytes ?? Infinity
  const bulk: Array<[number, number, boolean]> = []
  let members: TopMember[] | null = null
  let depth = 0
  let seenValue = false
  // the top-level member being read
  let name: string | null = null
  let keyStart = -1
  let keyEnd = -1
  let valueStart = -1
  let awaitingKey = false
  let awaitingValue = false
  // after the last byte that was not whitespace
  let lastEnd = 0
  // bulk candidates: the last member name below the top level and where its literal ended
  let lastKey: string | null = null
  let lastKeyEnd = -1
  // the first backslash not yet passed, or -1: found once, not once per literal (an unbounded
  // indexOf per literal scanned the rest of the message again for each of them)
  let slash = buf.indexOf(BACKSLASH)
  let copyPlain = slash === -1
  const n = buf.length
  let i = 0
  while (i < n) {
    const b = buf[i] as number
    if (b === QUOTE) {
      const close = closingQuote(buf, i)
      if (close === -1) break // unterminated: JSON.parse reports it
      if (slash !== -1 && slash < i) slash = buf.indexOf(BACKSLASH, i) // one outside a literal: malformed, JSON.parse reports it
      const escaped = slash !== -1 && slash < close
      if (escaped) slash = checkEscapes(buf, slash, close)
      let next = close + 1
      while (next < n && isSpace(buf[next] as number)) next++
      const isName = buf[next] === COLON
      if (depth === 1 && members !== null && awaitingKey && isName) {
        name = memberName(buf, i, close, escaped)
        keyStart = i
        keyEnd = close + 1
        awaitingKey = false
      } else if (awaitingValue) {
        valueStart = i
        awaitingValue = false
      }
      if (bulkKey !== undefined) {
        if (isName) {
          lastKey = close - i - 1 <= bulkKey.length ? plainText(buf, i + 1, close) : null
          lastKeyEnd = close
        } else if (lastKey === bulkKey && depth > 1 && close - i - 1 >= bulkMin && followsColon(buf, lastKeyEnd, i) && !escaped) {
          // no control character, so its bytes are its text; whether it is base64 comes with the same reads
          const cls = spanClass(buf, i + 1, close)
          if ((cls & PLAIN) !== 0) bulk.push([i, close, (cls & BASE64) !== 0])
        }
      }
      seenValue = true
      lastEnd = close + 1
      i = close + 1
      continue
    }
    if (isSpace(b)) {
      if (b !== 0x20) copyPlain = false
      i++
      continue
    }
    if (awaitingValue) { valueStart = i; awaitingValue = false }
    if (b === 0x7b || b === 0x5b) { // { [
      if (++depth > max) throw new SluiceError('SLUICE_ERR_TOO_DEEP', `the message nests objects and arrays deeper than ${max} levels (at byte ${i})`)
      if (depth === 1 && !seenValue) {
        if (b === 0x7b) members = []
        awaitingKey = b === 0x7b
      }
      seenValue = true
    } else if (b === 0x7d || b === 0x5d) { // } ]
      if (depth === 1 && members !== null && name !== null) {
        members.push({ name, keyStart, keyEnd, start: valueStart, end: lastEnd })
        name = null
      }
      depth--
    } else if (depth === 1 && members !== null) {
      if (b === COLON && name !== null) awaitingValue = true
      else if (b === COMMA) {
        if (name !== null) members.push({ name, keyStart, keyEnd, start: valueStart, end: lastEnd })
        name = null
        awaitingKey = true
      }
    } else {
      seenValue = true
    }
    lastEnd = i + 1
    i++
  }
  return { members, bulk, copyPlain }
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

/** Where the first byte sequence that is not UTF-8 starts, for the dead letter's reason. */
function firstBadByte (buf: Buffer): string {
  let i = 0
  while (i < buf.length) {
    const b = buf[i] as number
    if (b < 0x80) { i++; continue }
    const len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0
    if (len === 0 || i + len > buf.length || !isUtf8(buf.subarray(i, i + len))) break
    i += len
  }
  return `bad byte 0x${(buf[i] ?? 0).toString(16).padStart(2, '0')} at ${i}`
}

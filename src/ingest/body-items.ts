import { SluiceError } from '../errors.ts'

/** How a POST /events body holds its events. */
export type BodyFormat = 'json' | 'ndjson'

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const NEWLINE = 0x0a

function isSpace (b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

function trim (buf: Buffer, start: number, end: number): Buffer {
  while (start < end && isSpace(buf[start])) start++
  while (end > start && isSpace(buf[end - 1])) end--
  return buf.subarray(start, end)
}

function tooMany (max: number): SluiceError {
  return new SluiceError('SLUICE_ERR_INGEST_BODY', `more than ${max} events in one request (SLUICE_INGEST_MAX_EVENTS); split the batch`)
}

/**
 * The events of a body, each as the producer's own bytes (views of `body`, never re-serialised:
 * stored means as produced). `json`: one event, or a JSON array of events; `ndjson`: one event
 * per non-blank line. The items are not parsed here: each goes through the pipeline's decode
 * stage, which reports a malformed one as SLUICE_ERR_DECODE like a Kafka message. Only what
 * makes the body as a whole unusable throws (SLUICE_ERR_INGEST_BODY): no event, an array that
 * does not close, more than `maxEvents`.
 */
export function splitBody (body: Buffer, format: BodyFormat, maxEvents: number): Buffer[] {
  const items = format === 'ndjson' ? splitLines(body, maxEvents) : splitJson(body, maxEvents)
  if (items.length === 0) throw new SluiceError('SLUICE_ERR_INGEST_BODY', 'the body holds no event')
  return items
}

function splitLines (body: Buffer, maxEvents: number): Buffer[] {
  const out: Buffer[] = []
  let start = 0
  while (start <= body.length) {
    let end = body.indexOf(NEWLINE, start)
    if (end === -1) end = body.length
    const line = trim(body, start, end)
    if (line.length > 0) {
      if (out.length === maxEvents) throw tooMany(maxEvents)
      out.push(line)
    }
    start = end + 1
  }
  return out
}

function splitJson (body: Buffer, maxEvents: number): Buffer[] {
  let i = 0
  while (i < body.length && isSpace(body[i])) i++
  if (i === body.length) return []
  if (body[i] !== 0x5b) return [trim(body, 0, body.length)] // not an array: one event
  return splitArray(body, i, maxEvents)
}

/**
 * The elements of the top-level array opened at `open`, found by JSON's lexical structure:
 * string literals are skipped whole (a bracket or comma inside one is text), brackets and
 * braces nest, and a comma at depth 1 ends an element.
 */
function splitArray (body: Buffer, open: number, maxEvents: number): Buffer[] {
  const out: Buffer[] = []
  let depth = 1
  let start = open + 1
  let i = open + 1
  const push = (end: number): void => {
    const item = trim(body, start, end)
    if (item.length === 0) {
      // `[]` is an empty array (no event, reported by the caller); `[1,,2]` or `[1,]` are not JSON
      if (out.length === 0 && depth === 0 && body[end] === 0x5d) return
      throw new SluiceError('SLUICE_ERR_INGEST_BODY', `the body is not a JSON array: empty element at byte ${end}`)
    }
    if (out.length === maxEvents) throw tooMany(maxEvents)
    out.push(item)
  }
  for (; i < body.length; i++) {
    const b = body[i] as number
    if (b === QUOTE) {
      i = closingQuote(body, i)
      if (i === -1) throw new SluiceError('SLUICE_ERR_INGEST_BODY', 'the body is not a JSON array: a string is not terminated')
    } else if (b === 0x5b || b === 0x7b) {
      depth++
    } else if (b === 0x5d || b === 0x7d) {
      depth--
      if (depth === 0) {
        if (b !== 0x5d) break
        push(i)
        if (trim(body, i + 1, body.length).length > 0) throw new SluiceError('SLUICE_ERR_INGEST_BODY', `the body is not a JSON array: text after its closing bracket at byte ${i + 1}`)
        return out
      }
    } else if (b === COMMA && depth === 1) {
      push(i)
      start = i + 1
    }
  }
  throw new SluiceError('SLUICE_ERR_INGEST_BODY', 'the body is not a JSON array: its brackets do not close')
}

/** The index of the quote closing the string literal opened at `open`, or -1. */
function closingQuote (buf: Buffer, open: number): number {
  for (let i = open + 1; i < buf.length; i++) {
    const b = buf[i]
    if (b === BACKSLASH) i++
    else if (b === QUOTE) return i
  }
  return -1
}

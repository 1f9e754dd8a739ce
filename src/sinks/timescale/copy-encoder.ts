import { SluiceError } from '../../errors.ts'
import type { KafkaMessage } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'

/**
 * PostgreSQL COPY text format: columns separated by tabs, rows by newlines, NULL as \N, and
 * backslash, tab, newline and carriage return escaped with a backslash. JSON columns are
 * given as JSON text (the producer's own, see EventSource). Everything else in a string
 * (quotes, emoji, U+2028) is literal in this format.
 */
const NEEDS_ESCAPE = /[\\\t\n\r]/

export function escapeCopyText (s: string): string {
  // the common case has nothing to escape: one regex test instead of four replaces
  if (!NEEDS_ESCAPE.test(s)) return s
  return s.replace(/[\\\t\n\r]/g, (c) => c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')
}

/** escapeCopyText's inverse: a column's COPY text (not `\\N`) back to the string. */
export function unescapeCopyText (s: string): string {
  if (!s.includes('\\')) return s
  return s.replace(/\\(.)/gs, (_, c: string) => c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c)
}

/** A column value: JSON columns are strings of JSON text. */
export type CopyValue = string | number | bigint | boolean | null | undefined

export function encodeCopyValue (v: CopyValue): string {
  if (v === null || v === undefined) return '\\N'
  switch (typeof v) {
    case 'string': return escapeCopyText(v)
    case 'number': return Number.isFinite(v) ? String(v) : '\\N'
    case 'bigint': return v.toString()
    default: return v ? 't' : 'f'
  }
}

/** One row, newline included. */
export function encodeCopyRow (values: readonly CopyValue[]): string {
  const n = values.length
  if (n === 0) return '\n'
  const parts = new Array<string>(n)
  for (let i = 0; i < n; i++) parts[i] = encodeCopyValue(values[i])
  // join gives one flat string; `+=` would keep a rope of ~30 pieces per buffered row
  // (bench/copy-encoder.ts), and so would `join() + '\n'`: its readers (the UTF-8 write into
  // CopyText, the id line's slices) would copy the whole line once more (bench/hot-path.ts)
  parts[n - 1] += '\n'
  return parts.join('\t')
}

/**
 * The event log's columns written by COPY, in eventCopyRow's order: the time, the id and the
 * origin first (the id line is the line's start, event-ids.ts), then the content: what two
 * copies of an event id are compared by (CONTENT_COLUMNS), the line's tail.
 */
export const EVENT_COLUMNS: readonly string[] = [
  '"timestamp"', 'event_id', 'source_topic', 'source_partition', 'source_offset', 'event_type', 'entity', 'entity_id',
  'version', 'user_name', 'workspace', 'event_data', 'metadata', 'correlation_id', 'causation_id', 'extra'
]

/** Every column of EVENT_COLUMNS but the time, the id and the origin. */
export const CONTENT_COLUMNS: readonly string[] = EVENT_COLUMNS.slice(5)

/**
 * JSON text of an object a sink made (the S3 sink's slimmed snapshot events): never a
 * producer's parsed value, whose own text is in EventSource. Anything JSON.stringify throws
 * (a cycle, a depth past the stack) is poison for this one message.
 */
function madeJson (v: object): string {
  try {
    return JSON.stringify(v)
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_ENCODE', `cannot write the event as JSON: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * One event as a COPY line in EVENT_COLUMNS order (also what the benchmark's psql baseline
 * loads). payload, metadata and extra are the producer's own JSON text when the event was
 * decoded from a message (jsonb then keeps every number exactly).
 */
export function eventCopyRow (e: EntityEvent, origin: Pick<KafkaMessage, 'topic' | 'partition' | 'offset'>): string {
  const s = e.source
  const payload = s !== undefined && s.payload === e.payload ? s.payloadJson : madeJson(e.payload)
  const metadata = e.metadata === null ? null : s !== undefined && s.metadata === e.metadata && s.metadataJson !== null ? s.metadataJson : madeJson(e.metadata)
  // one join: one flat string
  return [eventLineHead(e, origin), escapeCopyText(payload), '\t', metadata === null ? '\\N' : escapeCopyText(metadata), eventLineTail(e)].join('')
}

/** The line's columns before event_data (EVENT_COLUMNS), each with the tab after it. */
export function eventLineHead (e: EntityEvent, origin: Pick<KafkaMessage, 'topic' | 'partition' | 'offset'>): string {
  return [
    encodeCopyValue(e.timestamp), encodeCopyValue(e.eventId), encodeCopyValue(origin.topic), String(origin.partition), String(origin.offset),
    encodeCopyValue(e.eventType), encodeCopyValue(e.entity), encodeCopyValue(e.entityId), encodeCopyValue(e.version), encodeCopyValue(e.userName),
    encodeCopyValue(e.workspace), ''
  ].join('\t')
}

/** The line's columns after metadata (EVENT_COLUMNS), each with the tab before it, and the newline. */
export function eventLineTail (e: EntityEvent): string {
  return ['', encodeCopyValue(e.correlationId), encodeCopyValue(e.causationId), encodeCopyValue(e.source?.extraJson ?? null) + '\n'].join('\t')
}

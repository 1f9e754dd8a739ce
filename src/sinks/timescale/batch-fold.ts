import { EVENT_COLUMNS } from './copy-encoder.ts'

/**
 * A batch's events folded per entity in the worker, for the projection (src/state/projection.ts
 * applyBatchFold): the fold of sql/010_fold_step.sql over an entity's events in fold order is
 *   state   := (the last *_CREATED's changes, or the current state if none) || the changes of
 *              every later event that is neither *_CREATED nor *_DELETED, in order
 *   deleted := the last *_CREATED or *_DELETED decides (false, true); else unchanged
 *   the rest from the last event.
 * So PostgreSQL gets one row per entity: whether the state is reset, the payloads to merge as
 * a JSON array, the tombstone (or NULL: unchanged), the last event and the first event's
 * position (the refold test). Everything is cut from the log's COPY lines as they are: the
 * payload text is exactly what the log stores, already escaped for COPY.
 */

/** The fold table's definition (a temporary table; see projection.ts), in batchFoldLines' order. */
export const FOLD_TABLE_COLUMNS = 'entity text, entity_id text, reset boolean, payloads jsonb, deleted boolean, version bigint, updated_at timestamptz, last_event_id text, source_topic text, source_partition integer, source_offset bigint, first_partition integer, first_offset bigint'

/** Its column names, for the COPY. */
export const FOLD_COLUMNS = FOLD_TABLE_COLUMNS.split(', ').map((c) => c.split(' ')[0]).join(', ')

const col = (name: string): number => EVENT_COLUMNS.indexOf(name)
const TIME = col('"timestamp"')
const ID = col('event_id')
const TYPE = col('event_type')
const ENTITY = col('entity')
const ENTITY_ID = col('entity_id')
const VERSION = col('version')
const DATA = col('event_data')
const TOPIC = col('source_topic')
/** tab positions kept per line: up to the last column the fold cuts */
const W = Math.max(TIME, ID, TYPE, ENTITY, ENTITY_ID, VERSION, DATA) + 1
if (Math.min(TIME, ID, TYPE, ENTITY, VERSION, DATA, TOPIC) < 0 || ENTITY_ID !== ENTITY + 1) {
  throw new Error('batch-fold.ts expects the log COPY columns of the fold, entity_id right after entity')
}

const CREATED = 0
const DELETED = 1
const MERGED = 2
const NOT_HERE = 3

const NON_ASCII = /[^\x00-\x7f]/ // eslint-disable-line no-control-regex

/**
 * The event kind from the type's COPY text (escapes hold a backslash, which neither suffix
 * has, so the text's suffix is the type's). NOT_HERE for a type with a non-ASCII character:
 * PostgreSQL's upper() and JavaScript's toUpperCase() may differ there, so such a batch is
 * folded by PostgreSQL alone.
 */
function kindOf (type: string): number {
  if (NON_ASCII.test(type)) return NOT_HERE
  const t = type.toUpperCase()
  if (t.endsWith('_DELETED')) return DELETED
  if (t.endsWith('_CREATED')) return CREATED
  return MERGED
}

/** One event of the batch: its log COPY line and its Kafka origin. */
export interface FoldRow {
  readonly line: string
  readonly origin: { readonly topic: string, readonly partition: number, readonly offset: number }
}

/** Tab positions of a line's first W columns, at ends[base ..]. */
function tabs (line: string, ends: Int32Array, base: number): void {
  let at = -1
  for (let k = 0; k < W; k++) {
    at = line.indexOf('\t', at + 1)
    ends[base + k] = at === -1 ? line.length - 1 : at
  }
}

/** Column k of the line whose tab positions are at ends[base ..]. */
function cut (line: string, ends: Int32Array, base: number, k: number): string {
  return line.slice(k === 0 ? 0 : (ends[base + k - 1] as number) + 1, ends[base + k])
}

/** Whether [from, to) of the line is `\N` (NULL). */
function isNull (line: string, from: number, to: number): boolean {
  return to - from === 2 && line.charCodeAt(from) === 0x5c && line.charCodeAt(from + 1) === 0x4e
}

/**
 * The fold table's COPY lines for a batch's rows (distinct events, all newly stored): one per
 * entity (events without entity or entity id are not projected). null when the batch is not
 * for this path: events from more than one topic (the fold order's topic comparison is
 * PostgreSQL's collation) or a type with a non-ASCII character.
 */
export function batchFoldLines (rows: readonly FoldRow[]): string[] | null {
  const n = rows.length
  if (n === 0) return []
  const topic = (rows[0] as FoldRow).origin.topic
  // one allocation per batch for every line's tab positions, none per event
  const ends = new Int32Array(n * W)
  const kindOfRow = new Uint8Array(n)
  const kinds = new Map<string, number>()
  const byEntity = new Map<string, number[]>()
  for (let i = 0; i < n; i++) {
    const row = rows[i] as FoldRow
    if (row.origin.topic !== topic) return null
    const line = row.line
    const base = i * W
    tabs(line, ends, base)
    const from = (ends[base + ENTITY - 1] as number) + 1
    const mid = ends[base + ENTITY] as number
    const to = ends[base + ENTITY_ID] as number
    if (isNull(line, from, mid) || isNull(line, mid + 1, to)) continue
    const type = cut(line, ends, base, TYPE)
    let kind = kinds.get(type)
    if (kind === undefined) kinds.set(type, kind = kindOf(type))
    if (kind === NOT_HERE) return null
    kindOfRow[i] = kind
    // entity, tab, entity id: escaped texts hold no tab, so the key is unambiguous
    const key = line.slice(from, to)
    const list = byEntity.get(key)
    if (list === undefined) byEntity.set(key, [i])
    else list.push(i)
  }
  const topicText = column((rows[0] as FoldRow).line, TOPIC)
  const out: string[] = []
  const order = (a: number, b: number): number => inFoldOrder(rows[a] as FoldRow, rows[b] as FoldRow)
  for (const [key, events] of byEntity) {
    if (events.length > 1) events.sort(order)
    out.push(foldLine(key, events, rows, ends, kindOfRow, topicText))
  }
  return out
}

/** Column k of a line, found afresh (once per batch). */
function column (line: string, k: number): string {
  let from = 0
  for (let j = 0; j < k; j++) from = line.indexOf('\t', from) + 1
  const to = line.indexOf('\t', from)
  return line.slice(from, to === -1 ? line.length - 1 : to)
}

function inFoldOrder (a: FoldRow, b: FoldRow): number {
  return a.origin.partition - b.origin.partition || a.origin.offset - b.origin.offset
}

/** The fold line of one entity's events (row indexes, in fold order). */
function foldLine (key: string, events: readonly number[], rows: readonly FoldRow[], ends: Int32Array, kindOfRow: Uint8Array, topic: string): string {
  let reset = false
  let deleted: boolean | null = null
  let payloads: string[] = []
  for (const i of events) {
    const kind = kindOfRow[i]
    if (kind === DELETED) {
      deleted = true
      continue
    }
    const payload = cut((rows[i] as FoldRow).line, ends, i * W, DATA)
    if (kind === CREATED) {
      reset = true
      deleted = false
      payloads = [payload === '\\N' ? 'null' : payload]
    } else {
      payloads.push(payload === '\\N' ? 'null' : payload)
    }
  }
  const f = events[0] as number
  const l = events[events.length - 1] as number
  const first = (rows[f] as FoldRow).origin
  const last = rows[l] as FoldRow
  const base = l * W
  return key + '\t' + (reset ? 't' : 'f') + '\t[' + payloads.join(',') + ']\t' + (deleted === null ? '\\N' : deleted ? 't' : 'f') + '\t' +
    cut(last.line, ends, base, VERSION) + '\t' + cut(last.line, ends, base, TIME) + '\t' + cut(last.line, ends, base, ID) + '\t' +
    topic + '\t' + last.origin.partition + '\t' + last.origin.offset + '\t' + first.partition + '\t' + first.offset + '\n'
}

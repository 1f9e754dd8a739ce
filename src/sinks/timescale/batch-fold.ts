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

/** Columns of the fold table, in batchFoldLines' order. */
export const FOLD_COLUMNS = 'entity, entity_id, reset, payloads, deleted, version, updated_at, last_event_id, source_topic, source_partition, source_offset, first_partition, first_offset'

/** The fold table's definition (a temporary table; see projection.ts). */
export const FOLD_TABLE_COLUMNS = 'entity text, entity_id text, reset boolean, payloads jsonb, deleted boolean, version bigint, updated_at timestamptz, last_event_id text, source_topic text, source_partition integer, source_offset bigint, first_partition integer, first_offset bigint'

const col = (name: string): number => EVENT_COLUMNS.indexOf(name)
const TIME = col('"timestamp"')
const ID = col('event_id')
const TYPE = col('event_type')
const ENTITY = col('entity')
const ENTITY_ID = col('entity_id')
const VERSION = col('version')
const DATA = col('event_data')
const TOPIC = col('source_topic')
const PARTITION = col('source_partition')
const OFFSET = col('source_offset')
const LAST = Math.max(TIME, ID, TYPE, ENTITY, ENTITY_ID, VERSION, DATA, TOPIC, PARTITION, OFFSET)
if (Math.min(TIME, ID, TYPE, ENTITY, ENTITY_ID, VERSION, DATA, TOPIC, PARTITION, OFFSET) < 0) {
  throw new Error('batch-fold.ts expects the log COPY columns of the fold')
}

type Kind = 'created' | 'deleted' | 'merged'

/** One event's columns, as COPY text. */
interface FoldEvent {
  type: string
  payload: string
  partition: number
  offset: number
  version: string
  time: string
  id: string
  partitionText: string
  offsetText: string
}

const NON_ASCII = /[^\x00-\x7f]/ // eslint-disable-line no-control-regex

/**
 * The event kind from the type's COPY text (escapes hold a backslash, which neither suffix
 * has, so the text's suffix is the type's). null for a type with a non-ASCII character:
 * PostgreSQL's upper() and JavaScript's toUpperCase() may differ there, so such a batch is
 * folded by PostgreSQL alone.
 */
function kindOf (type: string): Kind | null {
  if (NON_ASCII.test(type)) return null
  const t = type.toUpperCase()
  if (t.endsWith('_DELETED')) return 'deleted'
  if (t.endsWith('_CREATED')) return 'created'
  return 'merged'
}

/** Tab positions of a COPY line's columns up to LAST (and the one after it). */
function tabs (line: string, into: Int32Array): void {
  let at = -1
  for (let k = 0; k <= LAST; k++) {
    at = line.indexOf('\t', at + 1)
    into[k] = at === -1 ? line.length - 1 : at
  }
}

/** Column k of a line whose tab positions are `end`. */
function cut (line: string, end: Int32Array, k: number): string {
  return line.slice(k === 0 ? 0 : (end[k - 1] as number) + 1, end[k])
}

/**
 * The fold table's COPY lines for the log COPY lines of a batch (distinct events, all newly
 * stored): one per entity (events without entity or entity id are not projected). null when
 * the batch is not for this path: events from more than one topic (the fold order's topic
 * comparison is PostgreSQL's collation) or a type with a non-ASCII character.
 */
export function batchFoldLines (lines: readonly string[]): string[] | null {
  const byEntity = new Map<string, FoldEvent[]>()
  const kinds = new Map<string, Kind | null>()
  const end = new Int32Array(LAST + 1)
  let topic: string | null = null
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    tabs(line, end)
    const t = cut(line, end, TOPIC)
    if (topic === null) topic = t
    else if (t !== topic) return null
    const entity = cut(line, end, ENTITY)
    const entityId = cut(line, end, ENTITY_ID)
    if (entity === '\\N' || entityId === '\\N') continue
    const type = cut(line, end, TYPE)
    let kind = kinds.get(type)
    if (kind === undefined) kinds.set(type, kind = kindOf(type))
    if (kind === null) return null
    const partitionText = cut(line, end, PARTITION)
    const offsetText = cut(line, end, OFFSET)
    const e: FoldEvent = {
      type,
      payload: cut(line, end, DATA),
      partition: Number(partitionText),
      offset: Number(offsetText),
      version: cut(line, end, VERSION),
      time: cut(line, end, TIME),
      id: cut(line, end, ID),
      partitionText,
      offsetText
    }
    // escaped texts hold no tab: the key is unambiguous
    const key = entity + '\t' + entityId
    const list = byEntity.get(key)
    if (list === undefined) byEntity.set(key, [e])
    else list.push(e)
  }
  const out: string[] = []
  for (const [key, events] of byEntity) out.push(foldLine(key, events, kinds, topic as string))
  return out
}

function inFoldOrder (a: FoldEvent, b: FoldEvent): number {
  return a.partition - b.partition || a.offset - b.offset
}

function foldLine (key: string, events: FoldEvent[], kinds: Map<string, Kind | null>, topic: string): string {
  if (events.length > 1) events.sort(inFoldOrder)
  let reset = false
  let deleted: boolean | null = null
  let payloads: string[] = []
  for (const e of events) {
    const kind = kinds.get(e.type)
    if (kind === 'deleted') {
      deleted = true
    } else if (kind === 'created') {
      reset = true
      deleted = false
      payloads = [e.payload === '\\N' ? 'null' : e.payload]
    } else {
      payloads.push(e.payload === '\\N' ? 'null' : e.payload)
    }
  }
  const first = events[0] as FoldEvent
  const last = events[events.length - 1] as FoldEvent
  return key + '\t' + (reset ? 't' : 'f') + '\t[' + payloads.join(',') + ']\t' + (deleted === null ? '\\N' : deleted ? 't' : 'f') + '\t' +
    last.version + '\t' + last.time + '\t' + last.id + '\t' + topic + '\t' + last.partitionText + '\t' + last.offsetText + '\t' +
    first.partitionText + '\t' + first.offsetText + '\n'
}

import type { Pool } from 'pg'
import type { Json, JsonObject } from './fold.ts'
import { foldCall } from './sql.ts'

/**
 * Reads of one entity's history through the fold: its events in fold order (each with its
 * 1-based sequence number `seq`), its state at a time or a version, and the changes of one
 * field. The version of an event is its envelope version, or its `seq` when it has none.
 */
export interface EntityKey { entity: string, entityId: string }

export interface HistoryEvent {
  seq: number
  version: number
  eventId: string
  eventType: string
  timestamp: string
  userName: string | null
  payload: JsonObject
  metadata: JsonObject | null
  correlationId: string | null
  causationId: string | null
  origin: { topic: string, partition: number, offset: number }
}

export interface EntityStateAt {
  entity: string
  entityId: string
  state: JsonObject
  deleted: boolean
  /** version of the last folded event */
  version: number | null
  /** events folded */
  events: number
  updatedAt: string
  lastEventId: string
  origin: { topic: string, partition: number, offset: number }
}

export interface FieldChange {
  seq: number
  version: number
  timestamp: string
  eventId: string
  eventType: string
  old: Json
  new: Json
}

/** The entity's events with seq and effective version, in fold order (a subquery). */
function sequenced (): string {
  return `(SELECT l.*, row_number() OVER (ORDER BY source_partition, source_offset, source_topic) AS seq
     FROM entity_event_logs l WHERE l.entity_id = $2 AND l.entity = $1)`
}

const iso = (d: Date): string => d.toISOString()

export async function entityHistory (pool: Pool, k: EntityKey, after: number, limit: number): Promise<{ events: HistoryEvent[], more: boolean, total: number }> {
  // the window counts every event of the entity; only the page leaves the server
  const res = await pool.query(`SELECT * FROM (SELECT e.*, coalesce(e.version, e.seq) AS v, count(*) OVER () AS total FROM ${sequenced()} e) x
    WHERE x.seq > $3 ORDER BY x.seq LIMIT $4`, [k.entity, k.entityId, after, limit + 1])
  let total = res.rows.length === 0 ? 0 : Number(res.rows[0].total)
  if (res.rows.length === 0 && after > 0) {
    total = Number((await pool.query('SELECT count(*) AS n FROM entity_event_logs WHERE entity_id = $2 AND entity = $1', [k.entity, k.entityId])).rows[0].n)
  }
  const page = res.rows
  return {
    total,
    more: page.length > limit,
    events: page.slice(0, limit).map((r) => ({
      seq: Number(r.seq),
      version: Number(r.v),
      eventId: r.event_id,
      eventType: r.event_type,
      timestamp: iso(r.timestamp),
      userName: r.user_name,
      payload: r.event_data,
      metadata: r.metadata,
      correlationId: r.correlation_id,
      causationId: r.causation_id,
      origin: { topic: r.source_topic, partition: r.source_partition, offset: Number(r.source_offset) }
    }))
  }
}

export type StateBound = { at: string } | { version: number } | Record<string, never>

/** The fold of the entity's events up to a time or a version (every event without a bound); null if there is none. */
export async function entityStateAt (pool: Pool, k: EntityKey, bound: StateBound): Promise<EntityStateAt | null> {
  const params: unknown[] = [k.entity, k.entityId]
  let where = 'true'
  if ('at' in bound) { params.push(bound.at); where = 'e."timestamp" <= $3::timestamptz' }
  if ('version' in bound) { params.push(bound.version); where = 'coalesce(e.version, e.seq) <= $3::bigint' }
  const res = await pool.query(`SELECT (f).* FROM (SELECT ${foldCall('e')} AS f FROM ${sequenced()} e WHERE ${where}) q`, params)
  const r = res.rows[0]
  if (r === undefined || r.events === null) return null
  return { ...stateOfRow(k, r), events: Number(r.events) }
}

/** The live projection's row of the entity (entity_state), or null. */
export async function entityCurrentState (pool: Pool, k: EntityKey): Promise<Omit<EntityStateAt, 'events'> | null> {
  const res = await pool.query('SELECT * FROM entity_state WHERE entity = $1 AND entity_id = $2', [k.entity, k.entityId])
  const r = res.rows[0]
  if (r === undefined) return null
  return stateOfRow({ entity: r.entity, entityId: r.entity_id }, r)
}

/** A fold result or an entity_state row (same column names) as the API answers it. */
function stateOfRow (k: EntityKey, r: any): Omit<EntityStateAt, 'events'> {
  return {
    entity: k.entity,
    entityId: k.entityId,
    state: r.state,
    deleted: r.deleted,
    version: r.version === null ? null : Number(r.version),
    updatedAt: iso(r.updated_at),
    lastEventId: r.last_event_id,
    origin: { topic: r.source_topic, partition: r.source_partition, offset: Number(r.source_offset) }
  }
}

/**
 * Every event that changed `field` of the state (set, changed or removed), with the value
 * before and after (null when absent), from the running fold of the entity's events.
 */
export async function fieldTimeline (pool: Pool, k: EntityKey, field: string): Promise<FieldChange[] | null> {
  const res = await pool.query(`
    WITH running AS (
      SELECT e.seq, coalesce(e.version, e.seq) AS v, e."timestamp", e.event_id, e.event_type,
             sluice_fold(e.event_type, e.event_data, e.version, e."timestamp", e.event_id, e.source_topic, e.source_partition, e.source_offset) OVER (ORDER BY e.seq) AS f
      FROM ${sequenced()} e
    ),
    vals AS (
      SELECT seq, v, "timestamp", event_id, event_type, (f).state ? $3 AS present, (f).state -> $3 AS val FROM running
    ),
    steps AS (
      SELECT *, lag(present, 1, false) OVER (ORDER BY seq) AS was_present, lag(val) OVER (ORDER BY seq) AS old FROM vals
    )
    SELECT seq, v, "timestamp", event_id, event_type, old, val FROM steps
    WHERE present IS DISTINCT FROM was_present OR val IS DISTINCT FROM old
    ORDER BY seq`, [k.entity, k.entityId, field])
  if (res.rows.length === 0) {
    const any = await pool.query('SELECT 1 FROM entity_event_logs WHERE entity_id = $2 AND entity = $1 LIMIT 1', [k.entity, k.entityId])
    return any.rows.length === 0 ? null : []
  }
  return res.rows.map((r) => ({
    seq: Number(r.seq),
    version: Number(r.v),
    timestamp: iso(r.timestamp),
    eventId: r.event_id,
    eventType: r.event_type,
    old: r.old,
    new: r.val
  }))
}

import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import type { Pool, PoolClient } from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { quoteIdent } from '../db/quote-ident.ts'
import { check, getSnapshot, HashTap, nearestStateSnapshot } from './snapshot-store.ts'
import type { SnapshotInfo, SnapshotObjects } from './snapshot-store.ts'
import { basePseudoEvent, foldCall, STATE_COLUMNS, stateValues } from './sql.ts'

/**
 * Rebuilds entity_state as of a moment, entirely server-side: the nearest 'state' snapshot
 * with as_of <= at (gzip'd NDJSON of entity_state rows, streamed from S3 through gunzip into
 * a COPY, its sha256 checked on the way) plus the events after the snapshot's `covers`
 * position with timestamp <= at, folded by the same SQL fold as the live projection; with no
 * snapshot, the fold of every event up to `at`. The result replaces the live entity_state (one
 * transaction, the table locked against the projection) or an audit schema's own copy. The
 * restoration is recorded in `restorations` and as a STATE_RESTORED event in the log.
 */
export interface RestoreRequest {
  /** ISO-8601 time */
  at: string
  target: 'live' | 'audit'
  /** the audit copy's schema (target 'audit') */
  auditSchema?: string
  requestedBy: string
  /** restore from this snapshot (it must be a 'state' snapshot with as_of <= at) */
  snapshotId?: string
  /** false: fold from the empty state even when a snapshot exists (default true) */
  useSnapshots?: boolean
}

export interface RestoreResult {
  restorationId: number
  at: string
  target: 'live' | 'audit'
  schema: string
  snapshotId: string | null
  /** rows the snapshot gave */
  snapshotEntities: number
  /** entities in the restored state */
  entities: number
  /** events folded on top of the snapshot (or from empty) */
  eventsReplayed: number
  durationMs: number
}

export interface RestoreDeps {
  pool: Pool
  /** sluice's own schema (the live entity_state and the log) */
  schema: string
  /** null: S3 is not configured, every restore folds from the empty state */
  objects: SnapshotObjects | null
}

/** A request that cannot be served as asked (HTTP 400 / 404 / 409 / 503 in the API). */
export class RestoreError extends Error {
  readonly statusCode: number
  constructor (statusCode: number, message: string) {
    super(message)
    this.name = 'RestoreError'
    this.statusCode = statusCode
  }
}

const RESERVED_SCHEMAS = /^(pg_.*|information_schema|public)$/

export async function restoreState (d: RestoreDeps, req: RestoreRequest): Promise<RestoreResult> {
  const started = performance.now()
  const live = req.target === 'live'
  const targetSchema = live ? d.schema : (req.auditSchema ?? '')
  if (!live) {
    if (targetSchema === '') throw new RestoreError(400, 'target "audit" needs an auditSchema')
    if (targetSchema === d.schema || RESERVED_SCHEMAS.test(targetSchema)) throw new RestoreError(400, `auditSchema "${targetSchema}" is sluice's own schema or a reserved one: choose another`)
  }
  const snapshot = await pickSnapshot(d, req)
  // read once to check it (a tampered object fails here, before anything is written), then
  // again, that exact version (If-Match), into the database
  const etag = snapshot === null ? undefined : await (d.objects as SnapshotObjects).verify(snapshot)
  const client = await d.pool.connect()
  let broken = false
  try {
    // the live table is locked before the transaction's snapshot is taken: the projection
    // waits, and the log is read as of after every batch that touched entity_state committed
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    const target = `${quoteIdent(targetSchema)}.entity_state`
    if (live) {
      await client.query('LOCK TABLE entity_state IN EXCLUSIVE MODE')
    } else {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(targetSchema)}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${target} (LIKE ${quoteIdent(d.schema)}.entity_state INCLUDING ALL)`)
      await client.query(`LOCK TABLE ${target} IN EXCLUSIVE MODE`)
    }
    await client.query('CREATE TEMP TABLE sluice_restore_base (r jsonb) ON COMMIT DROP')
    let snapshotEntities = 0
    if (snapshot !== null) {
      // a failed COPY leaves the connection in an unknown state: it is discarded
      snapshotEntities = await loadSnapshot(client, d.objects as SnapshotObjects, snapshot, etag).catch((err: unknown) => { broken = true; throw err })
    }
    await client.query(`DELETE FROM ${target}`)
    const res = await client.query<{ entities: number, replayed: number }>(`
      WITH base AS (
        SELECT (jsonb_populate_record(NULL::entity_state, r)).* FROM sluice_restore_base WHERE r IS NOT NULL
      ),
      covers AS (
        SELECT * FROM jsonb_to_recordset($2::jsonb) AS c(topic text, partition integer, "offset" bigint)
      ),
      events AS (
        SELECT ${basePseudoEvent('b')} FROM base b
        UNION ALL
        SELECT l.entity, l.entity_id, l.event_type, l.event_data, l.version, l."timestamp", l.event_id, l.source_topic, l.source_partition, l.source_offset, 1
        FROM entity_event_logs l LEFT JOIN covers c ON c.topic = l.source_topic AND c.partition = l.source_partition
        WHERE l.entity IS NOT NULL AND l.entity_id IS NOT NULL AND l."timestamp" <= $1::timestamptz
          AND (c.topic IS NULL OR l.source_offset >= c."offset")
      ),
      folded AS (
        SELECT e.entity, e.entity_id, ${foldCall('e', true)} AS f FROM events e GROUP BY e.entity, e.entity_id
      ),
      ins AS (
        INSERT INTO ${target} (${STATE_COLUMNS}) SELECT ${stateValues('x')} FROM folded x RETURNING 1
      )
      SELECT (SELECT count(*) FROM ins)::int AS entities, (SELECT coalesce(sum((f).events), 0) FROM folded)::bigint AS replayed`,
    [req.at, JSON.stringify(snapshot?.covers ?? [])])
    const entities = Number(res.rows[0]?.entities ?? 0)
    const replayed = Number(res.rows[0]?.replayed ?? 0)
    const rec = await client.query<{ id: string, now: Date }>(`INSERT INTO restorations (requested_by, as_of, target, target_schema, snapshot_id, entities, events_replayed, completed_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp()) RETURNING restoration_id AS id, clock_timestamp() AS now`,
    [req.requestedBy, req.at, req.target, targetSchema, snapshot?.snapshotId ?? null, entities, replayed])
    const restorationId = Number(rec.rows[0]?.id)
    const durationMs = Math.round(performance.now() - started)
    const data = { restorationId, at: new Date(req.at).toISOString(), target: req.target, schema: targetSchema, snapshotId: snapshot?.snapshotId ?? null, snapshotEntities, entities, eventsReplayed: replayed, durationMs, requestedBy: req.requestedBy }
    // entity NULL: the restoration is an event of the log, not of any entity (never projected)
    await client.query(`INSERT INTO entity_event_logs ("timestamp", event_id, event_type, user_name, event_data, metadata, source_topic, source_partition, source_offset)
      VALUES (clock_timestamp(), 'restoration-' || $1::text || '-' || gen_random_uuid(), 'STATE_RESTORED', $2, $3::jsonb, '{"source":"sluice"}'::jsonb, 'sluice:restore', 0, $1::bigint)`,
    [restorationId, req.requestedBy, JSON.stringify(data)])
    await client.query('COMMIT')
    return { ...data, durationMs: Math.round(performance.now() - started) }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => { broken = true })
    throw err
  } finally {
    client.release(broken)
  }
}

async function pickSnapshot (d: RestoreDeps, req: RestoreRequest): Promise<SnapshotInfo | null> {
  if (req.snapshotId !== undefined) {
    const s = await getSnapshot(d.pool, req.snapshotId)
    if (s === null) throw new RestoreError(404, `snapshot ${req.snapshotId} is not in the index`)
    if (s.kind !== 'state' || s.covers === null || s.asOf === null) throw new RestoreError(400, `snapshot ${req.snapshotId} is a '${s.kind}' snapshot: only 'state' snapshots (entity_state dumps) can be restored`)
    if (Date.parse(s.asOf) > Date.parse(req.at)) throw new RestoreError(400, `snapshot ${req.snapshotId} is as of ${s.asOf}, after ${req.at}`)
    if (d.objects === null) throw new RestoreError(503, 'S3 is not configured (SLUICE_S3_BUCKET): snapshots cannot be read')
    return s
  }
  if (req.useSnapshots === false || d.objects === null) return null
  return await nearestStateSnapshot(d.pool, req.at)
}

/**
 * Streams the snapshot object into sluice_restore_base: S3 -> sha256 -> gunzip -> COPY, one
 * jsonb per NDJSON line (CSV with control characters as quote and delimiter: JSON never holds
 * them raw). Memory stays at the streams' buffers. A mismatching checksum rolls it all back.
 */
async function loadSnapshot (client: PoolClient, objects: SnapshotObjects, s: SnapshotInfo, etag: string | undefined): Promise<number> {
  const { body } = await objects.open(s, etag)
  const tap = new HashTap()
  const copy = client.query(copyFrom("COPY sluice_restore_base (r) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"))
  await pipeline(body, tap, createGunzip(), copy)
  check(s, tap)
  return copy.rowCount ?? 0
}

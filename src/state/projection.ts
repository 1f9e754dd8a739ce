import type { PoolClient } from 'pg'
import { basePseudoEvent, FOLD_EVENT_COLUMNS, foldCall, STATE_COLUMNS, STATE_UPSERT_SET, stateAssignments, stateValues } from './sql.ts'

/**
 * The live entity-state projection, run by the event sink inside the batch transaction: the
 * log's INSERT ... RETURNING gives exactly the newly stored events (the sink inserts only
 * event ids it inserted into sluice_event_ids first: a redelivery or a producer duplicate
 * returns nothing, so it is never applied twice); their
 * entities are locked (FOR UPDATE, in key order) and folded from their current row with the
 * same SQL fold as everything else. Two cases take a second statement, after the locks, with a
 * fresh snapshot, refolding the entity from the whole log: a new event that sorts before the
 * entity's last applied one (an entity spread over partitions), and a new entity that another
 * transaction created meanwhile (its INSERT met a conflict).
 */
export interface ProjectionTables {
  /** the event log (entity_event_logs) */
  log: string
  /** the projection (entity_state) */
  state: string
  /** the statement storing the batch's new events into the log, without RETURNING */
  insert: string
  /** common table expressions the insert reads (`name AS (...)`), if any */
  ctes?: string
}

export interface ProjectionResult {
  /** events newly stored in the log */
  stored: number
  /** of those, events applied to an entity (entity and entity id present) */
  applied: number
  /** entities refolded from the log */
  refolded: number
}

/**
 * The entities to refold from the log, as a JSON array of [entity, entity_id]: those flagged
 * (a new event before the last applied one) and new ones another transaction created meanwhile
 * (their INSERT met a conflict). Reads the CTEs flags (refold), folded (seen) and created.
 */
const REFOLD_KEYS = `coalesce((SELECT json_agg(json_build_array(r.entity, r.entity_id)) FROM (
      SELECT entity, entity_id FROM flags WHERE refold
      UNION ALL
      SELECT x.entity, x.entity_id FROM folded x
      WHERE NOT x.seen AND NOT EXISTS (SELECT 1 FROM created c WHERE c.entity = x.entity AND c.entity_id = x.entity_id)
    ) r), '[]'::json) AS refold`

export async function insertAndProject (client: PoolClient, t: ProjectionTables): Promise<ProjectionResult> {
  const res = await client.query<{ stored: number, applied: number, refold: Array<[string, string]> }>(`
    WITH ${t.ctes === undefined ? '' : t.ctes + ','}
    ins AS (${t.insert} RETURNING ${FOLD_EVENT_COLUMNS}),
    news AS (SELECT * FROM ins WHERE entity IS NOT NULL AND entity_id IS NOT NULL),
    keys AS (SELECT DISTINCT entity, entity_id FROM news),
    cur AS (
      SELECT s.* FROM ${t.state} s JOIN keys k ON s.entity = k.entity AND s.entity_id = k.entity_id
      ORDER BY s.entity, s.entity_id
      FOR UPDATE OF s
    ),
    flags AS (
      SELECT n.entity, n.entity_id, bool_or(c.entity IS NOT NULL) AS seen,
             coalesce(bool_or((n.source_partition, n.source_offset, n.source_topic) < (c.source_partition, c.source_offset, c.source_topic)), false) AS refold
      FROM news n LEFT JOIN cur c ON c.entity = n.entity AND c.entity_id = n.entity_id
      GROUP BY n.entity, n.entity_id
    ),
    events AS (
      SELECT ${basePseudoEvent('c')} FROM cur c JOIN flags f ON f.entity = c.entity AND f.entity_id = c.entity_id WHERE NOT f.refold
      UNION ALL
      SELECT n.*, 1 FROM news n JOIN flags f ON f.entity = n.entity AND f.entity_id = n.entity_id WHERE NOT f.refold
    ),
    folded AS (
      SELECT e.entity, e.entity_id, bool_or(e.ord = 0) AS seen, ${foldCall('e', true)} AS f
      FROM events e GROUP BY e.entity, e.entity_id
    ),
    upd AS (
      UPDATE ${t.state} s SET ${stateAssignments('x')}
      FROM folded x WHERE x.seen AND s.entity = x.entity AND s.entity_id = x.entity_id
      RETURNING 1
    ),
    created AS (
      INSERT INTO ${t.state} (${STATE_COLUMNS})
      SELECT ${stateValues('x')} FROM folded x WHERE NOT x.seen ORDER BY x.entity, x.entity_id
      ON CONFLICT DO NOTHING
      RETURNING entity, entity_id
    )
    SELECT (SELECT count(*) FROM ins)::int AS stored,
           (SELECT count(*) FROM news)::int AS applied,
           (SELECT count(*) FROM upd)::int AS updated,
           ${REFOLD_KEYS}`)
  const row = res.rows[0] as { stored: number, applied: number, refold: Array<[string, string]> }
  if (row.refold.length > 0) await refold(client, t, row.refold)
  return { stored: row.stored, applied: row.applied, refolded: row.refold.length }
}

/**
 * The projection of a batch whose events are all newly stored and already in the log, from
 * the fold table `folds` (src/sinks/timescale/batch-fold.ts: one row per entity): the same
 * locks, order test and new-entity conflicts as insertAndProject, but an entity's events are
 * applied as one merge of their changes (sql/011_batch_fold.sql), not one fold step each.
 */
export async function applyBatchFold (client: PoolClient, t: Pick<ProjectionTables, 'log' | 'state'> & { folds: string }): Promise<void> {
  const res = await client.query<{ refold: Array<[string, string]> }>(`
    WITH cur AS (
      SELECT s.entity, s.entity_id, s.state, s.deleted, s.source_topic, s.source_partition, s.source_offset
      FROM ${t.state} s JOIN ${t.folds} k ON s.entity = k.entity AND s.entity_id = k.entity_id
      ORDER BY s.entity, s.entity_id
      FOR UPDATE OF s
    ),
    flags AS (
      SELECT k.*, c.entity IS NOT NULL AS seen, c.state AS cur_state, c.deleted AS cur_deleted,
             coalesce((k.first_partition, k.first_offset, k.source_topic) < (c.source_partition, c.source_offset, c.source_topic), false) AS refold
      FROM ${t.folds} k LEFT JOIN cur c ON c.entity = k.entity AND c.entity_id = k.entity_id
    ),
    folded AS (
      SELECT f.*, (SELECT sluice_merge(sluice_changes(p.payload) ORDER BY p.n) FROM jsonb_array_elements(f.payloads) WITH ORDINALITY AS p(payload, n)) AS changes
      FROM flags f WHERE NOT f.refold
    ),
    upd AS (
      UPDATE ${t.state} s SET state = CASE WHEN x.reset THEN x.changes ELSE x.cur_state || x.changes END,
        deleted = coalesce(x.deleted, x.cur_deleted), version = x.version, updated_at = x.updated_at, last_event_id = x.last_event_id,
        source_topic = x.source_topic, source_partition = x.source_partition, source_offset = x.source_offset
      FROM folded x WHERE x.seen AND s.entity = x.entity AND s.entity_id = x.entity_id
    ),
    created AS (
      INSERT INTO ${t.state} (${STATE_COLUMNS})
      SELECT x.entity, x.entity_id, x.version, x.changes, coalesce(x.deleted, false), x.updated_at, x.last_event_id, x.source_topic, x.source_partition, x.source_offset
      FROM folded x WHERE NOT x.seen ORDER BY x.entity, x.entity_id
      ON CONFLICT DO NOTHING
      RETURNING entity, entity_id
    )
    SELECT ${REFOLD_KEYS}`)
  const keys = (res.rows[0] as { refold: Array<[string, string]> }).refold
  if (keys.length > 0) await refold(client, t, keys)
}

/**
 * Recomputes entities from the whole log (the transaction's own rows included). The rows are
 * locked first, in key order, so the log is read after every competing writer committed.
 */
export async function refold (client: PoolClient, t: Pick<ProjectionTables, 'log' | 'state'>, keys: ReadonlyArray<readonly [string, string]>): Promise<void> {
  const sorted = [...keys].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)
  const params = [sorted.map((k) => k[0]), sorted.map((k) => k[1])]
  await client.query(`SELECT 1 FROM ${t.state} s JOIN unnest($1::text[], $2::text[]) AS k(entity, entity_id)
    ON s.entity = k.entity AND s.entity_id = k.entity_id ORDER BY s.entity, s.entity_id FOR UPDATE OF s`, params)
  await client.query(`
    WITH keys AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(entity, entity_id)),
    folded AS (
      SELECT l.entity, l.entity_id, ${foldCall('l')} AS f
      FROM ${t.log} l JOIN keys k ON l.entity_id = k.entity_id AND l.entity = k.entity
      GROUP BY l.entity, l.entity_id
    )
    INSERT INTO ${t.state} (${STATE_COLUMNS})
    SELECT ${stateValues('x')} FROM folded x ORDER BY x.entity, x.entity_id
    ON CONFLICT (entity, entity_id) DO UPDATE SET ${STATE_UPSERT_SET}`, params)
}

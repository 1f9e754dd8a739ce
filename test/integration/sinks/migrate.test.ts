import { createServer } from 'node:net'
import pg from 'pg'
import { test } from 'tap'
import type { Test } from 'tap'
import { SluiceError } from '../../../src/errors.ts'
import { listMigrations, migrate } from '../../../src/sinks/timescale/migrate.ts'
import { quoteIdent } from '../../../src/db/quote-ident.ts'
import { headSql } from '../../../src/sinks/s3/state-dump.ts'
import { dropSchemaAtEnd } from '../../helpers/pg-schema.ts'

// Against the real PostgreSQL of scripts/stack.sh (plain PostgreSQL, no TimescaleDB).
const PG_URL = process.env.SLUICE_PG_URL
if (PG_URL === undefined || PG_URL === '') {
  throw new Error('SLUICE_PG_URL is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const SQL_DIR = 'sql'
// every migration of sql/ for plain PostgreSQL (each helper's NNN_ file joins the list by itself)
const PG_MIGRATIONS = await listMigrations(SQL_DIR, 'postgres')
const PG_FILES = PG_MIGRATIONS.map((m) => m.file)

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

function newPool (schema: string, url = PG_URL as string, extra: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${quoteIdent(schema)},public`, ...extra })
  pool.on('error', () => {})
  return pool
}

/** A fresh schema name, dropped (with whatever migrate made in it) when the test ends. */
function freshSchema (t: Test): string {
  const schema = uniqueName('t_migrate')
  dropSchemaAtEnd(t, PG_URL as string, schema)
  return schema
}

async function relations (pool: pg.Pool, schema: string): Promise<Record<string, string>> {
  const res = await pool.query(
    `SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p')`, [schema])
  return Object.fromEntries(res.rows.map((r) => [r.relname, r.relkind]))
}

async function rejectsWith (t: Test, p: Promise<unknown>, code: string): Promise<SluiceError | undefined> {
  try {
    await p
    t.fail(`expected a rejection with ${code}`)
    return undefined
  } catch (err) {
    t.ok(err instanceof SluiceError, 'a SluiceError')
    t.equal((err as SluiceError).code, code, (err as Error).message)
    return err as SluiceError
  }
}

test('a fresh schema gets 001..003 (postgres flavour), a second run applies nothing', async (t) => {
  const schema = freshSchema(t)
  const pool = newPool(schema)
  t.teardown(() => pool.end())

  const first = await migrate(pool, schema, SQL_DIR)
  t.equal(first.flavour, 'postgres')
  t.same(first.applied, PG_FILES)

  const rels = await relations(pool, schema)
  t.equal(rels.entity_event_logs, 'r', 'entity_event_logs is a table')
  t.equal(rels.sluice_offsets, 'r', 'sluice_offsets is a table')
  t.equal(rels.sluice_dlq, 'r', 'sluice_dlq is a table')
  t.equal(rels.sluice_migrations, 'r', 'sluice_migrations is a table')
  t.equal(rels.event_counts_hourly, 'v', 'event_counts_hourly is a view')

  const recorded = await pool.query(`SELECT version, name, flavour, checksum FROM ${quoteIdent(schema)}.sluice_migrations ORDER BY version`)
  t.same(recorded.rows.map((r) => [r.version, r.name, r.flavour]), PG_MIGRATIONS.map((m) => [m.version, m.name, 'postgres']))
  t.ok(recorded.rows.every((r) => /^[0-9a-f]{64}$/.test(r.checksum)), 'sha256 checksums')

  const second = await migrate(pool, schema, SQL_DIR)
  t.same(second, { flavour: 'postgres', applied: [] }, 'nothing to apply the second time')
  const count = await pool.query(`SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.sluice_migrations`)
  t.equal(count.rows[0].n, PG_FILES.length)
})

test('two replicas migrating at once: both succeed, each migration is applied once', async (t) => {
  const schema = freshSchema(t)
  const a = newPool(schema)
  const b = newPool(schema)
  t.teardown(async () => { await a.end(); await b.end() })

  const [ra, rb] = await Promise.all([migrate(a, schema, SQL_DIR), migrate(b, schema, SQL_DIR)])
  t.equal(ra.flavour, 'postgres')
  t.equal(rb.flavour, 'postgres')
  // the advisory lock serializes them: one applies everything, the other finds it done
  t.same([...ra.applied, ...rb.applied].sort(), PG_FILES, 'every file applied exactly once in total')
  t.ok(ra.applied.length === 0 || rb.applied.length === 0, 'one of the two had nothing left to do')
  const count = await a.query(`SELECT version, count(*)::int AS n FROM ${quoteIdent(schema)}.sluice_migrations GROUP BY 1 ORDER BY 1`)
  t.same(count.rows, PG_MIGRATIONS.map((m) => ({ version: m.version, n: 1 })))

  // a lock held by another session makes migrate wait for it
  const holder = await b.connect()
  let released = false
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [0x51c3])
    const started = Date.now()
    const waiting = migrate(a, schema, SQL_DIR).then((r) => ({ r, releasedFirst: released, ms: Date.now() - started }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    released = true
    await holder.query('SELECT pg_advisory_unlock($1)', [0x51c3])
    const w = await waiting
    t.ok(w.releasedFirst, 'migrate finished only after the other session released the lock')
    t.same(w.r.applied, [])
  } finally {
    holder.release()
  }
})

test('a migration changed after it was applied makes migrate fail (SLUICE_ERR_MIGRATION)', async (t) => {
  const schema = freshSchema(t)
  const pool = newPool(schema)
  t.teardown(() => pool.end())
  await migrate(pool, schema, SQL_DIR)
  await pool.query(`UPDATE ${quoteIdent(schema)}.sluice_migrations SET checksum = 'tampered' WHERE version = 2`)
  const err = await rejectsWith(t, migrate(pool, schema, SQL_DIR), 'SLUICE_ERR_MIGRATION')
  t.match(err?.message, /002_hypertable\.postgres\.sql changed after it was applied/)
  t.ok(err?.fatal, 'fatal: the worker stops')
  // the advisory lock was released on the way out: another migrate does not hang
  const again = await rejectsWith(t, migrate(pool, schema, SQL_DIR), 'SLUICE_ERR_MIGRATION')
  t.ok(again)
})

test('a wrong password is SLUICE_ERR_PG_AUTH (fatal)', async (t) => {
  const schema = uniqueName('t_migrate_auth')
  const url = new URL(PG_URL)
  url.password = 'not-the-password'
  const pool = newPool(schema, url.toString())
  t.teardown(() => pool.end())
  const err = await rejectsWith(t, migrate(pool, schema, SQL_DIR), 'SLUICE_ERR_PG_AUTH')
  t.ok(err?.fatal)
  t.match(err?.message, /password authentication failed/)
})

test('an unreachable server is SLUICE_ERR_PG_UNAVAILABLE (transient)', async (t) => {
  // a port that was free a moment ago: nothing listens there
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port
      srv.close(() => resolve(p))
    })
  })
  const url = new URL(PG_URL)
  url.port = String(port)
  const schema = uniqueName('t_migrate_down')
  const pool = newPool(schema, url.toString(), { connectionTimeoutMillis: 5000 })
  t.teardown(() => pool.end())
  const err = await rejectsWith(t, migrate(pool, schema, SQL_DIR), 'SLUICE_ERR_PG_UNAVAILABLE')
  t.ok(err?.transient, 'transient: retried with backoff')
  t.match(err?.message, /ECONNREFUSED/)
})

test('event_counts_hourly counts events per UTC hour and type, whatever the session time zone', async (t) => {
  const schema = freshSchema(t)
  const pool = newPool(schema)
  t.teardown(() => pool.end())
  await migrate(pool, schema, SQL_DIR)
  const rows: Array<[string, string, string]> = [
    ['e1', '2025-02-25T10:00:00Z', 'TASK_CREATED'],
    ['e2', '2025-02-25T10:15:00Z', 'TASK_CREATED'],
    ['e3', '2025-02-25T10:45:00Z', 'TASK_UPDATED'],
    ['e4', '2025-02-25T10:59:59.999Z', 'TASK_CREATED'],
    ['e5', '2025-02-25T11:00:00Z', 'TASK_CREATED'],
    ['e6', '2025-02-25T11:30:00Z', 'USER_LOGGED_IN'],
    ['e7', '2025-02-26T00:10:00Z', 'TASK_UPDATED']
  ]
  await pool.query(
    `INSERT INTO entity_event_logs ("timestamp", event_id, event_type, event_data, source_topic, source_partition, source_offset)
     SELECT ts, id, ty, '{}'::jsonb, 'events', 0, o FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bigint[]) AS x(id, ts, ty, o)`,
    [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((_, i) => i)])

  const expected = [
    ['2025-02-25T10:00:00.000Z', 'TASK_CREATED', 3],
    ['2025-02-25T10:00:00.000Z', 'TASK_UPDATED', 1],
    ['2025-02-25T11:00:00.000Z', 'TASK_CREATED', 1],
    ['2025-02-25T11:00:00.000Z', 'USER_LOGGED_IN', 1],
    ['2025-02-26T00:00:00.000Z', 'TASK_UPDATED', 1]
  ]
  // a time zone with a half-hour offset: hours must still be UTC hours, as time_bucket's are
  for (const tz of ['UTC', 'Asia/Kolkata', 'America/St_Johns']) {
    const client = await pool.connect()
    try {
      await client.query(`SET TIME ZONE '${tz}'`)
      const res = await client.query('SELECT hour, event_type, events FROM event_counts_hourly ORDER BY 1, 2')
      t.same(res.rows.map((r) => [(r.hour as Date).toISOString(), r.event_type, Number(r.events)]), expected, `hourly counts in session time zone ${tz}`)
    } finally {
      client.release()
    }
  }
})

/** The relations a plan reads whole (Seq Scan nodes, parallel or not). */
function seqScans (plan: Record<string, unknown>): string[] {
  const own = String(plan['Node Type']).endsWith('Seq Scan') ? [String(plan['Relation Name'])] : []
  return own.concat(((plan.Plans ?? []) as Array<Record<string, unknown>>).flatMap(seqScans))
}

test('a state dump reads the log\'s newest time from an index, not a scan of the whole log', async (t) => {
  const schema = freshSchema(t)
  const pool = newPool(schema)
  t.teardown(() => pool.end())
  await migrate(pool, schema, SQL_DIR)
  // enough rows that a scan would cost what an index lookup does not, times out of order
  await pool.query(
    `INSERT INTO entity_event_logs ("timestamp", event_id, event_type, event_data, source_topic, source_partition, source_offset)
     SELECT timestamptz '2025-02-25T10:00:00Z' + ((i * 7919) % 50000) * interval '1 second', 'e' || i, 'TASK_UPDATED', '{}'::jsonb, 'events', 0, i
     FROM generate_series(1, 50000) AS i`)
  await pool.query('ANALYZE entity_event_logs')
  const sql = headSql('entity_event_logs')
  const plan = (await pool.query(`EXPLAIN (FORMAT JSON) ${sql}`)).rows[0]['QUERY PLAN'][0].Plan as Record<string, unknown>
  t.same(seqScans(plan), [], 'no relation read whole')
  const head = await pool.query(sql)
  t.equal((head.rows[0].as_of as Date).toISOString(), '2025-02-25T23:53:19.000Z', 'as_of is the newest event time')
})

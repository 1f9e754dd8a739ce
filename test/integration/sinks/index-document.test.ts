import pg from 'pg'
import { pino } from 'pino'
import { test } from 'tap'
import { quoteIdent } from '../../../src/db/quote-ident.ts'
import { IndexDocumentWriter } from '../../../src/sinks/s3/index-document.ts'
import { migrate } from '../../../src/sinks/timescale/migrate.ts'
import { dropSchemaAtEnd } from '../../helpers/pg-schema.ts'
import { pgUrl, uniqueName } from '../../helpers/worker-harness.ts'

async function indexRow (pool: pg.Pool, id: string): Promise<void> {
  await pool.query(`INSERT INTO snapshots (snapshot_id, object_key, kind, created_at, counts, checksum, size_bytes, source_topic, source_partition, source_offset)
    VALUES ($1, $1, 'state', now(), '{}', 'sha256:0', 0, 'events', 0, 0)`, [id])
}

interface Doc { count: number, complete: boolean, snapshots: Array<{ snapshotId: string }> }

test('the document lists the newest entries only, whatever the table holds', async (t) => {
  const schema = uniqueName('t_indexdoc_cap').toLowerCase()
  const pool = new pg.Pool({ connectionString: pgUrl, max: 3, options: `-c search_path=${quoteIdent(schema)}` })
  dropSchemaAtEnd(t, pgUrl, schema, async () => { await pool.end() })
  await migrate(pool, schema, 'sql')
  // 20,000 snapshots indexed before, one a second
  await pool.query(`INSERT INTO snapshots (snapshot_id, object_key, kind, created_at, counts, checksum, size_bytes, source_topic, source_partition, source_offset)
    SELECT 'old-' || g, 'old-' || g, 'state', timestamptz '2025-01-01' + g * interval '1 s', '{}', 'sha256:0', 0, 'events', 0, g FROM generate_series(1, 20000) g`)
  const docs: Array<{ doc: Doc, bytes: number }> = []
  const writer = new IndexDocumentWriter({ pool, put: async (doc) => { docs.push({ doc: JSON.parse(doc.toString()), bytes: doc.length }) }, entries: 50, logger: pino({ level: 'silent' }), minIntervalMs: 0 })
  writer.request()
  await writer.settled()
  const first = docs.at(-1) as { doc: Doc, bytes: number }
  t.equal(first.doc.count, 50, 'entries snapshots listed')
  t.equal(first.doc.complete, false, 'older ones are in the table only')
  t.same(first.doc.snapshots.map((s) => s.snapshotId), Array.from({ length: 50 }, (_, i) => `old-${20000 - i}`), 'the newest, newest first')
  t.ok(first.bytes < 40_000, `a document of ${first.bytes} bytes`)

  await indexRow(pool, 'new')
  writer.request()
  await writer.settled()
  t.equal(docs.at(-1)?.doc.snapshots[0]?.snapshotId, 'new', 'a new snapshot heads the next document')
  t.equal(docs.at(-1)?.doc.count, 50)

  await pool.query("DELETE FROM snapshots WHERE snapshot_id <> 'new'")
  writer.request()
  await writer.settled()
  t.match(docs.at(-1)?.doc, { count: 1, complete: true }, 'complete when the table holds no more')
})

test('requests are coalesced and paced; the last document has every row committed before its request', async (t) => {
  const schema = uniqueName('t_indexdoc').toLowerCase()
  const pool = new pg.Pool({ connectionString: pgUrl, max: 3, options: `-c search_path=${quoteIdent(schema)}` })
  dropSchemaAtEnd(t, pgUrl, schema, async () => { await pool.end() })
  await migrate(pool, schema, 'sql')
  const docs: Doc[] = []
  const writer = new IndexDocumentWriter({ pool, put: async (doc) => { docs.push(JSON.parse(doc.toString())) }, entries: 1000, logger: pino({ level: 'silent' }), minIntervalMs: 300 })
  // commits, each followed by its request, as fast as they come
  for (let i = 0; i < 10; i++) {
    await indexRow(pool, `s${i}`)
    writer.request()
  }
  await writer.settled()
  t.ok(docs.length >= 1 && docs.length < 10, `10 requests made ${docs.length} documents`)
  t.equal(docs.at(-1)?.count, 10, 'the last document lists every row')

  // requests while a rewrite runs: one more, no sooner than the interval after the first
  for (let i = 10; i < 20; i++) await indexRow(pool, `s${i}`)
  docs.length = 0
  const fresh = new IndexDocumentWriter({ pool, put: async (doc) => { docs.push(JSON.parse(doc.toString())) }, entries: 1000, logger: pino({ level: 'silent' }), minIntervalMs: 300 })
  const started = performance.now()
  for (let i = 0; i < 10; i++) fresh.request()
  await fresh.settled()
  t.equal(docs.length, 2, 'ten requests during a rewrite: it and one more')
  t.ok(performance.now() - started >= 300, 'the second started an interval after the first')
  t.equal(docs.at(-1)?.count, 20)

  // a failed PUT is logged, not thrown; the next request writes the document again
  let fail = true
  const flaky = new IndexDocumentWriter({
    pool,
    put: async (doc) => { if (fail) throw new Error('S3 down'); docs.push(JSON.parse(doc.toString())) },
    entries: 1000,
    logger: pino({ level: 'silent' }),
    minIntervalMs: 0
  })
  await indexRow(pool, 'after')
  flaky.request()
  await flaky.settled()
  t.equal(docs.at(-1)?.count, 20, 'nothing written while S3 fails')
  fail = false
  flaky.request()
  await flaky.settled()
  t.equal(docs.at(-1)?.count, 21, 'the next rewrite catches up')
  const held = await pool.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 20933
    AND objid = (SELECT oid FROM pg_namespace WHERE nspname = $1)`, [schema])
  t.equal(held.rows[0].n, 0, 'no advisory lock left held')
})

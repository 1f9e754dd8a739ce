import pg from 'pg'
import { test } from 'tap'
import { quoteIdent } from '../../../src/db/quote-ident.ts'
import { forgetUploads, recordUpload, upsertIndex } from '../../../src/sinks/s3/snapshot-index.ts'
import type { IndexEntry } from '../../../src/sinks/s3/snapshot-index.ts'
import { migrate } from '../../../src/sinks/timescale/migrate.ts'
import { dropSchemaAtEnd } from '../../helpers/pg-schema.ts'
import { pgUrl, uniqueName } from '../../helpers/worker-harness.ts'

function entry (id: string, over: Partial<IndexEntry> = {}): IndexEntry {
  return {
    snapshotId: id,
    key: `snapshots/${id}.json`,
    kind: 'inline',
    createdAt: '2026-11-27T10:00:00.123Z',
    createdBy: null,
    triggerEvent: null,
    version: null,
    counts: {},
    checksum: 'sha256:00',
    size: 10,
    etag: null,
    covers: null,
    asOf: null,
    origin: { topic: 'events', partition: 0, offset: 1 },
    ...over
  }
}

test('upsertIndex writes a batch of entries in one statement, the last entry of an id winning', async (t) => {
  const schema = uniqueName('t_snapindex').toLowerCase()
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2, options: `-c search_path=${quoteIdent(schema)}` })
  dropSchemaAtEnd(t, pgUrl, schema, async () => { await pool.end() })
  await migrate(pool, schema, 'sql')

  const full = entry('b-state', {
    kind: 'state',
    createdAt: new Date('2026-11-27T10:00:01.5Z'),
    createdBy: 'ops "quoted", \\ and {braces}',
    triggerEvent: 'evt-1',
    version: 9_007_199_254_740_993n,
    counts: { users: 3, 'odd "key"': 1 },
    size: 5_000_000_000,
    etag: '"abc"',
    covers: [{ topic: 'events', partition: 2, offset: 41 }],
    asOf: '2026-11-27T09:59:59.999Z',
    origin: { topic: 'events', partition: 2, offset: 9_007_199_254 }
  })
  await upsertIndex(pool, [entry('a', { size: 1 }), full, entry('a', { size: 2, checksum: 'sha256:02' })])
  await upsertIndex(pool, [])
  const rows = (await pool.query(`SELECT snapshot_id, object_key, kind, created_at, created_by, trigger_event, version::text, counts,
      checksum, size_bytes::text, etag, covers, as_of, source_topic, source_partition, source_offset::text FROM snapshots ORDER BY snapshot_id`)).rows
  t.equal(rows.length, 2, 'one row per snapshot id')
  t.match(rows[0], { snapshot_id: 'a', size_bytes: '2', checksum: 'sha256:02', created_by: null, version: null, covers: null, as_of: null }, 'an id given twice keeps its last entry')
  t.same(rows[1], {
    snapshot_id: 'b-state',
    object_key: 'snapshots/b-state.json',
    kind: 'state',
    created_at: new Date('2026-11-27T10:00:01.5Z'),
    created_by: 'ops "quoted", \\ and {braces}',
    trigger_event: 'evt-1',
    version: '9007199254740993',
    counts: { users: 3, 'odd "key"': 1 },
    checksum: 'sha256:00',
    size_bytes: '5000000000',
    etag: '"abc"',
    covers: [{ topic: 'events', partition: 2, offset: 41 }],
    as_of: new Date('2026-11-27T09:59:59.999Z'),
    source_topic: 'events',
    source_partition: 2,
    source_offset: '9007199254'
  }, 'every column as given: text with quotes, backslashes and braces, a bigint past 2^53, JSON, times')

  await upsertIndex(pool, [entry('b-state', { kind: 'chunked', size: 7 })])
  const again = (await pool.query("SELECT kind, size_bytes::int AS size, created_by FROM snapshots WHERE snapshot_id = 'b-state'")).rows[0]
  t.same(again, { kind: 'chunked', size: 7, created_by: null }, 'a redelivery rewrites the row')
})

test('forgetUploads removes exactly the rows of the given (snapshot, upload) pairs', async (t) => {
  const schema = uniqueName('t_snapuploads').toLowerCase()
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2, options: `-c search_path=${quoteIdent(schema)}` })
  dropSchemaAtEnd(t, pgUrl, schema, async () => { await pool.end() })
  await migrate(pool, schema, 'sql')
  for (const [id, up] of [['s1', ''], ['s2', 'u2'], ['s3', 'u3'], ['s4', '']]) {
    await recordUpload(pool, { snapshotId: id as string, key: `k/${id as string}`, uploadId: up as string, origin: null })
  }
  await forgetUploads(pool, [{ snapshotId: 's1', uploadId: '' }, { snapshotId: 's2', uploadId: 'u2' }, { snapshotId: 's3', uploadId: 'newer' }])
  await forgetUploads(pool, [])
  const left = (await pool.query('SELECT snapshot_id FROM snapshot_uploads ORDER BY 1')).rows.map((r) => r.snapshot_id)
  t.same(left, ['s3', 's4'], 'a row of another upload id and a row not named stay')
})

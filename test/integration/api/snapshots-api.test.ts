import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import pg from 'pg'
import { test } from 'tap'
import { quoteIdent } from '../../../src/db/quote-ident.ts'
import { produceSpecs } from '../../helpers/entity-events.ts'
import type { EventSpec } from '../../helpers/entity-events.ts'
import { cleanPrefix, makeStateSnapshot, s3Client, s3Config } from '../../helpers/state-snapshot.ts'
import { fixture, pgUrl, startWorker, storedOffsetSum, uniqueName, waitAllHandled } from '../../helpers/worker-harness.ts'
import type { Worker } from '../../helpers/worker-harness.ts'

// The snapshot index, checked downloads and restores (POST /restore, /snapshots/:id/restore)
// of one worker against the real stack. 'state' snapshots are made by the test the way the
// contract says (test/helpers/state-snapshot.ts); one is then tampered with in S3.
type Spec = EventSpec & { partition: number }
const at = (min: number): string => new Date(Date.parse('2025-06-01T08:00:00Z') + min * 60_000).toISOString()
let n = 0
const ev = (partition: number, type: string, entityId: string, min: number, changes: Record<string, unknown> = {}): Spec =>
  ({ partition, id: `snap-api-${++n}`, type, entity: 'Task', entityId, version: n, timestamp: at(min), changes })

interface Res { status: number, body: any, bytes: Buffer, headers: Headers }
async function call (w: Worker, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Res> {
  const res = await fetch(`http://127.0.0.1:${w.port}${path}`, body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  const bytes = Buffer.from(await res.arrayBuffer())
  let parsed: unknown = null
  try { parsed = JSON.parse(bytes.toString('utf8')) } catch { parsed = null }
  return { status: res.status, body: parsed, bytes, headers: res.headers }
}

test('snapshot index, checked downloads, restores', async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const w = await startWorker(t, fx)
  const s3 = s3Client()
  t.teardown(() => s3.destroy())
  const { bucket } = s3Config()
  const prefix = `test-snapshots-api/${uniqueName('s')}/`
  cleanPrefix(t, s3, bucket, prefix)
  const audits = ['a', 'b', 'c'].map((x) => `${fx.schema}_audit_${x}`)
  t.teardown(async () => {
    const admin = new pg.Client({ connectionString: pgUrl })
    await admin.connect()
    for (const s of audits) await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(s)} CASCADE`).catch(() => {})
    await admin.end()
  })

  // --- history in three steps, a state snapshot after the first two
  const step1 = [ev(0, 'TASK_CREATED', 'a', 1, { title: 'a1', n: 1 }), ev(1, 'TASK_CREATED', 'b', 2, { title: 'b1' }), ev(0, 'TASK_UPDATED', 'a', 3, { n: 2 })]
  const step2 = [ev(1, 'TASK_DELETED', 'b', 10), ev(0, 'STATUS_CHANGED', 'a', 11, { status: 'done' }), ev(1, 'TASK_CREATED', 'c', 12, { title: 'c1' })]
  const step3 = [ev(0, 'TASK_UPDATED', 'a', 20, { n: 3 }), ev(1, 'TASK_UPDATED', 'c', 21, { title: 'c2' })]
  let sent = 0
  const send = async (specs: Spec[]): Promise<void> => { await produceSpecs(fx.topic, specs); sent += specs.length; await waitAllHandled(fx, sent) }
  await send(step1)
  const s1 = await makeStateSnapshot(fx.pool, s3, { bucket, prefix, id: 'snap-1', group: fx.group, createdAt: new Date('2025-06-01T08:05:00Z') })
  t.equal(s1.asOf?.toISOString(), at(3), 'as_of: the last covered event')
  await send(step2)
  const s2 = await makeStateSnapshot(fx.pool, s3, { bucket, prefix, id: 'snap-2', group: fx.group, createdAt: new Date('2025-06-01T08:15:00Z') })
  await send(step3)
  t.equal(await storedOffsetSum(fx), sent)
  // an inline snapshot (not restorable) and a state snapshot to tamper with
  const inlineBody = Buffer.from('{"snapshotId":"inline-1","data":{}}')
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}inline-1.json`, Body: inlineBody }))
  await fx.pool.query('INSERT INTO snapshots (snapshot_id, object_key, kind, created_at, checksum, size_bytes) VALUES (\'inline-1\', $1, \'inline\', \'2025-06-01T08:10:00Z\', $2, $3)',
    [`${prefix}inline-1.json`, 'sha256:' + createHash('sha256').update(inlineBody).digest('hex'), inlineBody.length])
  const s3rd = await makeStateSnapshot(fx.pool, s3, { bucket, prefix, id: 'snap-3', group: fx.group, createdAt: new Date('2025-06-01T08:25:00Z') })

  await t.test('the index', async (t) => {
    const all = await call(w, 'GET', '/snapshots')
    t.same(all.body.snapshots.map((s: any) => s.snapshotId), ['snap-3', 'snap-2', 'inline-1', 'snap-1'], 'newest first')
    t.same((await call(w, 'GET', '/snapshots?before=2025-06-01T08:12:00Z')).body.snapshots.map((s: any) => s.snapshotId), ['inline-1', 'snap-1'])
    t.same((await call(w, 'GET', '/snapshots?kind=state&limit=2')).body.snapshots.map((s: any) => s.snapshotId), ['snap-3', 'snap-2'])
    const one = await call(w, 'GET', '/snapshots/snap-1')
    t.same([one.status, one.body.kind, one.body.asOf, one.body.sizeBytes, one.body.covers], [200, 'state', at(3), s1.sizeBytes, s1.covers])
    t.match(one.body.checksum, /^sha256:[0-9a-f]{64}$/)
    t.equal((await call(w, 'GET', '/snapshots/nope')).status, 404)
  })

  await t.test('checked download', async (t) => {
    for (const path of ['/snapshots/snap-2/object', '/snapshots/snap-2?download=1']) {
      const r = await call(w, 'GET', path)
      t.equal(r.status, 200, path)
      const meta = (await call(w, 'GET', '/snapshots/snap-2')).body
      t.equal('sha256:' + createHash('sha256').update(r.bytes).digest('hex'), meta.checksum, 'the bytes of the index')
      t.equal(r.headers.get('x-sluice-checksum'), meta.checksum)
      const lines = gunzipSync(r.bytes).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
      t.same(lines.map((l) => [l.entity_id, l.deleted]), [['a', false], ['b', true], ['c', false]], 'NDJSON of entity_state rows')
      t.equal(lines.length, s2.rows)
    }
  })

  await t.test('restore at a time: nearest snapshot + later events, into an audit schema', async (t) => {
    const T = at(11)
    const r = await call(w, 'POST', '/restore', { at: T, target: 'audit', auditSchema: audits[0], requestedBy: 'alice' })
    t.equal(r.status, 200, JSON.stringify(r.body))
    t.same([r.body.snapshotId, r.body.snapshotEntities, r.body.entities, r.body.eventsReplayed, r.body.target, r.body.schema], ['snap-1', 2, 2, 2, 'audit', audits[0]],
      'snap-1 (as of 08:03) plus the two events of 08:10 and 08:11')
    const restored = (await fx.pool.query(`SELECT entity_id, state, deleted FROM ${quoteIdent(audits[0] as string)}.entity_state ORDER BY entity_id`)).rows
    t.same(restored, [{ entity_id: 'a', state: { title: 'a1', n: 2, status: 'done' }, deleted: false }, { entity_id: 'b', state: { title: 'b1' }, deleted: true }])
    for (const row of restored) {
      const viaApi = await call(w, 'GET', `/entities/Task/${row.entity_id}/state?at=${T}`)
      t.same([viaApi.body.state, viaApi.body.deleted], [row.state, row.deleted], `${row.entity_id}: the entity API's fold at T agrees`)
    }
    const rec = await fx.pool.query('SELECT requested_by, target, target_schema, snapshot_id, entities, events_replayed FROM restorations WHERE restoration_id = $1', [r.body.restorationId])
    t.same(rec.rows[0], { requested_by: 'alice', target: 'audit', target_schema: audits[0], snapshot_id: 'snap-1', entities: '2', events_replayed: '2' }, 'recorded in restorations')
    const logged = await fx.pool.query("SELECT user_name, entity, event_data FROM entity_event_logs WHERE event_type = 'STATE_RESTORED'")
    t.equal(logged.rows.length, 1, 'and as a STATE_RESTORED event')
    t.same([logged.rows[0].user_name, logged.rows[0].entity, logged.rows[0].event_data.snapshotId, logged.rows[0].event_data.eventsReplayed], ['alice', null, 'snap-1', 2])

    const empty = await call(w, 'POST', '/restore', { at: T, target: 'audit', auditSchema: audits[1], requestedBy: 'alice', useSnapshots: false })
    t.same([empty.body.snapshotId, empty.body.eventsReplayed], [null, 5], 'without snapshots: the fold of all five events up to T')
    t.same((await fx.pool.query(`SELECT entity_id, state, deleted FROM ${quoteIdent(audits[1] as string)}.entity_state ORDER BY entity_id`)).rows, restored, 'the same state')

    const viaSnap = await call(w, 'POST', '/snapshots/snap-2/restore', { target: 'audit', auditSchema: audits[2], requestedBy: 'bob' })
    t.same([viaSnap.status, viaSnap.body.snapshotId, viaSnap.body.at, viaSnap.body.eventsReplayed, viaSnap.body.entities], [200, 'snap-2', at(12), 0, 3], 'a chosen snapshot, at its as_of by default')
  })

  await t.test('live restore: back in time while the worker runs, then forward again', async (t) => {
    const now = (await fx.pool.query('SELECT entity_id, state, deleted, version FROM entity_state ORDER BY entity_id')).rows
    const past = await call(w, 'POST', '/restore', { at: at(2), target: 'live', requestedBy: 'carol' })
    t.same([past.status, past.body.snapshotId, past.body.entities], [200, null, 2], 'before snap-1: no snapshot, two entities')
    t.same((await fx.pool.query('SELECT entity_id, state FROM entity_state ORDER BY entity_id')).rows, [{ entity_id: 'a', state: { title: 'a1', n: 1 } }, { entity_id: 'b', state: { title: 'b1' } }])
    await send([ev(0, 'TASK_UPDATED', 'a', 30, { n: 4 })])
    t.same((await fx.pool.query("SELECT state FROM entity_state WHERE entity_id = 'a'")).rows[0].state, { title: 'a1', n: 4 }, 'the projection goes on from the restored state')
    const back = await call(w, 'POST', '/restore', { at: new Date().toISOString(), target: 'live', requestedBy: 'carol' })
    t.same([back.status, back.body.snapshotId], [200, 'snap-3'])
    const after = (await fx.pool.query('SELECT entity_id, state, deleted, version FROM entity_state ORDER BY entity_id')).rows
    t.same(after, now.map((r) => r.entity_id === 'a' ? { ...r, state: { ...r.state, n: 4 }, version: String(n) } : r), 'restored to now: every event, the new one included')
  })

  await t.test('bad input and bad snapshots', async (t) => {
    const bad: Array<[string, string, unknown, number, RegExp]> = [
      ['GET', '/snapshots?before=tomorrow', undefined, 400, /querystring\/before must be an ISO-8601 time/],
      ['GET', '/snapshots?limit=0', undefined, 400, /querystring\/limit must be >= 1/],
      ['GET', '/snapshots?kind=big', undefined, 400, /querystring\/kind must be equal to one of the allowed values/],
      ['GET', '/snapshots/bad%20id', undefined, 400, /params\/id must match pattern/],
      ['GET', '/snapshots/snap-1?download=maybe', undefined, 400, /querystring\/download must be equal to one of the allowed values/],
      ['POST', '/restore', { target: 'live', requestedBy: 'x' }, 400, /must have required property 'at'/],
      ['POST', '/restore', { at: 'noon', target: 'live', requestedBy: 'x' }, 400, /body\/at must be an ISO-8601 time/],
      ['POST', '/restore', { at: at(1), target: 'both', requestedBy: 'x' }, 400, /body\/target must be equal to one of the allowed values/],
      ['POST', '/restore', { at: at(1), target: 'live' }, 400, /must have required property 'requestedBy'/],
      ['POST', '/restore', { at: at(1), target: 'audit', requestedBy: 'x' }, 400, /must have required property 'auditSchema'/],
      ['POST', '/restore', { at: at(1), target: 'audit', auditSchema: 'Bad-Name', requestedBy: 'x' }, 400, /body\/auditSchema must match pattern/],
      ['POST', '/restore', { at: at(1), target: 'audit', auditSchema: fx.schema, requestedBy: 'x' }, 400, /sluice's own schema or a reserved one/],
      ['POST', '/restore', { at: at(1), target: 'audit', auditSchema: 'public', requestedBy: 'x' }, 400, /reserved/],
      ['POST', '/restore', { at: at(1), target: 'live', requestedBy: 'x', force: true }, 400, /must NOT have additional properties: "force"/],
      ['POST', '/snapshots/snap-2/restore', { at: at(11), target: 'live', requestedBy: 'x' }, 400, /snap-2 is as of .* after/],
      ['POST', '/snapshots/inline-1/restore', { target: 'live', requestedBy: 'x' }, 400, /only 'state' snapshots/],
      ['POST', '/snapshots/nope/restore', { target: 'live', requestedBy: 'x' }, 404, /not in the index/]
    ]
    for (const [method, path, body, status, message] of bad) {
      const r = await call(w, method as 'GET' | 'POST', path, body)
      t.equal(r.status, status, `${method} ${path} ${JSON.stringify(body) ?? ''}: ${status}`)
      t.match(r.body?.message, message, r.body?.message)
    }
  })

  await t.test('a tampered or missing object is reported, not served, not restored', async (t) => {
    const before = (await fx.pool.query('SELECT entity_id, state FROM entity_state ORDER BY entity_id')).rows
    const restorations = (await fx.pool.query('SELECT count(*)::int AS n FROM restorations')).rows[0].n
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: s3rd.objectKey, Body: Buffer.from('not the snapshot') }))
    for (const path of ['/snapshots/snap-3/object', '/snapshots/snap-3?download=1']) {
      const r = await call(w, 'GET', path)
      t.same([r.status, r.body?.code], [409, 'SNAPSHOT_TAMPERED'], `${path}: 409`)
      t.match(r.body.message, /does not match its index/)
      t.equal(r.body.actual.sizeBytes, 16)
    }
    const rr = await call(w, 'POST', '/snapshots/snap-3/restore', { target: 'live', requestedBy: 'mallory' })
    t.same([rr.status, rr.body?.code], [409, 'SNAPSHOT_TAMPERED'], 'restore refused')
    const auto = await call(w, 'POST', '/restore', { at: new Date().toISOString(), target: 'live', requestedBy: 'mallory' })
    t.same([auto.status, auto.body?.code], [409, 'SNAPSHOT_TAMPERED'], 'also when it is the nearest snapshot')
    t.same((await fx.pool.query('SELECT entity_id, state FROM entity_state ORDER BY entity_id')).rows, before, 'entity_state untouched')
    t.equal((await fx.pool.query('SELECT count(*)::int AS n FROM restorations')).rows[0].n, restorations, 'nothing recorded')
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}inline-1.json` }))
    const gone = await call(w, 'GET', '/snapshots/inline-1/object')
    t.same([gone.status, gone.body?.code], [409, 'SNAPSHOT_MISSING'])
  })
  await w.stop()
})

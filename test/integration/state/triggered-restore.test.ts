import { test } from 'tap'
import { produceSpecs } from '../../helpers/entity-events.ts'
import type { EventSpec } from '../../helpers/entity-events.ts'
import { fixture, startWorker, waitAllHandled, waitFor } from '../../helpers/worker-harness.ts'

// End to end with the S3 sink's own state snapshots: a SNAPSHOT_TRIGGERED makes sluice dump
// entity_state to S3 and index it; a restore after more events then starts from that snapshot
// and gives the same state as the fold from empty and as the live projection.
type Spec = EventSpec & { partition: number }
const at = (min: number): string => new Date(Date.parse('2025-07-01T00:00:00Z') + min * 60_000).toISOString()
let n = 0
const ev = (partition: number, type: string, entityId: string, min: number, changes: Record<string, unknown> = {}): Spec =>
  ({ partition, id: `trig-${++n}`, type, entity: 'Task', entityId, version: n, timestamp: at(min), changes })

interface Res { status: number, body: any }
const post = async (port: number, path: string, body: unknown): Promise<Res> => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  return { status: res.status, body: await res.json() }
}

// the test command starts S3 with the rest of the stack: without it this test fails, never skips
if ((process.env.SLUICE_S3_BUCKET ?? '') === '') throw new Error('SLUICE_S3_BUCKET is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')

test('a SNAPSHOT_TRIGGERED state snapshot is what a later restore starts from', async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const w = await startWorker(t, fx)
  const first = [ev(0, 'TASK_CREATED', 'a', 1, { x: 1 }), ev(1, 'TASK_CREATED', 'b', 2, { y: 1 }), ev(0, 'TASK_UPDATED', 'a', 3, { x: 2 })]
  await produceSpecs(fx.topic, first)
  await waitAllHandled(fx, first.length)
  await produceSpecs(fx.topic, [{ partition: 0, id: 'trig-snap', type: 'SNAPSHOT_TRIGGERED', entity: null, entityId: null, timestamp: at(4), fields: { snapshotId: `state-${fx.schema}`.slice(0, 60).replace(/_/g, '-') } }])
  await waitFor('the state snapshot to be indexed', async () => (await fx.pool.query("SELECT 1 FROM snapshots WHERE kind = 'state'")).rows.length > 0, 60_000)
  const snap = (await fx.pool.query("SELECT snapshot_id, covers, as_of FROM snapshots WHERE kind = 'state'")).rows[0]
  t.ok(snap.covers.length > 0, `indexed with covers ${JSON.stringify(snap.covers)}, as of ${(snap.as_of as Date | null)?.toISOString() ?? 'null'}`)
  const later = [ev(0, 'TASK_DELETED', 'a', 10), ev(1, 'STATUS_CHANGED', 'b', 11, { status: 'done' }), ev(1, 'TASK_CREATED', 'c', 12, { z: 1 })]
  await produceSpecs(fx.topic, later)
  await waitAllHandled(fx, first.length + 1 + later.length)

  const live = (await fx.pool.query('SELECT entity_id, state, deleted, version FROM entity_state ORDER BY entity_id')).rows
  const r = await post(w.port, '/restore', { at: new Date().toISOString(), target: 'audit', auditSchema: `${fx.schema}_a`, requestedBy: 'test' })
  t.teardown(async () => { await fx.pool.query(`DROP SCHEMA IF EXISTS "${fx.schema}_a" CASCADE`) })
  t.same([r.status, r.body.snapshotId, r.body.eventsReplayed], [200, snap.snapshot_id, later.length], 'from the triggered snapshot, plus the later events')
  t.same((await fx.pool.query(`SELECT entity_id, state, deleted, version FROM "${fx.schema}_a".entity_state ORDER BY entity_id`)).rows, live, 'equals the live projection')
  await w.stop()
})

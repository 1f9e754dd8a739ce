import { test } from 'tap'
import type { Test } from 'tap'
import { foldEvents } from '../../../src/state/fold.ts'
import type { JsonObject } from '../../../src/state/fold.ts'
import { foldCall } from '../../../src/state/sql.ts'
import { envelope, produceSpecs } from '../../helpers/entity-events.ts'
import type { EventSpec } from '../../helpers/entity-events.ts'
import { fixture, produceSample, startWorker, storedOffsetSum, waitAllHandled, waitFor } from '../../helpers/worker-harness.ts'
import type { Fixture } from '../../helpers/worker-harness.ts'

// Part A of issue 4 through the real worker: entity_state is maintained in the batch's
// transaction, from newly stored events only (duplicates and redeliveries never apply twice),
// in partition order, with the documented semantics; it always equals the fold of the log.

type Spec = EventSpec & { partition: number }
const at = (min: number): string => new Date(Date.parse('2025-03-01T09:00:00Z') + min * 60_000).toISOString()

const e2: Spec = { partition: 0, id: 'p-e2', type: 'TASK_UPDATED', entity: 'Task', entityId: 't1', version: 2, timestamp: at(2), changes: { title: 'b' } }
const SPECS: Spec[] = [
  { partition: 0, id: 'p-e1', type: 'TASK_CREATED', entity: 'Task', entityId: 't1', version: 1, timestamp: at(1), changes: { title: 'a', status: 'open' } },
  e2,
  { partition: 0, id: 'p-e3', type: 'TASK_UPDATED', entity: 'Task', entityId: 't1', version: 3, timestamp: at(3), changes: { title: 'c' } },
  e2, // a producer duplicate, later in the partition: applying it again would bring back 'b'
  { partition: 0, id: 'p-e4', type: 'STATUS_CHANGED', entity: 'Task', entityId: 't1', version: 4, timestamp: at(4), changes: { status: 'done' } },
  { partition: 0, id: 'p-e5', type: 'COMMENT_ADDED', entity: 'Task', entityId: 't1', version: 5, timestamp: at(5), fields: { comment: 'hi' } },
  { partition: 1, id: 'p-f1', type: 'TASK_CREATED', entity: 'Task', entityId: 't2', version: 1, timestamp: at(1), fields: { title: 'T2', priority: 1 } },
  { partition: 1, id: 'p-f2', type: 'TASK_DELETED', entity: 'Task', entityId: 't2', version: 2, timestamp: at(2) },
  { partition: 1, id: 'p-g1', type: 'TASK_CREATED', entity: 'Task', entityId: 't3', version: 1, timestamp: at(1), changes: { title: 'x', tags: ['a'] } },
  { partition: 1, id: 'p-g2', type: 'TASK_DELETED', entity: 'Task', entityId: 't3', version: 2, timestamp: at(2) },
  { partition: 1, id: 'p-g3', type: 'TASK_CREATED', entity: 'Task', entityId: 't3', version: 3, timestamp: at(3), changes: { title: 'y' } },
  { partition: 2, id: 'p-n1', type: 'NOTIFICATION_SENT', entity: null, entityId: null, timestamp: at(1), fields: { to: 'someone' } },
  { partition: 2, id: 'p-n2', type: 'NOTIFICATION_SENT', entity: 'Notification', entityId: null, timestamp: at(2), fields: { to: 'someone' } },
  { partition: 3, id: 'p-h1', type: 'GROUP_CREATED', entity: 'Group', entityId: 'g1', version: 1, timestamp: at(1), changes: 'a note', fields: { name: 'G' } },
  { partition: 3, id: 'p-h2', type: 'GROUP_UPDATED', entity: 'Group', entityId: 'g1', version: 2, timestamp: at(2), fields: { name: 'G2', members: { a: 1 } } }
]

interface StateRow { entity: string, entity_id: string, version: string | null, state: JsonObject, deleted: boolean, last_event_id: string, source_partition: number, source_offset: string, updated_at: Date }

async function states (fx: Fixture): Promise<Map<string, StateRow>> {
  const r = await fx.pool.query<StateRow>('SELECT * FROM entity_state ORDER BY entity, entity_id')
  return new Map(r.rows.map((row) => [`${row.entity}/${row.entity_id}`, row]))
}

/** entity_state against the SQL fold of the whole log from the empty state, and the JS reference fold of the log. */
async function assertProjectionIsTheFold (t: Test, fx: Fixture): Promise<void> {
  const proj = await fx.pool.query('SELECT entity, entity_id, version, state, deleted, last_event_id, source_partition, source_offset FROM entity_state ORDER BY 1, 2')
  const folded = await fx.pool.query(`SELECT entity, entity_id, (f).version, (f).state, (f).deleted, (f).last_event_id, (f).source_partition, (f).source_offset
    FROM (SELECT entity, entity_id, ${foldCall()} AS f FROM entity_event_logs WHERE entity IS NOT NULL AND entity_id IS NOT NULL GROUP BY 1, 2) q ORDER BY 1, 2`)
  t.same(proj.rows, folded.rows, `entity_state (${proj.rows.length} entities) equals the SQL fold of the log from the empty state`)
  const log = await fx.pool.query('SELECT entity, entity_id, event_type, event_data, source_partition, source_offset FROM entity_event_logs WHERE entity IS NOT NULL AND entity_id IS NOT NULL')
  const byEntity = new Map<string, Array<{ eventType: string, payload: unknown, partition: number, offset: number }>>()
  for (const r of log.rows) {
    const k = `${r.entity}/${r.entity_id}`
    const list = byEntity.get(k) ?? []
    list.push({ eventType: r.event_type, payload: r.event_data, partition: r.source_partition, offset: Number(r.source_offset) })
    byEntity.set(k, list)
  }
  let differ = 0
  for (const row of proj.rows) {
    const ref = foldEvents(byEntity.get(`${row.entity}/${row.entity_id}`) ?? [])
    if (!sameJson(ref.state, row.state) || ref.deleted !== row.deleted) differ++
  }
  t.equal(differ, 0, 'and the JavaScript reference fold of the log')
}

function sameJson (a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b))
}
function sortKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a < b ? -1 : 1).map(([k, x]) => [k, sortKeys(x)]))
  return v
}

test('entity_state through the worker: semantics, duplicates, redelivery, seed mix', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  let w = await startWorker(t, fx)
  await produceSpecs(fx.topic, SPECS)
  await waitAllHandled(fx, SPECS.length)

  const s = await states(fx)
  t.same([...s.keys()], ['Group/g1', 'Task/t1', 'Task/t2', 'Task/t3'], 'one row per entity; events without entity or entity id are not projected')
  const t1 = s.get('Task/t1') as StateRow
  t.same(t1.state, { title: 'c', status: 'done', comment: 'hi' }, 'created from changes, merged by updates, status and comment; the late duplicate is not applied again')
  t.equal(t1.deleted, false)
  t.equal(Number(t1.version), 5, 'version of the last event')
  t.equal(t1.last_event_id, 'p-e5')
  t.equal(t1.source_partition, 0)
  t.equal(Number(t1.source_offset), 5, 'origin of the last applied event')
  t.equal(t1.updated_at.toISOString(), at(5))
  const t2 = s.get('Task/t2') as StateRow
  t.same(t2.state, { title: 'T2', priority: 1 }, 'created from the payload fields (envelope fields left out)')
  t.equal(t2.deleted, true, 'a delete leaves a tombstone with the state kept')
  const t3 = s.get('Task/t3') as StateRow
  t.same([t3.state, t3.deleted], [{ title: 'y' }, false], 'created again after a delete: new state, no tombstone')
  t.same(s.get('Group/g1')?.state, { name: 'G2', changes: 'a note', members: { a: 1 } }, 'a non-object `changes` is a field like the others')
  // the JavaScript reference agrees on the hand-made events
  const t1ref = foldEvents(SPECS.filter((x) => x.entityId === 't1').filter((x, i, all) => all.findIndex((y) => y.id === x.id) === i)
    .map((x, i) => ({ eventType: x.type, payload: envelope(x).payload, partition: 0, offset: i })))
  t.same(t1ref.state, t1.state, 'the JavaScript reference fold agrees')
  await assertProjectionIsTheFold(t, fx)

  // --- redelivery: the worker stops, its stored offsets go back to 0, everything is read again
  t.equal(await w.stop(), 0, 'worker stopped cleanly')
  const before = (await fx.pool.query('SELECT entity, entity_id, state, deleted, version, last_event_id FROM entity_state ORDER BY 1, 2')).rows
  await fx.pool.query('UPDATE sluice_offsets SET next_offset = 0 WHERE consumer_group = $1', [fx.group])
  w = await startWorker(t, fx)
  await waitAllHandled(fx, SPECS.length)
  const after = (await fx.pool.query('SELECT entity, entity_id, state, deleted, version, last_event_id FROM entity_state ORDER BY 1, 2')).rows
  t.same(after, before, 'every event redelivered: nothing applied twice')
  await produceSpecs(fx.topic, [{ partition: 0, id: 'p-e6', type: 'TASK_UPDATED', entity: 'Task', entityId: 't1', version: 6, timestamp: at(6), changes: { title: 'd' } }])
  await waitAllHandled(fx, SPECS.length + 1)
  t.same((await states(fx)).get('Task/t1')?.state, { title: 'd', status: 'done', comment: 'hi' }, 'a new event after the redelivery is applied')

  // --- the seed mix: 3,000 events, 2% producer duplicates, ~100 entities over 6 partitions
  const base = await storedOffsetSum(fx)
  const produced = await produceSample(fx.topic, { count: 3000, seed: 9, duplicateRatio: 0.02, entities: 40, payloadPadding: 10 })
  await waitFor('the seed mix to be durable', async () => (await storedOffsetSum(fx)) >= base + produced.messages, 120_000, 200)
  const n = (await fx.pool.query('SELECT count(*)::int AS n FROM entity_state')).rows[0].n
  t.ok(n > 50, `${n} entities projected`)
  await assertProjectionIsTheFold(t, fx)
  await w.stop()
})

test('SLUICE_PROJECTION=off: the events are stored, entity_state is left alone', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const w = await startWorker(t, fx, { SLUICE_PROJECTION: 'off' })
  await produceSpecs(fx.topic, SPECS)
  await waitAllHandled(fx, SPECS.length)
  const logged = (await fx.pool.query('SELECT count(DISTINCT event_id)::int AS n FROM entity_event_logs')).rows[0].n
  t.equal(logged, new Set(SPECS.map((x) => x.id)).size, 'every distinct event in the log')
  t.equal((await fx.pool.query('SELECT count(*)::int AS n FROM entity_state')).rows[0].n, 0, 'no entity_state row')
  t.equal(await w.stop(), 0)
})

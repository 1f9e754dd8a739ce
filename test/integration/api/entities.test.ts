import { test } from 'tap'
import { produceSpecs } from '../../helpers/entity-events.ts'
import type { EventSpec } from '../../helpers/entity-events.ts'
import { fixture, startWorker, waitAllHandled } from '../../helpers/worker-harness.ts'
import type { Worker } from '../../helpers/worker-harness.ts'

// The entity time-travel API of one worker against the real stack: history, state at a time
// or version, diffs, field timelines, and a 400 with a clear message for every bad input.
type Spec = EventSpec & { partition: number }
const at = (min: number): string => new Date(Date.parse('2025-03-01T10:00:00Z') + min * 60_000).toISOString()
const task = (v: number, type: string, extra: Partial<Spec>): Spec => ({ partition: 0, id: `api-t1-${v}`, type, entity: 'Task', entityId: 't1', version: v, timestamp: at(v * 5), ...extra })
const SPECS: Spec[] = [
  task(1, 'TASK_CREATED', { changes: { title: 'a', status: 'open', owner: 'ann' } }),
  task(2, 'TASK_UPDATED', { changes: { title: 'b' } }),
  task(3, 'STATUS_CHANGED', { changes: { status: 'in-progress' } }),
  task(4, 'COMMENT_ADDED', { fields: { comment: 'c1' } }),
  task(5, 'TASK_UPDATED', { changes: { title: 'c', status: 'done' } }),
  task(6, 'TASK_DELETED', {}),
  // no envelope versions: the sequence number stands in
  { partition: 1, id: 'api-t2-1', type: 'TASK_CREATED', entity: 'Task', entityId: 'task 9/é', timestamp: at(1), changes: { n: 1 } },
  { partition: 1, id: 'api-t2-2', type: 'TASK_UPDATED', entity: 'Task', entityId: 'task 9/é', timestamp: at(2), changes: { n: 2 } }
]

interface Res { status: number, body: any }
async function get (w: Worker, path: string): Promise<Res> {
  const res = await fetch(`http://127.0.0.1:${w.port}${path}`)
  return { status: res.status, body: await res.json() }
}

test('entity API: history, state, diff, timeline, and 400s', async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const w = await startWorker(t, fx)
  await produceSpecs(fx.topic, SPECS)
  await waitAllHandled(fx, SPECS.length)
  const base = '/entities/Task/t1'

  await t.test('history, paginated', async (t) => {
    const p1 = await get(w, `${base}/history?limit=2`)
    t.equal(p1.status, 200)
    t.same(p1.body.events.map((e: any) => [e.seq, e.version, e.eventType]), [[1, 1, 'TASK_CREATED'], [2, 2, 'TASK_UPDATED']])
    t.same([p1.body.total, p1.body.next], [6, 2])
    t.same(p1.body.events[0].payload.changes, { title: 'a', status: 'open', owner: 'ann' }, 'the stored payload')
    t.same(p1.body.events[0].origin, { topic: fx.topic, partition: 0, offset: 0 })
    t.equal(p1.body.events[0].timestamp, at(5))
    const p2 = await get(w, `${base}/history?limit=2&after=${String(p1.body.next)}`)
    t.same(p2.body.events.map((e: any) => e.seq), [3, 4])
    const p3 = await get(w, `${base}/history?limit=2&after=${String(p2.body.next)}`)
    t.same([p3.body.events.map((e: any) => e.seq), p3.body.next], [[5, 6], null], 'last page: no next')
    const all = await get(w, `${base}/history`)
    t.equal(all.body.events.length, 6, 'default limit covers it all')
    t.same((await get(w, `${base}/history?after=6`)).body.events, [], 'past the end: empty page')
    t.equal((await get(w, '/entities/Task/nobody/history')).status, 404)
    const odd = await get(w, `/entities/Task/${encodeURIComponent('task 9/é')}/history`)
    t.same([odd.status, odd.body.events.map((e: any) => e.version)], [200, [1, 2]], 'an encoded id; seq stands in for a missing version')
  })

  await t.test('state: projection, at a time, at a version', async (t) => {
    const cur = await get(w, `${base}/state`)
    t.same([cur.status, cur.body.source, cur.body.deleted, cur.body.version], [200, 'projection', true, 6])
    t.same(cur.body.state, { title: 'c', status: 'done', owner: 'ann', comment: 'c1' }, 'a tombstone keeps the state')
    const t12 = await get(w, `${base}/state?at=${at(17)}`)
    t.same([t12.status, t12.body.source, t12.body.version, t12.body.events, t12.body.deleted], [200, 'fold', 3, 3, false])
    t.same(t12.body.state, { title: 'b', status: 'in-progress', owner: 'ann' })
    t.equal(t12.body.updatedAt, at(15))
    t.same((await get(w, `${base}/state?at=${encodeURIComponent('2025-03-01T11:10:00+01:00')}`)).body.version, 2, 'any zone')
    t.same((await get(w, `${base}/state?version=2`)).body.state, { title: 'b', status: 'open', owner: 'ann' })
    t.same((await get(w, `${base}/state?version=6`)).body.deleted, true)
    t.same((await get(w, `${base}/state?version=600`)).body.version, 6, 'a version past the last: the whole history')
    const before = await get(w, `${base}/state?at=2025-03-01T09:00:00Z`)
    t.same([before.status, before.body.message], [404, 'Task/t1: no events at or before 2025-03-01T09:00:00Z'])
    t.equal((await get(w, `/entities/Task/${encodeURIComponent('task 9/é')}/state?version=1`)).body.state.n, 1)
    t.equal((await get(w, '/entities/Task/nobody/state')).status, 404)
  })

  await t.test('diff between versions', async (t) => {
    const d = await get(w, `${base}/diff?from=1&to=5`)
    t.equal(d.status, 200)
    t.same(d.body.added, { comment: 'c1' })
    t.same(d.body.removed, {})
    t.same(d.body.changed, { title: { old: 'a', new: 'c' }, status: { old: 'open', new: 'done' } })
    t.equal(d.body.unchanged, 1)
    const back = await get(w, `${base}/diff?from=5&to=1`)
    t.same([back.body.removed, back.body.added], [{ comment: 'c1' }, {}], 'reversed')
    const tomb = await get(w, `${base}/diff?from=5&to=6`)
    t.same([tomb.body.from.deleted, tomb.body.to.deleted, tomb.body.changed], [false, true, {}], 'a delete changes no field')
    t.equal((await get(w, `${base}/diff?from=0&to=2`)).status, 404, 'no state at version 0')
  })

  await t.test('field timeline', async (t) => {
    const title = await get(w, `${base}/timeline/title`)
    t.same(title.body.changes.map((c: any) => [c.version, c.old, c.new]), [[1, null, 'a'], [2, 'a', 'b'], [5, 'b', 'c']])
    t.equal(title.body.changes[2].timestamp, at(25))
    t.equal(title.body.changes[2].eventType, 'TASK_UPDATED')
    const status = await get(w, `${base}/timeline/status`)
    t.same(status.body.changes.map((c: any) => c.version), [1, 3, 5])
    t.same((await get(w, `${base}/timeline/comment`)).body.changes.map((c: any) => [c.version, c.new]), [[4, 'c1']])
    t.same((await get(w, `${base}/timeline/never`)).body.changes, [], 'a field never set: no change')
    t.equal((await get(w, '/entities/Task/nobody/timeline/title')).status, 404)
  })

  await t.test('bad input: 400 with a clear message', async (t) => {
    const cases: Array<[string, RegExp]> = [
      [`${base}/state?at=yesterday`, /querystring\/at must be an ISO-8601 time with a zone/],
      [`${base}/state?at=2025-02-30T00:00:00Z`, /querystring\/at must be an ISO-8601 time/],
      [`${base}/state?at=2025-03-01T10:00:00`, /querystring\/at must be an ISO-8601 time with a zone/],
      [`${base}/state?version=abc`, /querystring\/version must be integer/],
      [`${base}/state?version=-1`, /querystring\/version must be >= 0/],
      [`${base}/state?version=1.5`, /querystring\/version must be integer/],
      [`${base}/state?version=1&at=${at(1)}`, /either at or version, not both/],
      [`${base}/state?when=now`, /must NOT have additional properties: "when"/],
      [`${base}/history?limit=0`, /querystring\/limit must be >= 1/],
      [`${base}/history?limit=5000`, /querystring\/limit must be <= 1000/],
      [`${base}/history?after=x`, /querystring\/after must be integer/],
      [`${base}/diff?from=1`, /must have required property 'to'/],
      [`${base}/diff?from=x&to=2`, /querystring\/from must be integer/],
      [`/entities/Task/${'x'.repeat(201)}/state`, /params\/id must NOT have more than 200 characters/]
    ]
    for (const [path, message] of cases) {
      const r = await get(w, path)
      t.equal(r.status, 400, `${path.slice(0, 80)}: 400`)
      t.match(r.body.message, message, r.body.message)
    }
  })
  await w.stop()
})

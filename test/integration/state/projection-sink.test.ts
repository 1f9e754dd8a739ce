import { test } from 'tap'
import { commitEvents, entityEvent, stateDb, writeBatch } from '../../helpers/state-db.ts'
import type { PlacedEvent } from '../../helpers/state-db.ts'

// The projection's two harder cases, written through the sink directly: an entity whose
// events arrive out of fold order (two partitions), and two lanes' transactions racing on one
// entity. entity_state must always end as the fold of the log.
const T = 'events'
const ts = (s: number): string => new Date(Date.parse('2025-04-01T00:00:00Z') + s * 1000).toISOString()
const ev = (id: string, type: string, entityId: string, partition: number, offset: number, changes: Record<string, unknown>): PlacedEvent =>
  ({ event: entityEvent({ id, type, entity: 'Task', entityId, timestamp: ts(offset), payload: { changes } }), topic: T, partition, offset })

test('an event that sorts before the applied ones refolds the entity from the log', async (t) => {
  const { pool } = await stateDb(t)
  await commitEvents(pool, [ev('a2', 'TASK_UPDATED', 'x', 1, 0, { b: 1, title: 'from p1' })])
  t.same((await pool.query('SELECT state FROM entity_state')).rows[0].state, { b: 1, title: 'from p1' })
  await commitEvents(pool, [ev('a1', 'TASK_CREATED', 'x', 0, 5, { a: 1, title: 'from p0' })])
  const row = (await pool.query('SELECT state, source_partition, source_offset, last_event_id FROM entity_state')).rows[0]
  t.same(row.state, { a: 1, b: 1, title: 'from p1' }, 'folded as (p0/5, p1/0): the create first, then the update')
  t.same([row.source_partition, Number(row.source_offset), row.last_event_id], [1, 0, 'a2'], 'the last event in fold order')
})

test('two transactions racing on one entity (new, then existing) both land', async (t) => {
  const { pool } = await stateDb(t)
  for (const [label, pre] of [['a new entity', []], ['an existing entity', [ev('c0', 'TASK_CREATED', 'y', 0, 0, { n: 0 })]]] as const) {
    await pool.query('TRUNCATE entity_state, entity_event_logs')
    if (pre.length > 0) await commitEvents(pool, pre)
    const a = await pool.connect()
    const b = await pool.connect()
    try {
      await a.query('BEGIN')
      await b.query('BEGIN')
      await writeBatch(a, [ev(`${label}-a`, 'TASK_UPDATED', 'y', 0, 10, { fromA: true })])
      // B waits for A's row (lock or insert conflict) ...
      const bDone = writeBatch(b, [ev(`${label}-b`, 'TASK_UPDATED', 'y', 1, 10, { fromB: true })])
      await new Promise((resolve) => setTimeout(resolve, 200))
      await a.query('COMMIT')
      const r = await bDone
      await b.query('COMMIT')
      t.equal(r.stored, 1)
    } finally {
      a.release()
      b.release()
    }
    const row = (await pool.query('SELECT state, last_event_id FROM entity_state WHERE entity_id = $1', ['y'])).rows[0]
    t.same(row.state, { ...(pre.length > 0 ? { n: 0 } : {}), fromA: true, fromB: true }, `${label}: both transactions' events are in the state`)
    t.equal(row.last_event_id, `${label}-b`)
  }
})

import { test } from 'tap'
import type { Test } from 'tap'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../../src/kafka/producer.ts'
import { metricSum, scrape } from '../../helpers/prom.ts'
import { brokers, fixture, sources, startWorker, storedOffsetSum, uniqueName, waitAllHandled } from '../../helpers/worker-harness.ts'
import type { Fixture, SourceKind, Worker } from '../../helpers/worker-harness.ts'

// Exactly once by event id, end to end: copies of stored events with the same content, a
// later timestamp (a producer that stamps each send) or other content, on the event's own
// partition or another one, in the same batch or a later one, before and after a worker
// restart. Each id is stored once, the copies are counted by kind, each copy with other
// content is logged with both origins, and entity_state is the fold of what is stored.

const ENTITIES = 240
const T0 = Date.parse('2025-05-01T00:00:00Z')

type Kind = 'identical' | 'restamped' | 'differing'

interface Ev { id: string, type: string, entityId: string, ts: number, changes: Record<string, unknown> }

function message (topic: string, e: Ev, key: string): ProduceRecord {
  return {
    topic,
    key,
    value: JSON.stringify({
      eventId: e.id,
      eventType: e.type,
      timestamp: new Date(e.ts).toISOString(),
      aggregateType: 'Task',
      aggregateId: e.entityId,
      payload: { entity: 'Task', entityId: e.entityId, user: 'dup-test', changes: e.changes },
      metadata: { schemaVersion: '1', source: 'dup-test' }
    })
  }
}

/** A copy of `e` of the given kind. */
function copy (e: Ev, kind: Kind): Ev {
  if (kind === 'identical') return e
  if (kind === 'restamped') return { ...e, ts: e.ts + 500 }
  return { ...e, changes: { ...e.changes, tampered: true } }
}

async function produce (records: ProduceRecord[]): Promise<void> {
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('dup-producer') })
  await producer.connect()
  try {
    for (let i = 0; i < records.length; i += 500) await producer.produceBatch(records.slice(i, i + 500))
  } finally {
    await producer.close()
  }
}

async function duplicatesByKind (w: Worker): Promise<Record<Kind | 'redelivered' | 'other', number>> {
  const text = await scrape(w)
  const all = metricSum(text, 'sluice_duplicates_dropped_total')
  const identical = metricSum(text, 'sluice_duplicates_dropped_total', { kind: 'identical' })
  const restamped = metricSum(text, 'sluice_duplicates_dropped_total', { kind: 'restamped' })
  const differing = metricSum(text, 'sluice_duplicates_dropped_total', { kind: 'differing' })
  const redelivered = metricSum(text, 'sluice_duplicates_dropped_total', { kind: 'redelivered' })
  return { identical, restamped, differing, redelivered, other: all - identical - restamped - differing - redelivered }
}

async function assertStoredOnce (t: Test, fx: Fixture, ids: Set<string>, label: string): Promise<void> {
  const c = await fx.pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs')
  t.same(c.rows[0], { n: ids.size, d: ids.size }, `${label}: each of the ${ids.size} event ids stored once`)
  const k = await fx.pool.query('SELECT count(*)::int AS n FROM sluice_event_ids')
  t.equal(k.rows[0].n, ids.size, `${label}: one sluice_event_ids row per stored event`)
  // folded once: the projection equals the fold of the stored events (a copy folded again,
  // e.g. a create after its update, or another content, would make them differ)
  const diff = await fx.pool.query(`SELECT count(*)::int AS n FROM entity_state s FULL JOIN (
      SELECT entity, entity_id, sluice_fold(event_type, event_data, version, "timestamp", event_id, source_topic, source_partition, source_offset
        ORDER BY source_partition, source_offset, source_topic) AS f
      FROM entity_event_logs GROUP BY entity, entity_id) x USING (entity, entity_id)
    WHERE s.state IS DISTINCT FROM (x.f).state OR s.last_event_id IS DISTINCT FROM (x.f).last_event_id`)
  t.equal(diff.rows[0].n, 0, `${label}: entity_state is the fold of the stored events`)
}

async function run (t: Test, source: SourceKind): Promise<void> {
  const fx = await fixture(t, source)
  // small batches (each under the lane's 100 logged copies) and three lanes: copies land in the same batch, in later ones, on other lanes
  const env = { SLUICE_BATCH_MAX_ROWS: '40', SLUICE_FLUSH_CONCURRENCY: '3', SLUICE_BATCH_LINGER_MS: '20' }
  const events: Ev[] = []
  for (let i = 0; i < ENTITIES; i++) {
    const entityId = `task_${i}`
    events.push({ id: `${fx.topic}-c${i}`, type: 'TASK_CREATED', entityId, ts: T0 + i * 1000, changes: { title: `t${i}` } })
    events.push({ id: `${fx.topic}-u${i}`, type: 'TASK_UPDATED', entityId, ts: T0 + i * 1000 + 1, changes: { status: 'open' } })
  }
  const ids = new Set(events.map((e) => e.id))
  const kindOf = (i: number): Kind => (['identical', 'restamped', 'differing'] as const)[i % 3] as Kind
  const expected = { identical: 0, restamped: 0, differing: 0 }
  const differingIds = new Set<string>()

  // round 1: the events (keyed by entity) and one copy of each create: entities 0..119 right
  // after the original on its own partition, 120..239 later on another partition
  const first: ProduceRecord[] = []
  for (let i = 0; i < ENTITIES; i++) {
    const [c, u] = [events[2 * i] as Ev, events[2 * i + 1] as Ev]
    first.push(message(fx.topic, c, c.entityId))
    if (i < ENTITIES / 2) first.push(message(fx.topic, copy(c, kindOf(i)), c.entityId))
    first.push(message(fx.topic, u, u.entityId))
  }
  for (let i = ENTITIES / 2; i < ENTITIES; i++) first.push(message(fx.topic, copy(events[2 * i] as Ev, kindOf(i)), `elsewhere-${i}`))
  for (let i = 0; i < ENTITIES; i++) {
    expected[kindOf(i)]++
    if (kindOf(i) === 'differing') differingIds.add((events[2 * i] as Ev).id)
  }
  await produce(first)
  let worker = await startWorker(t, fx, env)
  await waitAllHandled(fx, first.length)
  const round1 = await duplicatesByKind(worker)
  const log1 = worker.log()
  t.equal(await worker.stop(), 0, 'the first worker stops cleanly')
  await assertStoredOnce(t, fx, ids, 'round 1')
  const dlq = await fx.pool.query('SELECT error_code, error_message FROM sluice_dlq LIMIT 3')
  t.same(dlq.rows, [], 'no dead letter')

  // round 2, a restarted worker: copies of the updates, on another partition
  const second: ProduceRecord[] = []
  for (let i = 0; i < ENTITIES; i++) {
    const u = events[2 * i + 1] as Ev
    second.push(message(fx.topic, copy(u, kindOf(i + 1)), `again-${i}`))
    expected[kindOf(i + 1)]++
    if (kindOf(i + 1) === 'differing') differingIds.add(u.id)
  }
  const before = await storedOffsetSum(fx)
  await produce(second)
  worker = await startWorker(t, fx, env)
  await waitAllHandled(fx, before + second.length)
  const round2 = await duplicatesByKind(worker)
  const log2 = worker.log()
  t.equal(await worker.stop(), 0, 'the second worker stops cleanly')
  await assertStoredOnce(t, fx, ids, 'round 2')

  const sum = (k: Kind | 'redelivered' | 'other'): number => round1[k] + round2[k]
  t.same({ identical: sum('identical'), restamped: sum('restamped'), differing: sum('differing') }, expected,
    `duplicates counted by kind (${JSON.stringify(expected)})`)
  t.equal(sum('redelivered') + sum('other'), 0, 'no duplicate of another kind')

  // one log line per copy with other content, naming both origins
  const lines = (log1 + log2).split('\n').filter((l) => l.includes('stored before with other content')).map((l) => JSON.parse(l))
  t.same(new Set(lines.map((l) => l.eventId)), differingIds, 'each copy with other content is logged once, by event id')
  t.equal(lines.length, differingIds.size, 'one line per such copy')
  const bad = lines.filter((l) => l.stored?.topic !== fx.topic || l.dropped?.topic !== fx.topic ||
    !Number.isInteger(l.stored.offset) || !Number.isInteger(l.dropped.offset) ||
    (l.stored.partition === l.dropped.partition && l.stored.offset === l.dropped.offset))
  t.same(bad, [], 'each line names both origins (topic, partition, offset), and they differ')
}

test('exactly once by event id: copies with another timestamp or content', async (t) => {
  for (const source of sources) {
    await t.test(source, { timeout: 180_000 }, async (t) => { await run(t, source) })
  }
})

import type { Message } from 'node-rdkafka'
import { test } from 'tap'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { sampleEvents } from '../../../src/workload/seed-mix.ts'
import type { PoisonKind, SampleRecord } from '../../../src/workload/seed-mix.ts'
import { metricSum, scrape } from '../../helpers/prom.ts'
import { readTopic } from '../../helpers/read-topic.ts'
import { brokers, fixture, sources, startWorker, storedOffsetSum, uniqueName, waitForCount } from '../../helpers/worker-harness.ts'

// Principle 3 (failures are classified): one of each poison kind among good events, in one
// partition and one batch. Exactly the poison is dead-lettered (table and topic) with its
// code, stage, reason and origin; every neighbour is stored; the partition moves on.
const MAX_EVENT_BYTES = 64 * 1024
const COUNT = 65 // poison at offsets 9, 19, ... 59 (poisonEvery 10), good events around them

const expected: Record<PoisonKind, { code: string, stage: string, reason: RegExp }> = {
  'malformed-json': { code: 'SLUICE_ERR_DECODE', stage: 'decode', reason: /malformed JSON/ },
  'missing-event-type': { code: 'SLUICE_ERR_ENVELOPE', stage: 'validate', reason: /eventType/ },
  'wrong-type': { code: 'SLUICE_ERR_ENVELOPE', stage: 'validate', reason: /\/version must be integer/ },
  oversize: { code: 'SLUICE_ERR_TOO_LARGE', stage: 'decode', reason: new RegExp(`\\d+ bytes, over the limit of ${MAX_EVENT_BYTES}`) },
  'nul-byte': { code: 'SLUICE_ERR_NUL', stage: 'decode', reason: /\\u0000 .*PostgreSQL text and jsonb cannot store/ },
  'bad-timestamp': { code: 'SLUICE_ERR_TIMESTAMP', stage: 'validate', reason: /2024-02-30.*day 30/ }
}

function headersOf (m: Message): Record<string, string> {
  const out: Record<string, string> = {}
  for (const h of m.headers ?? []) for (const [k, v] of Object.entries(h)) out[k] = v.toString()
  return out
}

for (const [i, source] of sources.entries()) {
  test(`${source}: each poison kind is dead-lettered with its reason, its neighbours stored`, async (t) => {
    const fx = await fixture(t, source, { partitions: 1 })
    const records: SampleRecord[] = [...sampleEvents({ count: COUNT, seed: 500 + i, poisonEvery: 10, oversizeBytes: 100 * 1024 })]
    const poison = records.map((r, offset) => ({ ...r, offset })).filter((r) => r.poison !== null)
    const good = records.filter((r) => r.eventId !== null)
    t.same(poison.map((p) => p.poison), Object.keys(expected), 'one message of each poison kind')
    t.equal(good.length, COUNT - poison.length, 'good events around them')

    // produced before the worker starts, so that the worker reads them in one fetch
    const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('poison-producer') })
    await producer.connect()
    await producer.produceBatch(records.map((r) => ({ topic: fx.topic, partition: 0, key: r.key, value: r.value })))
    await producer.close()

    const w = await startWorker(t, fx, { SLUICE_MAX_EVENT_BYTES: String(MAX_EVENT_BYTES) })
    await waitForCount('messages handled', async () => await storedOffsetSum(fx), COUNT)

    // the table: exactly the poison, with code, stage, reason and origin
    const dlq = await fx.pool.query(`SELECT pipeline, stage, error_code, error_message, attempts, source_topic, source_partition,
      source_offset::int AS source_offset, message_key, message_value FROM sluice_dlq ORDER BY source_offset`)
    t.equal(dlq.rowCount, poison.length, `${poison.length} rows in sluice_dlq`)
    for (const [k, p] of poison.entries()) {
      const row = dlq.rows[k] ?? {}
      const want = expected[p.poison as PoisonKind]
      t.match(row, {
        pipeline: 'entity-events',
        stage: want.stage,
        error_code: want.code,
        error_message: want.reason,
        attempts: 1,
        source_topic: fx.topic,
        source_partition: 0,
        source_offset: p.offset
      }, `${p.poison}: ${want.code} at offset ${p.offset} (${String(row.error_message).slice(0, 120)})`)
      t.ok(Buffer.compare(row.message_value ?? Buffer.alloc(0), p.value) === 0 && Buffer.compare(row.message_key ?? Buffer.alloc(0), p.key) === 0,
        `${p.poison}: the original key and value are kept`)
    }

    // the neighbours: every good event stored once
    const stored = await fx.pool.query('SELECT event_id, source_offset::int AS o FROM entity_event_logs ORDER BY source_offset')
    t.same(stored.rows.map((r) => r.event_id), good.map((r) => r.eventId), `all ${good.length} good events stored, in order`)
    t.same(stored.rows.map((r) => r.o).filter((o) => poison.some((p) => p.offset === o)), [], 'no poison in the event log')

    // the topic: the same dead letters with their headers
    const topic = await readTopic(fx.dlqTopic, (got) => got.length >= poison.length)
    t.equal(topic.length, poison.length, `${poison.length} records on ${fx.dlqTopic}`)
    for (const [k, p] of poison.entries()) {
      const m = topic[k]
      const want = expected[p.poison as PoisonKind]
      const h = m === undefined ? {} : headersOf(m)
      t.match(h, {
        'sluice-error-code': want.code,
        'sluice-error-message': want.reason,
        'sluice-stage': want.stage,
        'sluice-origin-topic': fx.topic,
        'sluice-origin-partition': '0',
        'sluice-origin-offset': String(p.offset),
        'sluice-attempts': '1'
      }, `${p.poison}: headers on the dead-letter topic`)
      t.ok(m?.value !== undefined && m.value !== null && Buffer.compare(m.value, p.value) === 0, `${p.poison}: the original value on the topic`)
    }

    // the metrics: one dead letter per poison, by code
    const metrics = await scrape(w)
    t.equal(metricSum(metrics, 'sluice_dead_lettered_total'), poison.length, 'sluice_dead_lettered_total counts every dead letter')
    for (const code of new Set(Object.values(expected).map((e) => e.code))) {
      const n = poison.filter((p) => expected[p.poison as PoisonKind].code === code).length
      t.equal(metricSum(metrics, 'sluice_dead_lettered_total', { pipeline: 'entity-events', code }), n, `sluice_dead_lettered_total{code="${code}"} = ${n}`)
    }
    t.equal(metricSum(metrics, 'sluice_events_stored_total'), good.length, 'sluice_events_stored_total counts the good events')
    t.equal(metricSum(metrics, 'sluice_messages_consumed_total'), COUNT, 'every message consumed once')
    t.comment(`${source}: ${metricSum(metrics, 'sluice_batch_rows_count')} flushed batch(es) for the ${COUNT} messages`)
  })
}

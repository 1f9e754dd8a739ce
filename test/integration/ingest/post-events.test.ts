import { test } from 'tap'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { sampleEvents } from '../../../src/workload/seed-mix.ts'
import type { SampleRecord } from '../../../src/workload/seed-mix.ts'
import { assertStoredExactlyOnce, brokers, fixture, startWorker, storedOffsetSum, uniqueName, waitAllHandled, waitFor } from '../../helpers/worker-harness.ts'
import { postEvents } from './ingest-helpers.ts'

// POST /events runs each item through the topic's own pipeline: what it refuses is what the
// worker dead-letters at a stage, with the same code and message; what it accepts is produced
// keyed by entity id and stored once, however often it is sent.
const MAX_EVENT_BYTES = 64 * 1024

test('per item: the same verdicts, codes and messages as the Kafka path', { timeout: 180_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 3 })
  const w = await startWorker(t, fx, { SLUICE_MAX_EVENT_BYTES: String(MAX_EVENT_BYTES) })
  const records: SampleRecord[] = [...sampleEvents({ count: 65, seed: 1100, poisonEvery: 10, oversizeBytes: 100 * 1024 })]
  t.ok(records.some((r) => r.poison !== null), 'the sample holds each poison kind')

  const res = await postEvents(w, records.map((r) => r.value.toString('utf8')).join('\n') + '\n', 'application/x-ndjson')
  t.equal(res.status, 202, '202: some events accepted')
  const items = res.body.items as Array<{ index: number, eventId?: string, partition?: number, offset?: number, code?: string, message?: string }>
  t.equal(items.length, records.length, 'one answer per item')
  t.same(items.map((it) => it.index), records.map((_, i) => i), 'in body order')
  for (const [i, r] of records.entries()) {
    if (r.eventId !== null) t.match(items[i], { eventId: r.eventId, partition: Number, offset: Number }, `good event ${i} accepted with its partition and offset`)
  }
  const accepted = items.filter((it) => it.code === undefined)
  t.equal(res.body.accepted, accepted.length)
  t.equal(res.body.rejected, records.length - accepted.length)

  // the same bytes through Kafka: the worker's own verdicts, from its dead-letter table
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('ingest-kafka-path') })
  await producer.connect()
  await producer.produceBatch(records.map((r) => ({ topic: fx.topic, key: r.key, value: r.value })))
  await producer.close()
  await waitAllHandled(fx, accepted.length + records.length)
  const fromHttp = new Set(accepted.map((it) => `${String(it.partition)}:${String(it.offset)}`))
  const dlq = await fx.pool.query<{ stage: string, error_code: string, error_message: string, message_value: Buffer, p: number, o: string }>(
    'SELECT stage, error_code, error_message, message_value, source_partition AS p, source_offset::text AS o FROM sluice_dlq')
  const kafkaVerdict = new Map<string, { stage: string, code: string, message: string }>()
  for (const row of dlq.rows) {
    if (fromHttp.has(`${row.p}:${row.o}`)) continue // a copy the endpoint accepted, refused by the sink
    kafkaVerdict.set(row.message_value.toString('base64'), { stage: row.stage, code: row.error_code, message: row.error_message })
  }
  for (const [i, r] of records.entries()) {
    const k = kafkaVerdict.get(r.value.toString('base64'))
    const atStage = k !== undefined && !k.stage.startsWith('sink')
    const it = items[i] as { code?: string, message?: string }
    if (atStage) t.same({ code: it.code, message: it.message }, { code: k.code, message: k.message }, `item ${i} (${r.poison ?? 'good'}): refused like the Kafka path, ${k.code}`)
    else t.equal(it.code, undefined, `item ${i} (${r.poison ?? 'good'}): accepted, as the Kafka path passes its stages${k === undefined ? '' : ` (the sink refused it: ${k.code})`}`)
  }
  // refused items were never produced: the HTTP copies are exactly the accepted ones
  t.equal(await storedOffsetSum(fx), accepted.length + records.length, 'the topic holds the Kafka copies and the accepted items only')
  await assertStoredExactlyOnce(t, fx, { messages: 0, eventIds: new Set(records.flatMap((r) => r.eventId === null ? [] : [r.eventId])), poison: [], poisonKeys: new Map() })
})

test('whole-body answers: one event, nothing accepted, limits, formats', { timeout: 120_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 1 })
  const w = await startWorker(t, fx, { SLUICE_INGEST_MAX_EVENTS: '5', SLUICE_INGEST_MAX_BODY_BYTES: '65536' })
  const [good] = [...sampleEvents({ count: 1, seed: 1200 })] as [SampleRecord]

  const one = await postEvents(w, good.value)
  t.equal(one.status, 202)
  t.match(one.body, { accepted: 1, rejected: 0, items: [{ index: 0, eventId: good.eventId, partition: 0, offset: Number }] }, 'one event: its partition and offset')

  const bad = await postEvents(w, '{"eventType":"TASK_CREATED"}')
  t.equal(bad.status, 400, 'a single invalid event: 400')
  t.match(bad.body, { statusCode: 400, code: 'SLUICE_ERR_ENVELOPE', error: 'Bad Request', message: /eventId/, accepted: 0, rejected: 1 }, 'naming the field')

  const notJson = await postEvents(w, '{"eventId":')
  t.match(notJson, { status: 400, body: { code: 'SLUICE_ERR_DECODE', message: /malformed JSON/ } })
  t.match(await postEvents(w, '[{"a":1}'), { status: 400, body: { code: 'SLUICE_ERR_INGEST_BODY', message: /do not close/ } })
  t.match(await postEvents(w, ''), { status: 400, body: { code: 'SLUICE_ERR_INGEST_BODY', message: /no event/ } })
  // no body and no content type at all (what schemathesis sent): a 400, not a 500
  const bare = await fetch(`http://127.0.0.1:${w.port}/events`, { method: 'POST' })
  t.match({ status: bare.status, body: await bare.json() }, { status: 400, body: { code: 'SLUICE_ERR_INGEST_BODY', message: /no event/ } })
  t.match(await postEvents(w, `[${Array(6).fill(good.value.toString()).join(',')}]`), { status: 413, body: { code: 'SLUICE_ERR_INGEST_BODY', message: /more than 5 events/ } })
  const big = await postEvents(w, `[${' '.repeat(70_000)}]`)
  t.equal(big.status, 413, `a body over SLUICE_INGEST_MAX_BODY_BYTES: 413 (${JSON.stringify(big.body).slice(0, 120)})`)
  const xml = await postEvents(w, '<event/>', 'application/xml')
  t.equal(xml.status, 415, 'another media type: 415')
  const text = await postEvents(w, good.value, 'text/plain')
  t.match(text, { status: 415, body: { code: 'SLUICE_ERR_INGEST_BODY', message: /text\/plain/ } }, 'text/plain (a type Fastify parses itself): 415')

  const array = await postEvents(w, `[${good.value.toString()}, 42]`)
  t.match(array, { status: 202, body: { accepted: 1, rejected: 1, items: [{ index: 0, eventId: good.eventId }, { index: 1, code: 'SLUICE_ERR_ENVELOPE', message: /JSON object/ }] } }, 'an array: per-item answers')
  await waitFor('the three copies of one event handled', async () => (await storedOffsetSum(fx)) >= 2)
  const rows = await fx.pool.query('SELECT count(*)::int AS n FROM entity_event_logs WHERE event_id = $1', [good.eventId])
  t.equal(rows.rows[0].n, 1, 'the event sent twice is stored once')
})

test('a batch of 1,000 events, sent twice: every event stored exactly once', { timeout: 180_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const w = await startWorker(t, fx)
  const records = [...sampleEvents({ count: 1000, seed: 1300 })]
  const body = `[${records.map((r) => r.value.toString('utf8')).join(',')}]`
  const first = await postEvents(w, body)
  t.equal(first.status, 202)
  t.equal(first.body.accepted, 1000, '1,000 accepted')
  const second = await postEvents(w, body)
  t.equal(second.body.accepted, 1000, 'the retried request: accepted again (the producer cannot know)')
  const partitions = new Set(first.body.items.map((it: { partition: number }) => it.partition))
  t.ok(partitions.size > 1, `keyed by entity id: spread over ${partitions.size} partitions`)
  await waitAllHandled(fx, 2000)
  await assertStoredExactlyOnce(t, fx, { messages: 2000, eventIds: new Set(records.map((r) => r.eventId as string)), poison: [], poisonKeys: new Map() })
  const dup = await fx.pool.query('SELECT count(*)::int AS n FROM sluice_dlq')
  t.equal(dup.rows[0].n, 0, 'no dead letter')
})

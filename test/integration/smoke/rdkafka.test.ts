import Kafka from 'node-rdkafka'
import type { ConsumerGlobalConfig, Message } from 'node-rdkafka'
import { test } from 'tap'
import { committedOffsets, deleteGroups, deleteTopics, ensureTopics } from '../../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../../src/kafka/producer.ts'

// Smoke test of node-rdkafka against the real Kafka of scripts/stack.sh: a keyed round trip
// through a non-flowing consume(n) loop with offsets committed by hand.
const BROKERS = process.env.SLUICE_KAFKA_BROKERS
if (BROKERS === undefined || BROKERS === '') {
  throw new Error('SLUICE_KAFKA_BROKERS is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const brokers = BROKERS
const PARTITIONS = 3
const MESSAGES = 1_000
const KEYS = 50
const WAIT_MS = 30_000

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

function consume (consumer: Kafka.KafkaConsumer, n: number): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    consumer.consume(n, (err, messages) => { if (err) reject(err); else resolve(messages) })
  })
}

test('node-rdkafka: keyed produce, consume(n) with manual commits', async (t) => {
  const topic = uniqueName('smoke_rd')
  const group = uniqueName('smoke_rdg')
  await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS }])

  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('smoke-rd-producer') })
  const consumer = new Kafka.KafkaConsumer({
    'bootstrap.servers': brokers,
    'client.id': uniqueName('smoke-rd-consumer'),
    'group.id': group,
    'enable.auto.commit': false,
    'enable.auto.offset.store': false
  } as ConsumerGlobalConfig, { 'auto.offset.reset': 'earliest' })
  consumer.setDefaultConsumeTimeout(200)
  t.teardown(async () => {
    await producer.close().catch(() => {})
    if (consumer.isConnected()) await new Promise<void>((resolve) => { consumer.disconnect(() => resolve()) })
    await deleteGroups(brokers, [group]).catch(() => {})
    await deleteTopics(brokers, [topic])
  })

  await producer.connect()
  const records: ProduceRecord[] = []
  for (let i = 0; i < MESSAGES; i++) records.push({ topic, key: `key-${i % KEYS}`, value: `value-${i}` })
  await producer.produceBatch(records) // resolves once every record is acknowledged

  await new Promise<void>((resolve, reject) => {
    consumer.connect({ timeout: 15_000 }, (err) => { if (err) reject(err); else resolve() })
  })
  consumer.subscribe([topic])

  const received: Message[] = []
  let commits = 0
  const deadline = Date.now() + WAIT_MS
  while (received.length < MESSAGES && Date.now() < deadline) {
    const batch = await consume(consumer, 100)
    if (batch.length === 0) continue
    // "processing" first, then the commit of the next offset of each partition seen
    received.push(...batch)
    const next = new Map<number, number>()
    for (const m of batch) next.set(m.partition, Math.max(next.get(m.partition) ?? 0, m.offset + 1))
    consumer.commitSync([...next].map(([partition, offset]) => ({ topic, partition, offset })))
    commits++
  }

  t.equal(received.length, MESSAGES, `all ${MESSAGES} messages consumed`)
  t.ok(commits > 0, 'offsets committed by hand')
  const values = new Set(received.map((m) => m.value?.toString()))
  t.equal(values.size, MESSAGES, 'each message once')
  t.same([...values].sort(), records.map((r) => r.value).sort(), 'exactly the produced values')

  const partitionsOfKey = new Map<string, Set<number>>()
  const offsetsOf = new Map<number, number[]>()
  for (const m of received) {
    const key = m.key?.toString() as string
    partitionsOfKey.set(key, (partitionsOfKey.get(key) ?? new Set()).add(m.partition))
    offsetsOf.set(m.partition, [...(offsetsOf.get(m.partition) ?? []), m.offset])
  }
  t.equal(partitionsOfKey.size, KEYS, `${KEYS} distinct keys`)
  t.same([...partitionsOfKey].filter(([, ps]) => ps.size !== 1).map(([k]) => k), [], 'every key always on one partition')
  t.equal(offsetsOf.size, PARTITIONS, 'the keys spread over all partitions')
  for (const [p, offsets] of offsetsOf) {
    t.same(offsets, offsets.map((_, i) => i), `partition ${p}: offsets 0..${offsets.length - 1} in order`)
  }

  await new Promise<void>((resolve) => { consumer.disconnect(() => resolve()) })
  const committed = await committedOffsets(brokers, group, topic)
  t.equal([...committed.values()].reduce((a, b) => a + b, 0), MESSAGES, `committed offsets sum to ${MESSAGES}`)
  for (const [p, offsets] of offsetsOf) t.equal(committed.get(p), offsets.length, `partition ${p}: committed offset = messages read`)
})

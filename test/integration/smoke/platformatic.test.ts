import { Consumer, Producer, ProduceAcks, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import type { Message, MessageToProduce } from '@platformatic/kafka'
import { test } from 'tap'
import { committedOffsets, deleteGroups, deleteTopics, ensureTopics } from '../../../src/kafka/admin.ts'

// Smoke test of @platformatic/kafka against the real Kafka of scripts/stack.sh: a keyed round
// trip through its Producer and a Consumer stream with autocommit off and commits by hand.
const BROKERS = process.env.SLUICE_KAFKA_BROKERS
if (BROKERS === undefined || BROKERS === '') {
  throw new Error('SLUICE_KAFKA_BROKERS is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const bootstrapBrokers = BROKERS.split(',')
const PARTITIONS = 3
const MESSAGES = 1_000
const KEYS = 50
const WAIT_MS = 30_000
const COMMIT_EVERY = 100

type StringMessage = Message<string, string, string, string>

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

test('@platformatic/kafka: keyed produce, consume with manual commits', async (t) => {
  const topic = uniqueName('smoke_plt')
  const group = uniqueName('smoke_pltg')
  await ensureTopics(BROKERS, [{ name: topic, partitions: PARTITIONS }])

  const producer = new Producer({
    clientId: uniqueName('smoke-plt-producer'),
    bootstrapBrokers,
    serializers: stringSerializers,
    // idempotent: a produce request is retried whole (every partition in it) when one partition
    // answers with an error, e.g. a leader not ready yet on a slow machine; without producer ids
    // and sequences the partitions that had written it store it twice
    idempotent: true,
    acks: ProduceAcks.ALL
  })
  const consumer = new Consumer({
    clientId: uniqueName('smoke-plt-consumer'),
    bootstrapBrokers,
    groupId: group,
    deserializers: stringDeserializers,
    autocommit: false,
    sessionTimeout: 10_000,
    heartbeatInterval: 500
  })
  t.teardown(async () => {
    await producer.close().catch(() => {})
    await consumer.close(true).catch(() => {})
    await deleteGroups(BROKERS, [group]).catch(() => {})
    await deleteTopics(BROKERS, [topic])
  })

  const messages: Array<MessageToProduce<string, string, string, string>> = []
  for (let i = 0; i < MESSAGES; i++) messages.push({ topic, key: `key-${i % KEYS}`, value: `value-${i}` })
  const result = await producer.send({ messages })
  t.ok((result.offsets ?? []).length > 0, 'the broker acknowledged the batch')
  t.same((result.offsets ?? []).filter((o) => o.offset !== 0n), [], 'each partition stored the batch once, from offset 0')

  const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
  // a missing message ends the loop (and fails the count) instead of hanging
  const guard = setTimeout(() => { stream.close().catch(() => {}) }, WAIT_MS)
  const received: StringMessage[] = []
  const pending = new Map<number, bigint>()
  let commits = 0
  const commit = async (): Promise<void> => {
    if (pending.size === 0) return
    const offsets = [...pending].map(([partition, offset]) => ({ topic, partition, offset, leaderEpoch: -1 }))
    pending.clear()
    await consumer.commit({ offsets })
    commits++
  }
  for await (const m of stream) {
    received.push(m) // "processing", then the next offset to read is due for commit
    pending.set(m.partition, m.offset + 1n)
    if (received.length % COMMIT_EVERY === 0) await commit()
    if (received.length >= MESSAGES) break
  }
  clearTimeout(guard)
  await commit()

  t.equal(received.length, MESSAGES, `all ${MESSAGES} messages consumed`)
  t.ok(commits >= MESSAGES / COMMIT_EVERY, 'offsets committed by hand as processing went')
  const values = new Set(received.map((m) => m.value))
  t.equal(values.size, MESSAGES, 'each message once')
  t.same([...values].sort(), messages.map((m) => m.value).sort(), 'exactly the produced values')

  const partitionsOfKey = new Map<string, Set<number>>()
  const offsetsOf = new Map<number, number[]>()
  for (const m of received) {
    partitionsOfKey.set(m.key, (partitionsOfKey.get(m.key) ?? new Set()).add(m.partition))
    offsetsOf.set(m.partition, [...(offsetsOf.get(m.partition) ?? []), Number(m.offset)])
  }
  t.equal(partitionsOfKey.size, KEYS, `${KEYS} distinct keys`)
  t.same([...partitionsOfKey].filter(([, ps]) => ps.size !== 1).map(([k]) => k), [], 'every key always on one partition')
  t.equal(offsetsOf.size, PARTITIONS, 'the keys spread over all partitions')
  for (const [p, offsets] of offsetsOf) {
    t.same(offsets, offsets.map((_, i) => i), `partition ${p}: offsets 0..${offsets.length - 1} in order`)
  }

  await consumer.close(true)
  const committed = await committedOffsets(BROKERS, group, topic)
  t.equal([...committed.values()].reduce((a, b) => a + b, 0), MESSAGES, `committed offsets sum to ${MESSAGES}`)
  for (const [p, offsets] of offsetsOf) t.equal(committed.get(p), offsets.length, `partition ${p}: committed offset = messages read`)
})

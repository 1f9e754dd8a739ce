import { test } from 'tap'
import { deleteGroups, deleteTopics, ensureTopics } from '../../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { RdkafkaSource } from '../../../src/kafka/rdkafka-source.ts'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { brokers, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

// With large messages, a consume call asks for about fetchBatchBytes, not fetchBatch messages:
// 2,000 chunk messages of 700 KB in one call would hold over a GB.
test('rdkafka: consume batches are capped in bytes as well as in messages', async (t) => {
  const topic = uniqueName('batch_bytes')
  const group = uniqueName('batch_bytes_g')
  await ensureTopics(brokers, [{ name: topic, partitions: 1 }])
  const source = new RdkafkaSource({ brokers, groupId: group, clientId: group, topics: [topic], fetchBatch: 1000, fetchBatchBytes: 1024 * 1024 })
  t.teardown(async () => {
    await source.close().catch(() => {})
    await deleteGroups(brokers, [group]).catch(() => {})
    await deleteTopics(brokers, [topic])
  })
  const producer = new RdkafkaProducer({ brokers, clientId: group })
  await producer.connect()
  t.teardown(async () => { await producer.close() })
  const value = Buffer.alloc(300 * 1024, 'x')
  const send = async (from: number, n: number): Promise<void> => {
    await producer.produceBatch(Array.from({ length: n }, (_, i) => ({ topic, key: `k${from + i}`, value })))
  }

  const batches: number[] = []
  let received = 0
  await source.start({
    onAssign: async () => [],
    onRevoke: async () => {},
    onBatch: (messages: KafkaMessage[]) => { batches.push(messages.length); received += messages.length },
    onError: (err) => { t.fail(err.message) }
  })
  // the first batch teaches the source the message size; then 39 more are waiting at once
  await send(0, 1)
  await waitFor('the first message', () => received >= 1, 30_000, 20)
  await send(1, 39)
  await waitFor('40 messages', () => received >= 40, 30_000, 20)
  t.equal(received, 40, 'every message delivered once')
  t.ok(batches.length >= 14, `40 messages in at least 14 batches (${batches.join(', ')})`)
  // 1 MiB / 300 KiB: every call after the first asks for 3 messages
  t.ok(batches.slice(1).every((n) => n <= 3), `batches after the first hold at most 3 messages: ${batches.join(', ')}`)
})

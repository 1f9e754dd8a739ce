// Reads a topic from its start with node-rdkafka (a throw-away group, nothing committed).
import Kafka from 'node-rdkafka'
import type { ConsumerGlobalConfig, Message } from 'node-rdkafka'
import { brokers, uniqueName } from './worker-harness.ts'

/** Reads records of a topic's partition 0 from its start until `until` holds or the deadline. */
export async function readTopic (topic: string, until: (got: Message[]) => boolean, timeoutMs = 30_000): Promise<Message[]> {
  const consumer = new Kafka.KafkaConsumer({
    'bootstrap.servers': brokers,
    'group.id': uniqueName('snapshot-reader'),
    'enable.auto.commit': false
  } as ConsumerGlobalConfig, {})
  consumer.setDefaultConsumeTimeout(200)
  await new Promise<void>((resolve, reject) => consumer.connect({ timeout: 15_000 }, (err) => { if (err) reject(err); else resolve() }))
  try {
    consumer.assign([{ topic, partition: 0, offset: 0 }])
    const out: Message[] = []
    const deadline = Date.now() + timeoutMs
    while (!until(out) && Date.now() < deadline) {
      out.push(...await new Promise<Message[]>((resolve, reject) => consumer.consume(100, (err, m) => { if (err) reject(err); else resolve(m) })))
    }
    return out
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()))
  }
}

/** The JSON values of the records (the envelope of design.md for snapshot events). */
export function values (messages: Message[]): any[] {
  return messages.map((m) => JSON.parse((m.value as Buffer).toString('utf8')))
}

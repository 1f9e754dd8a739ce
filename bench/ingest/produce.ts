// Producing the seed mix for the ingest benchmark: all at once, or at a steady rate.
import { setTimeout as sleep } from 'node:timers/promises'
import { RdkafkaProducer } from '../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../src/kafka/producer.ts'
import { sampleEvents } from '../../src/workload/seed-mix.ts'

export const START_MS = Date.parse('2025-02-25T00:00:00Z')

export interface Produced {
  seconds: number
  bytes: number
  /** rate-limited runs: (events sent so far, time) after each batch */
  sent: Array<[number, number]>
}

/** `count` seed-mix events (seed 7 unless given), keyed by aggregate id; `ratePerSec` > 0 paces them in 10 ms batches. */
export async function produce (brokers: string, topic: string, count: number, opts: { ratePerSec?: number, seed?: number } = {}): Promise<Produced> {
  const rate = opts.ratePerSec ?? 0
  const producer = new RdkafkaProducer({ brokers, clientId: 'sluice-bench' })
  await producer.connect()
  const started = performance.now()
  const per = rate > 0 ? Math.max(1, Math.floor(rate / 100)) : 10_000
  const sent: Array<[number, number]> = []
  let bytes = 0
  let n = 0
  let batch: ProduceRecord[] = []
  const flush = async (): Promise<void> => {
    if (rate > 0) {
      const wait = started + (n / rate) * 1000 - performance.now()
      if (wait > 0) await sleep(wait)
    }
    await producer.produceBatch(batch)
    if (rate > 0) sent.push([n, performance.now()])
    batch = []
  }
  try {
    for (const r of sampleEvents({ count, seed: opts.seed ?? 7, startMs: START_MS })) {
      batch.push({ topic, key: r.key, value: r.value })
      bytes += r.value.length + r.key.length
      n++
      if (batch.length === per) await flush()
    }
    if (batch.length > 0) await flush()
  } finally {
    await producer.close()
  }
  return { seconds: (performance.now() - started) / 1000, bytes, sent }
}

/** One event to each partition (seed `seed`, unique ids): a consumer that stored them all is up and assigned. */
export async function produceOnePerPartition (brokers: string, topic: string, partitions: number, seed: number): Promise<void> {
  const producer = new RdkafkaProducer({ brokers, clientId: 'sluice-bench' })
  await producer.connect()
  try {
    const records: ProduceRecord[] = []
    let p = 0
    for (const r of sampleEvents({ count: partitions, seed, startMs: START_MS })) records.push({ topic, key: r.key, value: r.value, partition: p++ })
    await producer.produceBatch(records)
  } finally {
    await producer.close()
  }
}

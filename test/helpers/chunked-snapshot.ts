// Produces a snapshot as SNAPSHOT_CHUNK messages (pseudo-random bytes, so compression cannot
// shrink them), optionally interleaved with regular events, and watches a worker while it
// stores it: RSS, the partition's stored offset, the snapshot's index row.
import { createHash } from 'node:crypto'
import { RdkafkaProducer } from '../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../src/kafka/producer.ts'
import type { Fixture } from './worker-harness.ts'
import { brokers, uniqueName } from './worker-harness.ts'

export const MiB = 1024 * 1024

/** Deterministic pseudo-random bytes (xorshift32), `size` bytes in `chunk`-byte pieces. */
export function * randomChunks (size: number, chunk: number, seed: number): Generator<Buffer> {
  let x = seed >>> 0 || 1
  for (let done = 0; done < size; done += chunk) {
    const n = Math.min(chunk, size - done)
    const words = new Uint32Array(Math.ceil(n / 4))
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      words[i] = x
    }
    yield Buffer.from(words.buffer, 0, n)
  }
}

export interface ProducedSnapshot {
  snapshotId: string
  sha256: string
  size: number
  chunks: number
  /** regular events produced in between (their event ids) */
  eventIds: string[]
}

function event (type: string, payload: Record<string, unknown>, aggregateId: string): Record<string, unknown> {
  return {
    eventId: uniqueName('evt'),
    eventType: type,
    timestamp: new Date().toISOString(),
    aggregateType: type.startsWith('SNAPSHOT') ? 'Snapshot' : 'Task',
    aggregateId,
    version: 1,
    payload: { entity: type.startsWith('SNAPSHOT') ? 'Snapshot' : 'Task', entityId: aggregateId, user: 'tester', workspace: 'default', ...payload },
    metadata: { schemaVersion: '1', source: 'chunk-test' }
  }
}

/** Produces `count` regular events with one key; returns their event ids. */
export async function produceRegular (topic: string, key: string, count: number): Promise<string[]> {
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('regular-producer') })
  await producer.connect()
  const events = Array.from({ length: count }, (_, i) => event('TASK_CREATED', { changes: `task ${i}` }, key))
  try {
    await producer.produceBatch(events.map((e) => ({ topic, key, value: JSON.stringify(e) })))
  } finally {
    await producer.close()
  }
  return events.map((e) => e.eventId as string)
}

/**
 * Produces one snapshot of `size` bytes as chunks of `chunk` bytes (base64), keyed by its id,
 * with `regularEvery` > 0 adding a TASK_UPDATED (same key, same partition) after every that
 * many chunks. `seqs`: only the chunks [from, to) are sent (the hash is the whole snapshot's).
 */
export async function produceChunkedSnapshot (topic: string, opts: { size: number, chunk: number, seed?: number, regularEvery?: number, snapshotId?: string, seqs?: [number, number] }): Promise<ProducedSnapshot> {
  const snapshotId = opts.snapshotId ?? uniqueName('chunked')
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('chunk-producer') })
  await producer.connect()
  const hash = createHash('sha256')
  const total = Math.ceil(opts.size / opts.chunk)
  const eventIds: string[] = []
  let seq = 0
  let batch: ProduceRecord[] = []
  let batchBytes = 0
  try {
    const [from, to] = opts.seqs ?? [0, total]
    for (const bytes of randomChunks(opts.size, opts.chunk, opts.seed ?? 0x5eed)) {
      hash.update(bytes)
      if (seq < from || seq >= to) { seq++; continue } // hashed, not sent (another call sends it)
      const value = JSON.stringify(event('SNAPSHOT_CHUNK', { snapshotId, seq, last: seq === total - 1, data: bytes.toString('base64'), counts: { blocks: total } }, snapshotId))
      batch.push({ topic, key: snapshotId, value })
      batchBytes += value.length
      seq++
      if (opts.regularEvery !== undefined && opts.regularEvery > 0 && seq % opts.regularEvery === 0) {
        const e = event('TASK_UPDATED', { changes: `between chunk ${seq - 1} and ${seq}` }, snapshotId)
        eventIds.push(e.eventId as string)
        batch.push({ topic, key: snapshotId, value: JSON.stringify(e) })
      }
      if (batchBytes >= 16 * MiB) {
        await producer.produceBatch(batch)
        batch = []
        batchBytes = 0
      }
    }
    if (batch.length > 0) await producer.produceBatch(batch)
  } finally {
    await producer.close()
  }
  return { snapshotId, sha256: hash.digest('hex'), size: opts.size, chunks: total, eventIds }
}

/** The first offset of the snapshot's chunks in its partition (the stored offset must not pass it). */
export async function storedOffsets (fx: Fixture): Promise<Map<number, number>> {
  const r = await fx.pool.query('SELECT partition, next_offset FROM sluice_offsets WHERE consumer_group = $1 AND topic = $2', [fx.group, fx.topic])
  return new Map(r.rows.map((x) => [x.partition as number, Number(x.next_offset)]))
}

export async function indexRow (fx: Fixture, snapshotId: string): Promise<any | undefined> {
  return (await fx.pool.query('SELECT * FROM snapshots WHERE snapshot_id = $1', [snapshotId])).rows[0]
}

// How far a consumer has durably got, per partition, polled until every partition is done.
import { setTimeout as sleep } from 'node:timers/promises'
import { Admin } from '@platformatic/kafka'
import type pg from 'pg'

/** next durable offset per partition */
export type Positions = Map<number, number>
export type PositionReader = () => Promise<Positions>

export interface Progress {
  /** when every partition reached its end (performance.now()) */
  doneAt: number
  /** when each partition reached its end, by partition */
  finishedAt: Map<number, number>
  /** when the first offset became durable */
  firstAt: number
  /** (durable events, time) per poll: produce->durable latency */
  samples: Array<[number, number]>
}

/** sluice's durable positions: the offsets it stores with the rows (sluice_offsets). */
export function sluiceOffsets (pool: pg.Pool, schema: string, group: string, topic: string): PositionReader {
  const sql = `SELECT partition, next_offset FROM "${schema}".sluice_offsets WHERE consumer_group = $1 AND topic = $2`
  return async () => {
    const r = await pool.query(sql, [group, topic])
    return new Map(r.rows.map((row) => [Number(row.partition), Number(row.next_offset)]))
  }
}

/**
 * A Kafka consumer group's committed offsets (Bento commits a message's offset only after its
 * output acknowledged the write). One admin connection for the whole poll.
 */
export function groupOffsets (brokers: string, group: string, topic: string, partitions: number): { read: PositionReader, close: () => Promise<void> } {
  const admin = new Admin({ clientId: 'sluice-bench', bootstrapBrokers: brokers.split(','), retries: 2, retryDelay: 100 })
  const partitionIndexes = Array.from({ length: partitions }, (_, i) => i)
  return {
    read: async () => {
      const out: Positions = new Map()
      const groups = await admin.listConsumerGroupOffsets({ groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes }] }] })
      for (const g of groups) {
        for (const t of g.topics) {
          for (const p of t.partitions) if (p.committedOffset >= 0n) out.set(p.partitionIndex, Number(p.committedOffset))
        }
      }
      return out
    },
    close: async () => { await admin.close().catch(() => {}) }
  }
}

/** The end offset of every partition of a topic (its high watermark). */
export async function endOffsets (brokers: string, topic: string, partitions: number): Promise<Positions> {
  const admin = new Admin({ clientId: 'sluice-bench', bootstrapBrokers: brokers.split(','), retries: 2, retryDelay: 100 })
  try {
    const listed = await admin.listOffsets({ topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, i) => ({ partitionIndex: i, timestamp: -1n })) }] })
    const out: Positions = new Map()
    for (const t of listed) for (const p of t.partitions) out.set(p.partitionIndex, Number(p.offset))
    return out
  } finally {
    await admin.close().catch(() => {})
  }
}

/**
 * Polls `read` every `everyMs` until every partition reached `ends` (or, given `total`, until
 * that many events are durable in all). `alive` is asked between polls: a consumer that died
 * fails the run instead of hanging it. A poll that fails (a consumer still creating its
 * tables or joining its group) counts as no progress.
 */
export async function follow (read: PositionReader, ends: Positions, alive: () => void, everyMs = 20, total = Infinity): Promise<Progress> {
  const finishedAt = new Map<number, number>()
  const samples: Array<[number, number]> = []
  let firstAt = NaN
  for (;;) {
    const at = performance.now()
    const now = await read().catch(() => new Map<number, number>())
    let durable = 0
    for (const [p, end] of ends) {
      const pos = Math.min(now.get(p) ?? 0, end)
      durable += pos
      if (pos >= end && !finishedAt.has(p)) finishedAt.set(p, at)
    }
    samples.push([durable, at])
    if (durable > 0 && Number.isNaN(firstAt)) firstAt = at
    if (finishedAt.size === ends.size || durable >= total) return { doneAt: at, finishedAt, firstAt, samples }
    alive()
    await sleep(everyMs)
  }
}

/** For each produced batch (cumulative count, time sent), how long until the durable count covered it: p50 and p99 in ms. */
export function latencies (sent: Array<[number, number]>, durable: Array<[number, number]>): { p50: number, p99: number } {
  const out: number[] = []
  let j = 0
  for (const [n, t] of sent) {
    while (j < durable.length && (durable[j] as [number, number])[0] < n) j++
    if (j < durable.length) out.push(Math.max(0, (durable[j] as [number, number])[1] - t))
  }
  out.sort((a, b) => a - b)
  const pick = (q: number): number => out[Math.min(out.length - 1, Math.floor(q * out.length))] ?? NaN
  return { p50: pick(0.5), p99: pick(0.99) }
}

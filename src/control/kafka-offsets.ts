import { SluiceError, errorMessage } from '../errors.ts'
import { parseBrokers } from '../kafka/brokers.ts'
import type { TopicPartition } from '../kafka/types.ts'

export interface PartitionBounds { earliest: number, latest: number, atTimestamp: number | null }

/**
 * Earliest and latest offsets of partitions, and optionally the first offset whose timestamp
 * is at or after `timestampMs` (null when no message is that recent). Keyed `topic:partition`.
 */
export async function partitionBounds (brokers: string, tps: readonly TopicPartition[], timestampMs?: number): Promise<Map<string, PartitionBounds>> {
  // imported on first use, as in src/kafka/admin.ts (the library's import takes 0.7-0.8 s)
  const { Admin, ListOffsetTimestamps } = await import('@platformatic/kafka')
  const admin = new Admin({ clientId: 'sluice-offsets', bootstrapBrokers: parseBrokers(brokers), retries: 2, retryDelay: 250 })
  const list = async (ts: bigint): Promise<Map<string, number>> => {
    const byTopic = new Map<string, number[]>()
    for (const tp of tps) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition])
    const res = await admin.listOffsets({ topics: [...byTopic].map(([name, ps]) => ({ name, partitions: ps.map((p) => ({ partitionIndex: p, timestamp: ts })) })) })
    const out = new Map<string, number>()
    for (const t of res) for (const p of t.partitions) out.set(`${t.name}:${p.partitionIndex}`, Number(p.offset))
    return out
  }
  try {
    const earliest = await list(ListOffsetTimestamps.EARLIEST)
    const latest = await list(ListOffsetTimestamps.LATEST)
    const at = timestampMs === undefined ? null : await list(BigInt(timestampMs))
    const out = new Map<string, PartitionBounds>()
    for (const tp of tps) {
      const k = `${tp.topic}:${tp.partition}`
      const e = earliest.get(k)
      const l = latest.get(k)
      if (e === undefined || l === undefined) continue
      const a = at?.get(k)
      out.set(k, { earliest: e, latest: l, atTimestamp: a === undefined || a < 0 ? null : a })
    }
    return out
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `listing offsets: ${errorMessage(err)}`, { cause: err })
  } finally {
    await admin.close().catch(() => {})
  }
}

/** Partition count of each of the topics that exist (missing topics are left out). */
export async function topicPartitionCounts (brokers: string, topics: readonly string[]): Promise<Map<string, number>> {
  const { Admin } = await import('@platformatic/kafka')
  const admin = new Admin({ clientId: 'sluice-offsets', bootstrapBrokers: parseBrokers(brokers), retries: 2, retryDelay: 250 })
  try {
    const existing = new Set(await admin.listTopics())
    const present = [...new Set(topics)].filter((t) => existing.has(t))
    const out = new Map<string, number>()
    if (present.length === 0) return out
    const md = await admin.metadata({ topics: present })
    for (const t of present) {
      const n = md.topics.get(t)?.partitionsCount
      if (n !== undefined) out.set(t, n)
    }
    return out
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `reading topic metadata: ${errorMessage(err)}`, { cause: err })
  } finally {
    await admin.close().catch(() => {})
  }
}

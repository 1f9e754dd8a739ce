/** @platformatic/kafka specifics of the platformatic source: fatal errors, fetch responses, messages. */
import { ListOffsetTimestamps, findErrorBy } from '@platformatic/kafka'
import type { ClusterMetadata, Consumer, KafkaRecord, RecordsBatch, fetchV17 } from '@platformatic/kafka'
import type { KafkaMessage, TopicPartition } from './types.ts'
import { tpKey } from './types.ts'

/** A live partition: its next offset to fetch. */
export interface PartState {
  readonly key: string
  readonly topic: string
  readonly partition: number
  position: bigint
}

interface FetchTopic { topicId: string, partitions: Array<{ partition: number, fetchOffset: bigint, partitionMaxBytes: number, currentLeaderEpoch: number, lastFetchedEpoch: number }> }

/** One fetch request's topics for the partitions of one leader, with what it asked for (to match the response). */
export function fetchRequest (states: PartState[], metadata: ClusterMetadata, partitionMaxBytes: number): { topics: FetchTopic[], requested: Map<string, bigint>, topicById: Map<string, string> } {
  const requested = new Map<string, bigint>()
  const topics = new Map<string, FetchTopic>()
  const topicById = new Map<string, string>()
  for (const s of states) {
    const id = metadata.topics.get(s.topic)?.id as string
    topicById.set(id, s.topic)
    let t = topics.get(s.topic)
    if (t === undefined) topics.set(s.topic, t = { topicId: id, partitions: [] })
    t.partitions.push({ partition: s.partition, fetchOffset: s.position, partitionMaxBytes, currentLeaderEpoch: -1, lastFetchedEpoch: -1 })
    requested.set(s.key, s.position)
  }
  return { topics: [...topics.values()], requested, topicById }
}

export type FetchResponse = fetchV17.FetchResponse

export const EMPTY = Buffer.alloc(0)
/** record batch attribute bit: timestamps are the broker's append time */
const LOG_APPEND_TIME = 0x08
// Kafka protocol error codes handled per partition
export const OFFSET_OUT_OF_RANGE = 1
export const UNKNOWN_TOPIC_OR_PARTITION = 3
export const TOPIC_AUTHORIZATION_FAILED = 29
export const UNKNOWN_TOPIC_ID = 100
/** how long a topic may stay unknown to its leader before it is fatal */
export const UNKNOWN_TOPIC_GRACE_MS = 10_000

/** The fetch response inside a (possibly nested) fetch error: its other partitions are usable. */
export function responseOf (err: unknown): FetchResponse | null {
  const seen = new Set<unknown>()
  const stack: unknown[] = [err]
  let found: FetchResponse | null = null
  while (stack.length > 0) {
    const e = stack.pop() as { response?: FetchResponse, errors?: unknown[] } | null
    if (e === null || typeof e !== 'object' || seen.has(e)) continue
    seen.add(e)
    if (e.response !== undefined && Array.isArray(e.response.responses)) found = e.response
    if (Array.isArray(e.errors)) stack.push(...e.errors)
  }
  return found
}

export function toMessage (topic: string, partition: number, batch: RecordsBatch, r: KafkaRecord, offset: bigint): KafkaMessage {
  let headers: Record<string, Buffer> | undefined
  if (r.headers.length > 0) {
    headers = {}
    for (const [k, v] of r.headers) {
      if (k !== null) headers[k.toString()] = v ?? EMPTY
    }
  }
  // LogAppendTime topics carry the broker's time in the batch header
  const timestamp = Number((batch.attributes & LOG_APPEND_TIME) !== 0 ? batch.maxTimestamp : batch.firstTimestamp + r.timestampDelta)
  const size = (r.key === null ? 0 : r.key.length) + (r.value === null ? 0 : r.value.length)
  return { topic, partition, offset: Number(offset), key: r.key, value: r.value, timestamp, headers, size }
}

/** errors that waiting will not cure: authentication, authorization, an unknown topic or group id */
export function isFatalPlatformatic (err: unknown): boolean {
  const e = err as Error
  return findErrorBy(e, 'code', 'PLT_KFK_AUTHENTICATION') !== null ||
    findErrorBy(e, 'apiId', 'SASL_AUTHENTICATION_FAILED') !== null ||
    findErrorBy(e, 'apiId', 'GROUP_AUTHORIZATION_FAILED') !== null ||
    findErrorBy(e, 'apiId', 'TOPIC_AUTHORIZATION_FAILED') !== null ||
    findErrorBy(e, 'apiId', 'INVALID_GROUP_ID') !== null ||
    /Unknown topic/i.test(e?.message ?? '')
}

/** Start offsets of partitions onAssign gave none for: the group's committed offset, else the earliest. */
export async function defaultOffsets (consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, tps: TopicPartition[], into: Map<string, bigint>): Promise<void> {
  const byTopic = new Map<string, number[]>()
  for (const tp of tps) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition])
  const committed = await consumer.listCommittedOffsets({ topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) })
  const rest: Record<string, number[]> = {}
  for (const tp of tps) {
    const c = committed.get(tp.topic)?.[tp.partition]
    if (typeof c === 'bigint' && c >= 0n) into.set(tpKey(tp.topic, tp.partition), c)
    else (rest[tp.topic] ??= []).push(tp.partition)
  }
  if (Object.keys(rest).length === 0) return
  const earliest = await consumer.listOffsets({ topics: Object.keys(rest), partitions: rest, timestamp: ListOffsetTimestamps.EARLIEST })
  for (const [topic, partitions] of Object.entries(rest)) {
    for (const p of partitions) {
      const e = earliest.get(topic)?.[p]
      into.set(tpKey(topic, p), typeof e === 'bigint' && e >= 0n ? e : 0n)
    }
  }
}

import type { SluiceError } from '../errors.ts'

/** A partition of a topic. */
export interface TopicPartition {
  topic: string
  partition: number
}

/** A partition and an offset: for positions, the next offset to read. */
export interface TopicPartitionOffset extends TopicPartition {
  offset: number
}

/** One Kafka record as every source delivers it. Offsets fit a double (< 2^53). */
export interface KafkaMessage {
  topic: string
  partition: number
  offset: number
  key: Buffer | null
  value: Buffer | null
  /** broker or producer timestamp, ms since the epoch */
  timestamp: number
  headers: Record<string, Buffer> | undefined
  /** key + value bytes, what the in-flight budget counts */
  size: number
}

export interface SourceHandlers {
  /**
   * Partitions were assigned. Resolves with the offsets to start each one from (the offsets
   * stored with the data); a partition missing from the answer starts from the group's
   * committed offset, else from the earliest. No message of these partitions is delivered
   * before it resolves.
   */
  onAssign (partitions: TopicPartition[]): Promise<TopicPartitionOffset[]>
  /**
   * Partitions are being revoked. Resolves once their in-flight work is settled (written or
   * dropped); messages of these partitions that arrive later are stale and must be ignored.
   */
  onRevoke (partitions: TopicPartition[]): Promise<void>
  /** Messages in offset order within each partition. Called synchronously, once per fetch. */
  onBatch (messages: KafkaMessage[]): void
  /** A non-retriable source error (authentication, unknown topic...) */
  onError (error: Error): void
  /** A transient failure the source recovered from by itself (e.g. its consumer replaced): counted as a retry of `operation` */
  onRetry? (operation: string, error: SluiceError): void
}

/** What the pipeline runner needs from a Kafka consumer; implemented by both sources. */
export interface Source {
  readonly kind: 'rdkafka' | 'platformatic'
  start (handlers: SourceHandlers): Promise<void>
  pause (partitions: TopicPartition[]): void
  resume (partitions: TopicPartition[]): void
  /**
   * Moves an assigned partition's next fetch to `offset` (an operator's offset move of a
   * paused partition): messages fetched or held for it before are dropped.
   */
  seek (tp: TopicPartition, offset: number): Promise<void>
  /** Advisory group commit of next offsets, after the database commit (for lag tools). */
  commit (offsets: TopicPartitionOffset[]): Promise<void>
  assignments (): TopicPartition[]
  /** true while the consumer is a member of its group */
  isReady (): boolean
  /** high watermark per assigned partition, keyed `topic:partition` */
  highWatermarks (): Promise<Map<string, number>>
  close (): Promise<void>
}

export function tpKey (topic: string, partition: number): string {
  return `${topic}:${partition}`
}

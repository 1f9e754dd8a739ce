import type { Pool, PoolClient } from 'pg'
import type { Logger } from 'pino'
import type { SluiceError } from '../errors.ts'
import type { KnownTopics } from '../kafka/admin.ts'
import type { ProduceRecord } from '../kafka/producer.ts'
import type { KafkaMessage, TopicPartition } from '../kafka/types.ts'
import type { SluiceMetrics } from '../metrics/metrics.ts'

/**
 * A sink stores the records of one route. Its writes run inside the transaction that also
 * stores the dead letters and the partitions' next offsets, so a batch is durable as a whole
 * or not at all. A sink whose data lives elsewhere (S3) does that work in `write`, finishes it
 * before writing what it did (an index row) in the transaction, and holds the offset of work
 * that outlives the batch (`heldOffset`).
 */
export interface Sink<R> {
  readonly name: string
  /** A buffer for the records of one partition between two flushes. */
  createBuffer (): SinkBuffer<R>
  /** Writes the buffers (one per partition) on `client`, inside an open transaction. */
  write (client: PoolClient, buffers: ReadonlyArray<SinkBuffer<R>>): Promise<SinkWriteResult>
  /**
   * Called with the buffers `write` gets next, before the batch transaction is opened: a sink
   * whose data lives elsewhere does its network I/O here (S3 uploads, state dumps, the events
   * announcing them), so that no connection idles in a transaction meanwhile. A throw fails the
   * batch like a failed write (retried when transient, `prepare` included). Optional: `write`
   * must also work unprepared.
   */
  prepare? (buffers: ReadonlyArray<SinkBuffer<R>>): Promise<void>
  /**
   * A sink that stores some of its records through another sink (the S3 snapshot sink's
   * event-log rows, through the event log) names it here. When that sink also has buffers in
   * the batch, the lane asks `handOff` after `prepare`, before the transaction opens, and
   * writes the buffer it returns with that sink's own: one write of theirs per batch, not two.
   * That write's result (stored, duplicates, rejections) is counted under the receiving
   * sink's route.
   */
  handsOffTo? (): Sink<unknown>
  /**
   * The records of the prepared buffers that the sink named by `handsOffTo` stores, as one of
   * its buffers (null: none); `write` then leaves them to it. Called at most once per prepare.
   */
  handOff? (buffers: ReadonlyArray<SinkBuffer<R>>): SinkBuffer<unknown> | null

  // Optional hooks, for sinks whose work outlives a batch (the S3 snapshot sink); a sink that
  // only writes inside the transaction needs none of them.

  /**
   * Called with the buffers `write` got, once their batch's transaction has committed: work
   * derived from what committed, done in the background (the snapshot index document). Must
   * return at once and not throw.
   */
  committed? (buffers: ReadonlyArray<SinkBuffer<R>>): void
  /** Called once at start-up (app.ts), before any message is consumed; a throw stops start-up. */
  open? (runtime: SinkRuntime): Promise<void>
  /** Called once at shutdown, after the last batch was written. */
  close? (): Promise<void>
  /**
   * Offset hold: the lowest offset of the partition the sink still needs, or undefined. A
   * sink that took in messages whose work is not finished when their batch commits (the
   * first chunk of a snapshot whose multipart upload is still open) returns that message's
   * offset; the lane then stores min(next offset, hold) for the partition, so a crash or a
   * rebalance reads the unfinished work again. Asked after `write`, before the offsets are
   * stored; must be synchronous and cheap.
   */
  heldOffset? (topic: string, partition: number): number | undefined
  /** Partitions were assigned to this worker (before their first message is delivered). */
  assigned? (partitions: TopicPartition[]): Promise<void>
  /** Partitions were revoked (after their in-flight batch settled or timed out). */
  revoked? (partitions: TopicPartition[]): Promise<void>
}

/** What the worker hands a sink's `open`: the resources it shares with it. */
export interface SinkRuntime {
  /** the consumer group (the key of sluice_offsets) */
  group: string
  /** the worker's pool (search_path: sluice's schema), for work outside the batch transaction */
  pool: Pool
  /** Kafka bootstrap servers, for the topics the sink produces to */
  brokers: string
  /** the worker's producer (the one dead letters go through) */
  producer: KnownTopics & { produceBatch (records: readonly ProduceRecord[]): Promise<void> }
  metrics: SluiceMetrics
  logger: Logger
}

export interface SinkBuffer<R> {
  /** Adds one record (hot path: synchronous, no promise) */
  add (record: R, origin: KafkaMessage): void
  readonly count: number
  readonly bytes: number
  /**
   * Work a record of this buffer started when it was taken in (a state dump), which `prepare`
   * would wait for: while it runs, the lane leaves the partition out of the batches it seals,
   * so its other partitions are not held up; the partition goes in once it settles. null
   * when nothing runs. Optional; must be synchronous and cheap, and the promise never rejects.
   */
  waiting? (): Promise<void> | null
}

export interface Rejected {
  origin: KafkaMessage
  error: SluiceError
}

/**
 * Why a copy of a stored event id was dropped: `identical` (same content and timestamp),
 * `restamped` (same content, another timestamp: a producer that stamps each send),
 * `differing` (other content: a producer bug, logged with both origins), `redelivered` (the
 * same Kafka message again), `unverified` (the stored copy's log row is gone: nothing to compare).
 */
export type DuplicateKind = 'identical' | 'restamped' | 'differing' | 'redelivered' | 'unverified'

export interface MessageOrigin {
  topic: string
  partition: number
  offset: number
}

export interface DuplicateDropped {
  eventId: string
  kind: DuplicateKind
  /** the copy that is stored */
  stored: MessageOrigin
  dropped: MessageOrigin
}

export interface SinkWriteResult {
  /** records newly stored */
  stored: number
  /** records already stored before (same event id): dropped */
  duplicates: number
  /** the duplicates by kind, from sinks that tell them apart (the lane's metric label) */
  duplicateKinds?: Partial<Record<DuplicateKind, number>>
  /** the duplicates of kind `differing`, with both origins (the lane logs them) */
  differing?: DuplicateDropped[]
  /** records the database refused, isolated from their neighbours: dead-lettered */
  rejected: Rejected[]
}

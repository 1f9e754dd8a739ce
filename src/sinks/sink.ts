import type { PoolClient } from 'pg'
import type { SluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'

/**
 * A sink stores the records of one route. Its writes run inside the transaction that also
 * stores the dead letters and the partitions' next offsets, so a batch is durable as a whole
 * or not at all. A sink whose data lives elsewhere (S3) does that work before `write` and
 * records what it did (an index row) inside the transaction.
 */
export interface Sink<R> {
  readonly name: string
  /** A buffer for the records of one partition between two flushes. */
  createBuffer (): SinkBuffer<R>
  /** Writes the buffers (one per partition) on `client`, inside an open transaction. */
  write (client: PoolClient, buffers: ReadonlyArray<SinkBuffer<R>>): Promise<SinkWriteResult>
}

export interface SinkBuffer<R> {
  /** Adds one record (hot path: synchronous, no promise) */
  add (record: R, origin: KafkaMessage): void
  readonly count: number
  readonly bytes: number
}

export interface Rejected {
  origin: KafkaMessage
  error: SluiceError
}

export interface SinkWriteResult {
  /** records newly stored */
  stored: number
  /** records already stored before (same event id): dropped */
  duplicates: number
  /** records the database refused, isolated from their neighbours: dead-lettered */
  rejected: Rejected[]
}

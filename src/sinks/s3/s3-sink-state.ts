// The S3 snapshot sink's state: what its `open` made (Open: the client, the chunk assembler,
// the state dumps, the index document) and what its `prepare` made of a batch for `write`.
import type { S3Client } from '@aws-sdk/client-s3'
import type { Pool } from 'pg'
import { classifyPgError } from '../../db/pg-errors.ts'
import type { ProduceRecord } from '../../kafka/producer.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { Rejected, SinkBuffer, SinkRuntime } from '../sink.ts'
import type { ChunkAssembler } from './chunk-assembler.ts'
import type { ChunkQueues } from './chunk-queue.ts'
import type { IndexDocumentWriter } from './index-document.ts'
import type { RetryPolicy } from './s3-ops.ts'
import type { SnapshotBuffer } from './snapshot-buffer.ts'
import { recordUpload } from './snapshot-index.ts'
import type { IndexEntry } from './snapshot-index.ts'
import type { SnapshotItem } from './snapshot-items.ts'
import type { StateDumps } from './state-dumps.ts'

/**
 * recordUpload on the worker's pool, its failures classified as PostgreSQL's (the lane retries
 * them). A new upload of a snapshot supersedes a pending removal of its row.
 */
export async function record (o: Pick<Open, 'pool' | 'unforgotten'>, row: Parameters<typeof recordUpload>[1]): Promise<void> {
  o.unforgotten.delete(row.snapshotId)
  try {
    await recordUpload(o.pool, row)
  } catch (err) {
    throw classifyPgError(err, 'recording a snapshot upload')
  }
}

/**
 * What `prepare` made of a batch (S3 work done, outside the transaction), for `write` (the
 * rows, inside it).
 */
export interface Prepared {
  /** the buffers it was made from: a retried batch regroups the same buffers */
  buffers: ReadonlyArray<SinkBuffer<EntityEvent>>
  indexed: Array<{ entry: IndexEntry, at: string, cause: EntityEvent }>
  /** snapshot_uploads rows to remove with the index rows */
  forget: Array<{ snapshotId: string, uploadId: string }>
  logged: Array<Pick<SnapshotItem, 'event' | 'origin'>>
  /** `logged` went to the event log's own write of the batch (handOff) */
  handedOff: boolean
  rejected: Rejected[]
  events: ProduceRecord[]
}

export type Buffer_ = SnapshotBuffer<Prepared>

/** What `prepare` made of exactly these buffers (a retried batch regroups the same ones), or null. */
export function preparedOf (bs: readonly Buffer_[]): Prepared | null {
  const p = bs[0]?.prepared ?? null
  return p === null || p.buffers.length !== bs.length || bs.some((b) => b.prepared !== p) ? null : p
}

export interface Open {
  rt: SinkRuntime
  s3: S3Client
  /** the worker's pool, for work outside the batch transaction */
  pool: Pool
  assembler: ChunkAssembler
  /** per partition: its chunks handled as they are consumed */
  queues: ChunkQueues
  retry: RetryPolicy
  lastSweep: number
  /** gives up chunked snapshots whose chunks stopped coming */
  expiry: NodeJS.Timeout
  /** snapshot ids whose upload row could not be deleted after a failure (database down): retried by the expiry timer */
  unforgotten: Set<string>
  /** the state dumps, started as triggers are read and shared by the batches they answer */
  dumps: StateDumps
  /** metadata/snapshot_index.json, rewritten after commits that indexed a snapshot */
  indexDocument: IndexDocumentWriter
}

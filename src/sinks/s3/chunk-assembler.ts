import type { S3Client } from '@aws-sdk/client-s3'
import type { Pool, PoolClient } from 'pg'
import type { Logger } from 'pino'
import { SluiceError } from '../../errors.ts'
import { tpKey } from '../../kafka/types.ts'
import type { TopicPartition } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'
import { classifyPgError } from '../../db/pg-errors.ts'
import { MultipartWriter } from './multipart-writer.ts'
import { PartPool } from './part-pool.ts'
import { CancelledError, abortUploadsOf, withS3Retry } from './s3-ops.ts'
import type { RetryPolicy } from './s3-ops.ts'
import { forgetUpload, indexedOrigins, recordUpload } from './snapshot-index.ts'
import type { IndexEntry } from './snapshot-index.ts'
import type { ChunkItem } from './snapshot-items.ts'

export interface AssemblerOptions {
  s3: S3Client
  bucket: string
  keyOf: (snapshotId: string, kind: 'chunked') => string
  /** autocommitted bookkeeping (snapshot_uploads), outside the batch transaction */
  pool: Pool
  partBytes: number
  queueSize: number
  retry: RetryPolicy
  logger: Logger
  /** an open snapshot with no chunk for this long is given up (expire) */
  chunkTimeoutMs: number
}

/** A chunked snapshot whose multipart upload is open. */
interface OpenSnapshot {
  id: string
  key: string
  partKey: string
  firstOffset: number
  lastOffset: number
  /** the next seq expected */
  expected: number
  lastSeq: number | null
  writer: MultipartWriter
  first: ChunkItem
  counts: Record<string, number> | null
  cancelled: boolean
  /** when its last chunk came (Date.now()) */
  lastChunkAt: number
  /** handle() calls in progress on it: never expired meanwhile */
  busy: number
}

/** A snapshot given up for want of chunks: what SNAPSHOT_FAILED says. */
export interface Expired { snapshotId: string, key: string, error: SluiceError, cause: EntityEvent }

export type ChunkOutcome =
  | { type: 'appended' | 'duplicate' | 'cancelled' }
  | { type: 'finished', entry: IndexEntry, at: string, uploadId: string, cause: EntityEvent }
  | { type: 'rejected', error: SluiceError, failed: { snapshotId: string, key: string, cause: EntityEvent } | null }

interface Finished { entry: IndexEntry, at: string, uploadId: string, cause: EntityEvent }

function chunkError (message: string): SluiceError {
  const err = new SluiceError('SLUICE_ERR_SNAPSHOT_CHUNK', message)
  ;(err as { stage?: string }).stage = 'sink:s3-snapshots'
  return err
}

/** A Map that forgets its oldest entries past `max`. */
class Recent<V> extends Map<string, V> {
  readonly #max: number
  constructor (max: number) { super(); this.#max = max }
  override set (k: string, v: V): this {
    this.delete(k)
    super.set(k, v)
    if (this.size > this.#max) this.delete(this.keys().next().value as string)
    return this
  }
}

/**
 * Streams SNAPSHOT_CHUNK messages into one multipart upload per snapshot, as they arrive
 * (in order, one partition per snapshot): bytes go to a MultipartWriter, so at most a part
 * being filled and queueSize parts in flight are held per open snapshot; the upload is
 * completed on the chunk marked last, never before. While a snapshot is open its first
 * chunk's offset is held (heldOffset), so a crash or a rebalance reads it all again; the
 * upload is recorded in snapshot_uploads, and whoever reads it again first aborts every
 * upload of the key (assigned / start). Batch retries re-send chunks already appended: they
 * are recognised by seq and skipped.
 */
export class ChunkAssembler {
  readonly #o: AssemblerOptions
  readonly #open = new Map<string, OpenSnapshot>()
  /** holds of revoked partitions: a batch of theirs still being written must not pass them */
  readonly #revokedHolds = new Map<string, number>()
  /** finished snapshots whose index row is not written yet: still held (see `indexed`) */
  readonly #indexing = new Map<string, { partKey: string, firstOffset: number }>()
  readonly #finished = new Recent<Finished>(256)
  readonly #failed = new Recent<string>(1024)
  readonly #parts: PartPool

  constructor (opts: AssemblerOptions) {
    this.#o = opts
    this.#parts = new PartPool(opts.partBytes, opts.queueSize)
  }

  get openCount (): number { return this.#open.size }

  heldOffset (topic: string, partition: number): number | undefined {
    const pk = tpKey(topic, partition)
    let min = this.#revokedHolds.get(pk)
    for (const s of this.#open.values()) {
      if (s.partKey === pk && (min === undefined || s.firstOffset < min)) min = s.firstOffset
    }
    for (const s of this.#indexing.values()) {
      if (s.partKey === pk && (min === undefined || s.firstOffset < min)) min = s.firstOffset
    }
    return min
  }

  /**
   * The batch that carries a snapshot's last chunk writes its index row: from then on the
   * stored offset may pass its first chunk. Until then a finished snapshot holds its
   * partition like an open one (its chunks are handled ahead of their batches: the batch
   * before the last chunk's must not store an offset past the first chunk).
   */
  indexed (snapshotId: string): void {
    this.#indexing.delete(snapshotId)
  }

  async handle (c: ChunkItem, db: Pick<PoolClient, 'query'>): Promise<ChunkOutcome> {
    const open = this.#open.get(c.snapshotId)
    if (open !== undefined) {
      open.lastChunkAt = Date.now()
      open.busy++
    }
    try {
      return await this.#handle(c, db)
    } finally {
      if (open !== undefined) open.busy--
    }
  }

  /**
   * Gives up the open snapshots that received no chunk for chunkTimeoutMs (their producer went
   * away): upload aborted, hold released (the partition's offset moves on with its next
   * batch), later chunks of them rejected as failed. Returns them for SNAPSHOT_FAILED.
   */
  async expire (now = Date.now()): Promise<Expired[]> {
    const out: Expired[] = []
    for (const s of [...this.#open.values()]) {
      const idle = now - s.lastChunkAt
      if (s.busy > 0 || idle < this.#o.chunkTimeoutMs) continue
      const error = chunkError(`snapshot ${s.id}: no chunk for ${Math.round(idle / 1000)} s after chunk ${s.expected - 1} (SLUICE_S3_CHUNK_TIMEOUT_MS ${this.#o.chunkTimeoutMs}): given up`)
      this.#failed.set(s.id, `${error.code}: ${error.message}`.slice(0, 300))
      this.#o.logger.error({ snapshotId: s.id, received: s.expected, idleMs: idle }, 'chunked snapshot given up: no chunk for too long')
      await this.#discard(s)
      out.push({ snapshotId: s.id, key: s.key, error, cause: s.first.event })
    }
    return out
  }

  async #handle (c: ChunkItem, db: Pick<PoolClient, 'query'>): Promise<ChunkOutcome> {
    const pk = tpKey(c.origin.topic, c.origin.partition)
    let s = this.#open.get(c.snapshotId)
    if (s !== undefined && s.partKey !== pk) {
      return { type: 'rejected', error: chunkError(`chunks of snapshot ${c.snapshotId} arrive on ${s.partKey} and ${pk}: key a snapshot's chunks by its snapshotId`), failed: null }
    }
    if (s !== undefined && c.seq === 0 && c.origin.offset > s.lastOffset) {
      this.#o.logger.warn({ snapshotId: s.id, received: s.expected }, 'snapshot started over by its producer: aborting its upload')
      await this.#discard(s)
      s = undefined
    }
    if (s === undefined) {
      const done = this.#finished.get(c.snapshotId)
      if (done !== undefined && done.entry.origin.topic === c.origin.topic && done.entry.origin.partition === c.origin.partition && c.origin.offset <= done.entry.origin.offset) {
        // a retried batch: the last chunk finishes it again (index, notification), the others were appended
        return c.origin.offset === done.entry.origin.offset ? { type: 'finished', ...done } : { type: 'duplicate' }
      }
      const indexed = (await indexedOrigins(db, [c.snapshotId])).get(c.snapshotId)
      if (indexed !== undefined && indexed.topic === c.origin.topic && indexed.partition === c.origin.partition && c.origin.offset <= indexed.offset) {
        return { type: 'duplicate' } // read again behind another snapshot's hold: it is stored
      }
      if (c.seq !== 0) {
        const why = this.#failed.get(c.snapshotId)
        return {
          type: 'rejected',
          failed: null,
          error: chunkError(why !== undefined
            ? `chunk ${c.seq} of snapshot ${c.snapshotId}, which failed earlier (${why})`
            : `chunk ${c.seq} of snapshot ${c.snapshotId} without its earlier chunks (it started before the stored offset, or failed)`)
        }
      }
      try {
        s = await this.#start(c, pk)
      } catch (err) {
        return this.#failure(null, c, err)
      }
    }
    if (c.seq < s.expected) return { type: 'duplicate' }
    if (c.lastSeq !== null && c.lastSeq < c.seq) return this.#failure(s, c, chunkError(`chunk ${c.seq} of snapshot ${s.id} says the last seq is ${c.lastSeq}`))
    if (c.seq > s.expected || (s.lastSeq !== null && c.seq > s.lastSeq)) {
      return this.#failure(s, c, chunkError(`snapshot ${s.id}: chunk ${c.seq} arrived when ${s.expected} was expected${s.lastSeq !== null ? ` (last ${s.lastSeq})` : ''}`))
    }
    try {
      if (c.encoding === 'base64') await s.writer.writeBase64(c.data)
      else await s.writer.write(c.data)
      s.expected++
      s.lastOffset = c.origin.offset
      if (c.lastSeq !== null) s.lastSeq = c.lastSeq
      if (c.counts !== null) s.counts = c.counts
      if (!c.last) return { type: 'appended' }
      const { etag, sha256 } = await s.writer.finish()
      const first = s.first
      const entry: IndexEntry = {
        snapshotId: s.id,
        key: s.key,
        kind: 'chunked',
        createdAt: first.createdAt,
        createdBy: first.createdBy,
        triggerEvent: first.triggerEvent,
        version: first.event.version,
        counts: s.counts ?? {},
        checksum: `sha256:${sha256}`,
        size: s.writer.bytes,
        etag: etag ?? null,
        covers: null,
        asOf: null,
        origin: { topic: c.origin.topic, partition: c.origin.partition, offset: c.origin.offset }
      }
      this.#open.delete(s.id)
      this.#indexing.set(s.id, { partKey: s.partKey, firstOffset: s.firstOffset })
      const done: Finished = { entry, at: new Date().toISOString(), uploadId: s.writer.uploadId as string, cause: first.event }
      this.#finished.set(s.id, done)
      return { type: 'finished', ...done }
    } catch (err) {
      return this.#failure(s, c, err)
    }
  }

  /** Revoked partitions: their open uploads are dropped and aborted; their holds stay until reassigned. */
  async revoked (tps: readonly TopicPartition[]): Promise<void> {
    const keys = new Set(tps.map((t) => tpKey(t.topic, t.partition)))
    for (const [id, s] of this.#indexing) {
      if (!keys.has(s.partKey)) continue
      const held = this.#revokedHolds.get(s.partKey)
      if (held === undefined || s.firstOffset < held) this.#revokedHolds.set(s.partKey, s.firstOffset)
      this.#indexing.delete(id)
    }
    const dropped: OpenSnapshot[] = []
    for (const s of this.#open.values()) {
      if (!keys.has(s.partKey)) continue
      const held = this.#revokedHolds.get(s.partKey)
      if (held === undefined || s.firstOffset < held) this.#revokedHolds.set(s.partKey, s.firstOffset)
      dropped.push(s)
    }
    await Promise.all(dropped.map(async (s) => this.#discard(s)))
  }

  /** A revoked partition's stored offset must not pass this offset (a chunk dropped unhandled). */
  holdRevoked (tp: TopicPartition, offset: number): void {
    const pk = tpKey(tp.topic, tp.partition)
    const held = this.#revokedHolds.get(pk)
    if (held === undefined || offset < held) this.#revokedHolds.set(pk, offset)
  }

  /** Assigned partitions: whatever hold or upload this worker had for them is stale. */
  async assigned (tps: readonly TopicPartition[]): Promise<void> {
    for (const t of tps) this.#revokedHolds.delete(tpKey(t.topic, t.partition))
    await this.revoked(tps)
    for (const t of tps) this.#revokedHolds.delete(tpKey(t.topic, t.partition))
  }

  /** Aborts every open upload (shutdown: the chunks are read again from the held offset). */
  async close (): Promise<void> {
    this.#indexing.clear()
    await Promise.all([...this.#open.values()].map(async (s) => this.#discard(s)))
  }

  async #start (c: ChunkItem, pk: string): Promise<OpenSnapshot> {
    const o = this.#o
    const key = o.keyOf(c.snapshotId, 'chunked')
    const s: OpenSnapshot = {
      id: c.snapshotId,
      key,
      partKey: pk,
      firstOffset: c.origin.offset,
      lastOffset: c.origin.offset,
      expected: 0,
      lastSeq: null,
      first: c,
      counts: null,
      cancelled: false,
      lastChunkAt: Date.now(),
      busy: 0,
      writer: null as unknown as MultipartWriter
    }
    const retry: RetryPolicy = { ...o.retry, cancelled: () => s.cancelled }
    s.writer = new MultipartWriter({
      s3: o.s3,
      bucket: o.bucket,
      key,
      contentType: c.contentType,
      metadata: { 'sluice-snapshot-id': c.snapshotId, 'sluice-kind': 'chunked' },
      partBytes: o.partBytes,
      queueSize: o.queueSize,
      retry,
      pool: this.#parts
    })
    const origin = { topic: c.origin.topic, partition: c.origin.partition, offset: c.origin.offset }
    // an earlier attempt (a crash, another owner) may have left uploads of this key: gone first
    const aborted = await withS3Retry(`aborting earlier uploads of ${key}`, retry, async () => abortUploadsOf(o.s3, o.bucket, key))
    if (aborted > 0) o.logger.info({ snapshotId: c.snapshotId, key, aborted }, 'aborted an unfinished earlier upload of the snapshot')
    await this.#pg('recording a snapshot upload', async () => recordUpload(o.pool, { snapshotId: c.snapshotId, key, uploadId: '', origin }))
    const uploadId = await s.writer.create()
    await this.#pg('recording a snapshot upload', async () => recordUpload(o.pool, { snapshotId: c.snapshotId, key, uploadId, origin }))
    this.#open.set(s.id, s)
    o.logger.info({ snapshotId: s.id, key, uploadId, offset: c.origin.offset }, 'chunked snapshot started')
    return s
  }

  async #pg<T> (doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw classifyPgError(err, doing)
    }
  }

  /** A snapshot that cannot go on: aborted, forgotten, its chunk dead-lettered. */
  async #failure (s: OpenSnapshot | null, c: ChunkItem, err: unknown): Promise<ChunkOutcome> {
    if (err instanceof CancelledError || s?.cancelled === true) return { type: 'cancelled' }
    if (!(err instanceof SluiceError) || !err.poison) throw err
    const id = s?.id ?? c.snapshotId
    this.#failed.set(id, `${err.code}: ${err.message}`.slice(0, 300))
    this.#o.logger.error({ snapshotId: id, code: err.code, err: err.message, seq: c.seq }, 'chunked snapshot failed')
    if (s !== null) await this.#discard(s)
    return { type: 'rejected', error: err, failed: { snapshotId: id, key: s?.key ?? this.#o.keyOf(id, 'chunked'), cause: (s?.first ?? c).event } }
  }

  /** Drops an open snapshot: aborts its upload (a few quick attempts), forgets its row. */
  async #discard (s: OpenSnapshot): Promise<void> {
    s.cancelled = true
    this.#open.delete(s.id)
    const uploadId = s.writer.uploadId
    try {
      await s.writer.abort({ ...this.#o.retry, maxAttempts: Math.min(3, this.#o.retry.maxAttempts), cancelled: undefined })
      if (uploadId !== null) await forgetUpload(this.#o.pool, s.id, uploadId)
    } catch (err) {
      // the row stays: the next owner of the partition (or a restart) aborts the key's uploads
      this.#o.logger.warn({ snapshotId: s.id, key: s.key, err }, 'could not abort a snapshot upload now; it will be aborted on recovery')
    }
  }
}

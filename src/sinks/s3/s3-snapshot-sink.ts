import { PutObjectCommand } from '@aws-sdk/client-s3'
import type { S3Client } from '@aws-sdk/client-s3'
import type { PoolClient } from 'pg'
import type { S3Config } from '../../config/config.ts'
import { SluiceError, errorMessage } from '../../errors.ts'
import { ensureTopics } from '../../kafka/admin.ts'
import type { TopicPartition } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { Sink, SinkBuffer, SinkRuntime, SinkWriteResult } from '../sink.ts'
import { ChunkAssembler } from './chunk-assembler.ts'
import type { ChunkOutcome } from './chunk-assembler.ts'
import { ChunkQueues } from './chunk-queue.ts'
import { measureDocument } from './inline-document.ts'
import { storedInlineEvent, uploadInline } from './inline-upload.ts'
import { abortUploadsOf, classifyS3Error, createS3Client, withS3Retry } from './s3-ops.ts'
import type { RetryPolicy } from './s3-ops.ts'
import { failedEvent, uploadedEvent } from './snapshot-events.ts'
import type { Cause } from './snapshot-events.ts'
import { IndexDocumentWriter } from './index-document.ts'
import { forgetUpload, forgetUploads, upsertIndex } from './snapshot-index.ts'
import { abortAbandoned, sweepOrphans } from './upload-recovery.ts'
import type { SnapshotKind } from './snapshot-index.ts'
import { SnapshotBuffer } from './snapshot-buffer.ts'
import type { ChunkItem, InlineItem, SnapshotItem, TriggerItem } from './snapshot-items.ts'
import { dumpWithRetry } from './state-dump.ts'
import { StateDumps, newestOf } from './state-dumps.ts'
import { dumpEntry, unansweredTriggers } from './trigger-answers.ts'
import { preparedOf, record } from './s3-sink-state.ts'
import type { Buffer_, Open, Prepared } from './s3-sink-state.ts'

export interface S3SnapshotSinkOptions {
  name?: string
  s3: S3Config
  /** SNAPSHOT_UPLOADED / SNAPSHOT_FAILED go there (created at start-up if missing) */
  topic: string
  retry: { baseMs: number, maxMs: number }
  /** where every snapshot event is also recorded, slimmed (the same sink as the regular route) */
  eventLog: Sink<EntityEvent>
  /**
   * false (SLUICE_PROJECTION=off): triggers are stored and answered with SNAPSHOT_FAILED, never
   * dumped: nothing keeps entity_state current, so a dump would claim offsets its state lacks
   */
  stateDumps?: boolean
}

/**
 * The S3 snapshot sink (the `snapshot` route of entity-events): SNAPSHOT_CREATED carrying
 * its snapshot -> snapshots/<id>.json (lib-storage Upload, sha256 in x-amz-meta-sha256);
 * SNAPSHOT_CHUNK -> one multipart upload per snapshot (ChunkAssembler, offset hold);
 * SNAPSHOT_TRIGGERED -> a consistent gzip'd NDJSON dump of entity_state,
 * snapshots/<id>.jsonl.gz. Each finished upload gets its snapshots row in the batch's
 * transaction (so the row and the stored offset commit together, after the object is
 * complete), SNAPSHOT_UPLOADED (or SNAPSHOT_FAILED) is produced to the snapshots topic before
 * that transaction opens (so before the commit: at least once, deterministic event ids), the
 * events' log rows go with the event log's own write of the batch (handOff), and
 * metadata/snapshot_index.json is rewritten after the commit (index-document.ts). S3 failures are retried
 * (SLUICE_S3_MAX_ATTEMPTS per request) while the partition waits; then the snapshot is given
 * up: upload aborted, event dead-lettered.
 */
export class S3SnapshotSink implements Sink<EntityEvent> {
  readonly name: string
  readonly #o: S3SnapshotSinkOptions
  #open: Open | null = null

  constructor (opts: S3SnapshotSinkOptions) {
    this.name = opts.name ?? 's3-snapshots'
    this.#o = opts
  }

  keyOf (snapshotId: string, kind: SnapshotKind): string {
    return `${this.#o.s3.prefix}snapshots/${snapshotId}${kind === 'state' ? '.jsonl.gz' : '.json'}`
  }

  get indexKey (): string { return `${this.#o.s3.prefix}metadata/snapshot_index.json` }

  async open (rt: SinkRuntime): Promise<void> {
    const c = this.#o.s3
    await ensureTopics(rt.brokers, [{ name: this.#o.topic, partitions: 1 }], { known: rt.producer })
    const s3 = createS3Client(c)
    const pool = rt.pool
    const retry: RetryPolicy = {
      maxAttempts: c.maxAttempts,
      ...this.#o.retry,
      onRetry: (doing, err, attempt, delayMs) => {
        rt.metrics.retries.inc({ operation: 's3', code: err.code })
        rt.logger.warn({ code: err.code, attempt, delayMs: Math.round(delayMs), reason: err.message }, `S3: ${doing} failed, retrying`)
      }
    }
    const assembler = new ChunkAssembler({ s3, bucket: c.bucket, keyOf: (id) => this.keyOf(id, 'chunked'), pool, partBytes: c.partBytes, queueSize: c.queueSize, retry, logger: rt.logger, chunkTimeoutMs: c.chunkTimeoutMs })
    const expiry = setInterval(() => {
      this.#expire().catch((err) => rt.logger.warn({ err: errorMessage(err) }, 'snapshot sink: giving up stalled chunked snapshots failed (tried again)'))
      this.#forgetPending().catch((err) => rt.logger.warn({ err: errorMessage(err) }, 'snapshot sink: removing upload rows of failed snapshots failed (tried again)'))
    }, Math.min(60_000, Math.max(250, Math.floor(c.chunkTimeoutMs / 4))))
    expiry.unref()
    const indexDocument = new IndexDocumentWriter({ pool, put: async (doc) => this.#putIndexDocument(s3, retry, doc), entries: c.indexEntries, logger: rt.logger })
    const dumps = new StateDumps({
      shareMs: c.dumpShareMs,
      keyOf: (id) => this.keyOf(id, 'state'),
      unanswered: async (items) => (await unansweredTriggers(pool, items)).todo,
      dump: async (first, key) => await this.#dump(open, first, key),
      cleanUp: async (id, key) => { await this.#cleanUp(open, id, key) }
    })
    const open: Open = { rt, s3, pool, assembler, queues: new ChunkQueues(async (c) => assembler.handle(c, pool)), retry, lastSweep: 0, expiry, unforgotten: new Set(), dumps, indexDocument }
    this.#open = open
    // a worker stopped between a commit and its rewrite left the document behind the table
    const indexed = await pool.query('SELECT EXISTS (SELECT 1 FROM snapshots) AS any').then((r) => r.rows[0].any === true, () => false)
    if (indexed) indexDocument.request()
    await this.#sweep().catch((err) => rt.logger.warn({ err: errorMessage(err) }, 'snapshot sink: sweeping orphan multipart uploads failed'))
    rt.logger.info({ bucket: c.bucket, endpoint: c.endpoint, prefix: c.prefix, partBytes: c.partBytes, queueSize: c.queueSize, topic: this.#o.topic, stateDumps: this.#o.stateDumps !== false }, 'S3 snapshot sink ready')
    if (this.#o.stateDumps === false) rt.logger.warn('SLUICE_PROJECTION=off: SNAPSHOT_TRIGGERED events are stored and answered with SNAPSHOT_FAILED (SLUICE_ERR_SNAPSHOT_NO_STATE), not dumped')
  }

  async close (): Promise<void> {
    const o = this.#open
    if (o === null) return
    this.#open = null
    clearInterval(o.expiry)
    await o.queues.stop()
    await o.dumps.settled()
    await o.assembler.close()
    await o.indexDocument.settled()
    o.s3.destroy()
  }

  createBuffer (): Buffer_ {
    const o = this.#open
    if (o === null) return new SnapshotBuffer<Prepared>(null)
    const chunk = (c: ChunkItem): void => { o.queues.of(c.origin).push(c) }
    return new SnapshotBuffer<Prepared>(this.#o.stateDumps === false ? { chunk } : { chunk, trigger: (t) => o.dumps.early(t) })
  }

  heldOffset (topic: string, partition: number): number | undefined {
    return this.#open?.assembler.heldOffset(topic, partition)
  }

  async revoked (tps: TopicPartition[]): Promise<void> {
    const o = this.#open
    if (o === null) return
    const unhandled = await o.queues.stop(tps)
    // a dump started for a trigger of these partitions ends here, not under the next owner's dump of its key
    await o.dumps.settled()
    await o.assembler.revoked(tps)
    for (const [tp, offset] of unhandled) o.assembler.holdRevoked(tp, offset)
  }

  /** The previous owner's unfinished uploads of these partitions are aborted: their chunks come again. */
  async assigned (tps: TopicPartition[]): Promise<void> {
    const o = this.#open
    if (o === null) return
    await o.queues.stop(tps)
    await o.assembler.assigned(tps)
    await abortAbandoned(this.#recovery(o), tps)
    if (Date.now() - o.lastSweep > 5 * 60_000) {
      await this.#sweep().catch((err) => o.rt.logger.warn({ err: errorMessage(err) }, 'snapshot sink: sweeping orphan multipart uploads failed (tried again later)'))
    }
  }

  /** The batch's S3 work, before its transaction opens: uploads, chunks (handled ahead), state dumps. */
  async prepare (buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): Promise<void> {
    const p = await this.#prepare(this.#need(), buffers)
    for (const b of buffers as readonly Buffer_[]) b.prepared = p
  }

  async write (client: PoolClient, buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): Promise<SinkWriteResult> {
    const o = this.#need()
    const bs = buffers as readonly Buffer_[]
    let p = preparedOf(bs)
    // unprepared (a caller without the hook): the S3 work happens here, inside the transaction
    if (p === null) p = await this.#prepare(o, buffers)
    for (const b of bs) {
      b.prepared = null
      b.indexes = p.indexed.length > 0
    }
    if (p.indexed.length > 0) {
      await upsertIndex(client, p.indexed.map((i) => i.entry))
      await forgetUploads(client, p.forget)
      // the index row commits with this batch's offsets: the finished snapshot's hold can go
      for (const i of p.indexed) if (i.entry.kind === 'chunked') o.assembler.indexed(i.entry.snapshotId)
    }
    for (const i of p.indexed) {
      o.rt.metrics.snapshots.inc({ kind: i.entry.kind, outcome: 'uploaded' })
      o.rt.metrics.snapshotBytes.inc({ kind: i.entry.kind }, i.entry.size)
    }
    if (p.handedOff) return { stored: 0, duplicates: 0, rejected: p.rejected }
    const log = this.#logBuffer(p)
    const r = log.count > 0 ? await this.#o.eventLog.write(client, [log]) : { stored: 0, duplicates: 0, rejected: [] }
    return { ...r, rejected: [...p.rejected, ...r.rejected] }
  }

  handsOffTo (): Sink<unknown> {
    return this.#o.eventLog as Sink<unknown>
  }

  /**
   * The event-log rows of the prepared batch (the snapshot events, slimmed), for the event
   * log's own write of the batch rather than a second one (its COPYs, its projection): at
   * 11,000 events/s, p99 produce->durable 138-149 ms with two writes, 107-113 with one.
   */
  handOff (buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): SinkBuffer<unknown> | null {
    const bs = buffers as readonly Buffer_[]
    const p = preparedOf(bs)
    if (p === null || p.handedOff || p.logged.length === 0) return null
    p.handedOff = true
    return this.#logBuffer(p) as SinkBuffer<unknown>
  }

  #logBuffer (p: Prepared): SinkBuffer<EntityEvent> {
    const log = this.#o.eventLog.createBuffer()
    for (const l of p.logged) log.add(l.event, l.origin)
    return log
  }

  /** The batch committed: if it indexed a snapshot, the index document is rewritten (in the background). */
  committed (buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): void {
    const bs = buffers as readonly Buffer_[]
    if (!bs.some((b) => b.indexes)) return
    for (const b of bs) b.indexes = false
    this.#open?.indexDocument.request()
  }

  /** Resolves once the index document rewrites asked for so far are done. */
  async indexDocumentSettled (): Promise<void> {
    await this.#open?.indexDocument.settled()
  }

  #need (): Open {
    if (this.#open === null) throw new SluiceError('SLUICE_ERR_PIPELINE', `sink ${this.name} was not opened`)
    return this.#open
  }

  async #prepare (o: Open, buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): Promise<Prepared> {
    const p: Prepared = { buffers, indexed: [], forget: [], logged: [], handedOff: false, rejected: [], events: [] }
    const triggers: TriggerItem[] = []
    for (const b of buffers as readonly Buffer_[]) {
      for (const item of b.items) {
        if (item.kind === 'log') p.logged.push(item)
        else if (item.kind === 'inline') await this.#inline(o, item, p)
        else if (item.kind === 'trigger') triggers.push(item)
        else this.#chunk(o, item, await o.queues.of(item.origin).outcomeOf(item), p)
      }
    }
    // every trigger of the batch is answered by one dump, made after all of them were read
    if (triggers.length > 0 && this.#o.stateDumps === false) this.#refuse(o, triggers, p)
    else if (triggers.length > 0) await this.#triggers(o, triggers, p)
    // SNAPSHOT_UPLOADED / SNAPSHOT_FAILED: produced once the objects are complete, before the
    // batch's transaction opens (no connection idles in it waiting for Kafka) and so before its
    // offsets commit (at least once: a batch tried again produces them again, same eventIds)
    for (const i of p.indexed) p.events.push(uploadedEvent(this.#o.topic, this.#o.s3.bucket, i.entry, i.at, { event: i.cause }))
    if (p.events.length > 0) await o.rt.producer.produceBatch(p.events)
    return p
  }

  // ---- the three kinds of snapshot

  async #inline (o: Open, item: InlineItem, w: Prepared): Promise<void> {
    const s = item.snapshot
    const key = this.keyOf(s.snapshotId, 'inline')
    const c = this.#o.s3
    const stats = measureDocument(s) // first pass: hash and size, so the object's metadata can carry them
    const multipart = stats.size > c.partBytes
    try {
      if (multipart) await record(o, { snapshotId: s.snapshotId, key, uploadId: '', origin: item.origin })
      const entry = await uploadInline({ s3: o.s3, bucket: c.bucket, key, partBytes: c.partBytes, queueSize: c.queueSize, retry: o.retry }, item, stats)
      if (multipart) w.forget.push({ snapshotId: s.snapshotId, uploadId: '' })
      w.indexed.push({ entry, at: new Date().toISOString(), cause: item.event })
      w.logged.push({ event: storedInlineEvent(item.event, entry), origin: item.origin })
    } catch (err) {
      if (multipart) await this.#cleanUp(o, s.snapshotId, key)
      this.#fail(o, w, item, s.snapshotId, 'inline', key, err)
    }
  }

  #chunk (o: Open, item: ChunkItem, r: ChunkOutcome, w: Prepared): void {
    switch (r.type) {
      case 'cancelled': return // its partition was revoked: the new owner reads it again
      case 'rejected':
        w.rejected.push({ origin: item.origin, error: r.error })
        if (r.failed !== null) this.#answerFailed(o, w, r.failed.snapshotId, 'chunked', r.failed.key, r.error, r.failed.cause)
        return
      case 'finished':
        w.indexed.push({ entry: r.entry, at: r.at, cause: r.cause })
        w.forget.push({ snapshotId: r.entry.snapshotId, uploadId: r.uploadId })
        w.logged.push(item)
        return
      default:
        w.logged.push(item)
    }
  }

  async #triggers (o: Open, items: TriggerItem[], w: Prepared): Promise<void> {
    const { todo, done } = await unansweredTriggers(o.pool, items)
    for (const t of done) w.logged.push(t)
    if (todo.length === 0) return
    // a dump asked for after every one of these triggers was read, or at most dumpShareMs
    // before, answers them all: one started as they were read, or another lane's (running
    // or done), rather than dumping again (its covers and as_of say what it holds)
    const newest = newestOf(todo)
    const mine = o.dumps.shareable(newest.receivedAt) ?? o.dumps.start(newest)
    const key = mine.key
    try {
      const dump = await mine.result
      // also when shared: the batch that made the dump may have lost its transaction (its
      // retry shares the finished dump), and deleting the row twice is harmless
      w.forget.push({ snapshotId: mine.snapshotId, uploadId: '' })
      const at = new Date().toISOString()
      for (const t of todo) {
        w.indexed.push({ at, cause: t.event, entry: dumpEntry(t, key, dump) })
        w.logged.push(t)
      }
      o.rt.logger.info({ snapshotId: mine.snapshotId, key, triggers: todo.length, rows: dump.rows, bytes: dump.size }, 'state snapshot dumped')
    } catch (err) {
      // the dump cleaned up after itself (state-dumps.ts)
      for (const t of todo) this.#fail(o, w, t, t.snapshotId, 'state', key, err)
    }
  }

  /** Triggers while entity_state is not maintained: stored in the log, answered with SNAPSHOT_FAILED, nothing dumped. */
  #refuse (o: Open, items: TriggerItem[], w: Prepared): void {
    const err = new SluiceError('SLUICE_ERR_SNAPSHOT_NO_STATE', 'no state snapshot: SLUICE_PROJECTION=off, entity_state is not maintained by this worker')
    for (const t of items) {
      this.#answerFailed(o, w, t.snapshotId, 'state', this.keyOf(t.snapshotId, 'state'), err, t.event)
      w.logged.push(t)
    }
  }

  /** One state dump to snapshots/<trigger's id>.jsonl.gz, recorded in snapshot_uploads while it runs. */
  async #dump (o: Open, first: TriggerItem, key: string): ReturnType<typeof dumpWithRetry> {
    const c = this.#o.s3
    await record(o, { snapshotId: first.snapshotId, key, uploadId: '', origin: first.origin })
    return dumpWithRetry({ pool: o.pool, s3: o.s3, bucket: c.bucket, key, group: o.rt.group, partBytes: c.partBytes, queueSize: c.queueSize, metadata: { 'sluice-snapshot-id': first.snapshotId, 'sluice-kind': 'state' } }, o.retry)
  }

  /** A snapshot given up: its event dead-lettered, SNAPSHOT_FAILED produced. Fatal and non-S3 errors go up. */
  #fail (o: Open, w: Prepared, item: SnapshotItem, snapshotId: string, kind: SnapshotKind, key: string, raw: unknown): void {
    const err = raw instanceof SluiceError ? raw : classifyS3Error(raw, `snapshot ${snapshotId}`)
    if (!err.poison) throw err
    o.rt.logger.error({ snapshotId, kind, key, code: err.code, err: err.message }, 'snapshot failed')
    w.rejected.push({ origin: item.origin, error: err })
    this.#answerFailed(o, w, snapshotId, kind, key, err, item.event)
  }

  /** A snapshot not made: counted, and its SNAPSHOT_FAILED produced with the batch's events. */
  #answerFailed (o: Open, w: Prepared, snapshotId: string, kind: SnapshotKind, key: string, err: SluiceError, cause: Cause['event']): void {
    o.rt.metrics.snapshots.inc({ kind, outcome: 'failed' })
    w.events.push(failedEvent(this.#o.topic, snapshotId, kind, key, err, new Date().toISOString(), { event: cause }))
  }

  /** After a failed lib-storage upload: its multipart uploads aborted (a few attempts), its row gone. */
  async #cleanUp (o: Open, snapshotId: string, key: string): Promise<void> {
    try {
      await withS3Retry(`aborting uploads of ${key}`, { ...o.retry, maxAttempts: Math.min(3, o.retry.maxAttempts) }, async () => abortUploadsOf(o.s3, this.#o.s3.bucket, key))
    } catch (err) {
      o.rt.logger.warn({ key, err: errorMessage(err) }, 'could not abort the uploads of a failed snapshot now (swept later)')
    }
    await forgetUpload(o.pool, snapshotId).catch((err) => {
      o.unforgotten.add(snapshotId)
      o.rt.logger.warn({ snapshotId, err: errorMessage(err) }, 'could not forget a failed snapshot\'s upload row now (tried again)')
    })
  }

  /** The upload rows #cleanUp could not delete (the database was down), deleted by this worker, not left to the partition's next owner. */
  async #forgetPending (): Promise<void> {
    const o = this.#open
    if (o === null) return
    for (const snapshotId of [...o.unforgotten]) {
      await forgetUpload(o.pool, snapshotId)
      o.unforgotten.delete(snapshotId)
    }
  }

  /** metadata/snapshot_index.json (IndexDocumentWriter: best effort, the snapshots table is the index of record). */
  async #putIndexDocument (s3: S3Client, retry: RetryPolicy, doc: Buffer): Promise<void> {
    await withS3Retry(`writing ${this.indexKey}`, retry, async () =>
      s3.send(new PutObjectCommand({ Bucket: this.#o.s3.bucket, Key: this.indexKey, Body: doc, ContentType: 'application/json' })))
  }

  /** Chunked snapshots given up for want of chunks: SNAPSHOT_FAILED for each (at least once). */
  async #expire (): Promise<void> {
    const o = this.#open
    if (o === null) return
    const gone = await o.assembler.expire()
    if (gone.length === 0) return
    const at = new Date().toISOString()
    o.rt.metrics.snapshots.inc({ kind: 'chunked', outcome: 'failed' }, gone.length)
    try {
      await o.rt.producer.produceBatch(gone.map((g) => failedEvent(this.#o.topic, g.snapshotId, 'chunked', g.key, g.error, at, { event: g.cause })))
    } catch (err) {
      o.rt.logger.warn({ snapshots: gone.map((g) => g.snapshotId), err: errorMessage(err) }, 'could not produce SNAPSHOT_FAILED for snapshots given up')
    }
  }

  /** Aborts multipart uploads under snapshots/ that no snapshot_uploads row names (orphans). */
  async #sweep (): Promise<void> {
    const o = this.#open
    if (o === null) return
    o.lastSweep = Date.now()
    await sweepOrphans(this.#recovery(o), `${this.#o.s3.prefix}snapshots/`)
  }

  #recovery (o: Open): Parameters<typeof sweepOrphans>[0] {
    return { s3: o.s3, pool: o.pool, bucket: this.#o.s3.bucket, logger: o.rt.logger }
  }
}

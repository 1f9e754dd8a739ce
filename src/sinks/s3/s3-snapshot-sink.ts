import { Readable } from 'node:stream'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import type { S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import pg from 'pg'
import type { PoolClient } from 'pg'
import { Counter } from 'prom-client'
import type { S3Config } from '../../config/config.ts'
import { SluiceError, errorMessage } from '../../errors.ts'
import { ensureTopics } from '../../kafka/admin.ts'
import type { ProduceRecord } from '../../kafka/producer.ts'
import type { TopicPartition } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { Rejected, Sink, SinkBuffer, SinkRuntime, SinkWriteResult } from '../sink.ts'
import { quoteIdent } from '../../db/quote-ident.ts'
import { classifyPgError } from '../../db/pg-errors.ts'
import { ChunkAssembler } from './chunk-assembler.ts'
import { documentPieces, measureDocument } from './inline-document.ts'
import type { DocumentStats } from './inline-document.ts'
import { abortUpload, abortUploadsOf, classifyS3Error, createS3Client, listUploads, withS3Retry } from './s3-ops.ts'
import type { RetryPolicy } from './s3-ops.ts'
import { failedEvent, uploadedEvent } from './snapshot-events.ts'
import { allUploads, forgetUpload, indexDocument, indexedOrigins, lockIndex, recordUpload, upsertIndex, uploadsOfPartitions } from './snapshot-index.ts'
import type { IndexEntry, SnapshotKind } from './snapshot-index.ts'
import { parseItem } from './snapshot-items.ts'
import type { InlineItem, SnapshotItem, TriggerItem } from './snapshot-items.ts'
import { dumpWithRetry } from './state-dump.ts'

export interface S3SnapshotSinkOptions {
  name?: string
  s3: S3Config
  /** SNAPSHOT_UPLOADED / SNAPSHOT_FAILED go there (created at start-up if missing) */
  topic: string
  retry: { baseMs: number, maxMs: number }
  /** where every snapshot event is also recorded, slimmed (the same sink as the regular route) */
  eventLog: Sink<EntityEvent>
}

/** recordUpload on the sink's pool, its failures classified as PostgreSQL's (the lane retries them). */
async function record (o: { pool: pg.Pool }, row: Parameters<typeof recordUpload>[1]): Promise<void> {
  try {
    await recordUpload(o.pool, row)
  } catch (err) {
    throw classifyPgError(err, 'recording a snapshot upload')
  }
}

/** Unswept multipart uploads without a snapshot_uploads row younger than this are left alone. */
const ORPHAN_AGE_MS = 60_000

class SnapshotBuffer implements SinkBuffer<EntityEvent> {
  readonly items: SnapshotItem[] = []
  bytes = 0
  get count (): number { return this.items.length }
  add (e: EntityEvent, origin: SnapshotItem['origin']): void {
    this.items.push(parseItem(e, origin)) // a bad snapshot event throws poison here: dead-lettered at once
    this.bytes += origin.size
  }
}

/** One write's results, gathered as its items are handled. */
interface WriteState {
  client: PoolClient
  indexed: Array<{ entry: IndexEntry, at: string, cause: EntityEvent }>
  /** snapshot_uploads rows to remove with the index rows */
  forget: Array<{ snapshotId: string, uploadId: string }>
  logged: Array<Pick<SnapshotItem, 'event' | 'origin'>>
  rejected: Rejected[]
  events: ProduceRecord[]
}

interface Open {
  rt: SinkRuntime
  s3: S3Client
  pool: pg.Pool
  assembler: ChunkAssembler
  retry: RetryPolicy
  snapshots: Counter<'kind' | 'outcome'>
  bytes: Counter<'kind'>
  lastSweep: number
  /** gives up chunked snapshots whose chunks stopped coming */
  expiry: NodeJS.Timeout
  /** the latest state dump (running or done), shared by triggers read before it started */
  lastDump: { startedAt: number, key: string, result: ReturnType<typeof dumpWithRetry> } | null
}

/**
 * The S3 snapshot sink (the `snapshot` route of entity-events): SNAPSHOT_CREATED carrying
 * its snapshot -> snapshots/<id>.json (lib-storage Upload, sha256 in x-amz-meta-sha256);
 * SNAPSHOT_CHUNK -> one multipart upload per snapshot (ChunkAssembler, offset hold);
 * SNAPSHOT_TRIGGERED -> a consistent gzip'd NDJSON dump of entity_state,
 * snapshots/<id>.jsonl.gz. Each finished upload gets its snapshots row in the batch's
 * transaction (so the row and the stored offset commit together, after the object is
 * complete), metadata/snapshot_index.json is rewritten, and SNAPSHOT_UPLOADED (or
 * SNAPSHOT_FAILED) is produced to the snapshots topic before the commit (at least once,
 * deterministic event ids). S3 failures are retried (SLUICE_S3_MAX_ATTEMPTS per request)
 * while the partition waits; then the snapshot is given up: upload aborted, event
 * dead-lettered.
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
    await ensureTopics(rt.brokers, [{ name: this.#o.topic, partitions: 1 }])
    const s3 = createS3Client(c)
    const pool = new pg.Pool({ connectionString: rt.pg.url, max: 3, options: `-c search_path=${quoteIdent(rt.pg.schema)}`, application_name: 'sluice:s3-snapshots' })
    pool.on('error', () => {}) // idle connections: logged by their own listener below
    // a checked-out connection the server ends between two queries (a restart) emits 'error'
    // too: unheard, it would crash the worker; its next query fails (transient) instead
    pool.on('connect', (client) => { client.on('error', (err) => rt.logger.warn({ err }, 'snapshot sink: PostgreSQL connection failed')) })
    const registry = rt.metrics.registry
    const snapshots = (registry.getSingleMetric('sluice_snapshots_total') as Counter<'kind' | 'outcome'> | undefined) ??
      new Counter({ name: 'sluice_snapshots_total', help: 'Snapshots stored in S3 (outcome uploaded) or given up (failed)', labelNames: ['kind', 'outcome'], registers: [registry] })
    const bytes = (registry.getSingleMetric('sluice_snapshot_bytes_total') as Counter<'kind'> | undefined) ??
      new Counter({ name: 'sluice_snapshot_bytes_total', help: 'Bytes of snapshot objects stored in S3', labelNames: ['kind'], registers: [registry] })
    const retry: RetryPolicy = {
      maxAttempts: c.maxAttempts,
      ...this.#o.retry,
      onRetry: (doing, err, attempt, delayMs) => {
        rt.metrics.retries.inc({ operation: 's3', code: err.code })
        rt.logger.warn({ code: err.code, attempt, delayMs: Math.round(delayMs), reason: err.message }, `S3: ${doing} failed, retrying`)
      }
    }
    const assembler = new ChunkAssembler({ s3, bucket: c.bucket, keyOf: (id) => this.keyOf(id, 'chunked'), pool, partBytes: c.partBytes, queueSize: c.queueSize, retry, logger: rt.logger, chunkTimeoutMs: c.chunkTimeoutMs })
    const expiry = setInterval(() => { this.#expire().catch(() => {}) }, Math.min(60_000, Math.max(250, Math.floor(c.chunkTimeoutMs / 4))))
    expiry.unref()
    this.#open = { rt, s3, pool, assembler, retry, snapshots, bytes, lastSweep: 0, expiry, lastDump: null }
    await this.#sweep().catch((err) => rt.logger.warn({ err: errorMessage(err) }, 'snapshot sink: sweeping orphan multipart uploads failed'))
    rt.logger.info({ bucket: c.bucket, endpoint: c.endpoint, prefix: c.prefix, partBytes: c.partBytes, queueSize: c.queueSize, topic: this.#o.topic }, 'S3 snapshot sink ready')
  }

  async close (): Promise<void> {
    const o = this.#open
    if (o === null) return
    this.#open = null
    clearInterval(o.expiry)
    await o.assembler.close()
    await o.pool.end().catch(() => {})
    o.s3.destroy()
  }

  createBuffer (): SnapshotBuffer {
    return new SnapshotBuffer()
  }

  heldOffset (topic: string, partition: number): number | undefined {
    return this.#open?.assembler.heldOffset(topic, partition)
  }

  async revoked (tps: TopicPartition[]): Promise<void> {
    await this.#open?.assembler.revoked(tps)
  }

  /** The previous owner's unfinished uploads of these partitions are aborted: their chunks come again. */
  async assigned (tps: TopicPartition[]): Promise<void> {
    const o = this.#open
    if (o === null) return
    await o.assembler.assigned(tps)
    for (const row of await uploadsOfPartitions(o.pool, tps)) {
      try {
        const n = await abortUploadsOf(o.s3, this.#o.s3.bucket, row.key)
        await forgetUpload(o.pool, row.snapshotId, row.uploadId)
        o.rt.logger.info({ snapshotId: row.snapshotId, key: row.key, aborted: n }, 'aborted an abandoned snapshot upload')
      } catch (err) {
        o.rt.logger.warn({ snapshotId: row.snapshotId, key: row.key, err: errorMessage(err) }, 'could not abort an abandoned snapshot upload now (retried when its chunks come again)')
      }
    }
    if (Date.now() - o.lastSweep > 5 * 60_000) await this.#sweep().catch(() => {})
  }

  async write (client: PoolClient, buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): Promise<SinkWriteResult> {
    const o = this.#open
    if (o === null) throw new SluiceError('SLUICE_ERR_PIPELINE', `sink ${this.name} was not opened`)
    const w: WriteState = { client, indexed: [], forget: [], logged: [], rejected: [], events: [] }
    const triggers: TriggerItem[] = []
    for (const b of buffers as ReadonlyArray<SnapshotBuffer>) {
      for (const item of b.items) {
        if (item.kind === 'log') w.logged.push(item)
        else if (item.kind === 'inline') await this.#inline(o, item, w)
        else if (item.kind === 'trigger') triggers.push(item)
        else await this.#chunk(o, item, w)
      }
    }
    // every trigger of the batch is answered by one dump, made after all of them were read
    if (triggers.length > 0) await this.#triggers(o, triggers, w)
    if (w.indexed.length > 0) {
      await lockIndex(client)
      await upsertIndex(client, w.indexed.map((i) => i.entry))
      for (const f of w.forget) await forgetUpload(client, f.snapshotId, f.uploadId)
      await this.#putIndexDocument(o, await indexDocument(client))
      for (const i of w.indexed) w.events.push(uploadedEvent(this.#o.topic, this.#o.s3.bucket, i.entry, i.at, { event: i.cause }))
    }
    if (w.events.length > 0) await o.rt.producer.produceBatch(w.events)
    for (const i of w.indexed) {
      o.snapshots.inc({ kind: i.entry.kind, outcome: 'uploaded' })
      o.bytes.inc({ kind: i.entry.kind }, i.entry.size)
    }
    const log = this.#o.eventLog.createBuffer()
    for (const l of w.logged) log.add(l.event, l.origin)
    const r = log.count > 0 ? await this.#o.eventLog.write(client, [log]) : { stored: 0, duplicates: 0, rejected: [] }
    return { stored: r.stored, duplicates: r.duplicates, rejected: [...w.rejected, ...r.rejected] }
  }

  // ---- the three kinds of snapshot

  async #inline (o: Open, item: InlineItem, w: WriteState): Promise<void> {
    const s = item.snapshot
    const key = this.keyOf(s.snapshotId, 'inline')
    const c = this.#o.s3
    const stats = measureDocument(s) // first pass: hash and size, so the object's metadata can carry them
    const metadata = {
      sha256: stats.sha256,
      size: String(stats.size),
      'data-sha256': stats.dataSha256,
      counts: encodeURIComponent(JSON.stringify(stats.counts)).slice(0, 1024),
      'sluice-snapshot-id': s.snapshotId,
      'sluice-kind': 'inline'
    }
    const multipart = stats.size > c.partBytes
    try {
      if (multipart) await record(o, { snapshotId: s.snapshotId, key, uploadId: '', origin: item.origin })
      const etag = await withS3Retry(`uploading ${key}`, o.retry, async () => {
        const again: Partial<DocumentStats> = {}
        const upload = new Upload({
          client: o.s3,
          params: { Bucket: c.bucket, Key: key, Body: Readable.from(documentPieces(s, again)), ContentType: 'application/json', Metadata: metadata },
          partSize: c.partBytes,
          queueSize: c.queueSize,
          leavePartsOnError: false
        })
        const res = await upload.done()
        if (again.sha256 !== stats.sha256) throw new SluiceError('SLUICE_ERR_PIPELINE', `snapshot ${s.snapshotId} serialised to different bytes twice`)
        return res.ETag
      })
      if (multipart) w.forget.push({ snapshotId: s.snapshotId, uploadId: '' })
      const entry: IndexEntry = {
        snapshotId: s.snapshotId,
        key,
        kind: 'inline',
        createdAt: s.createdAt,
        createdBy: s.createdBy,
        triggerEvent: s.triggerEvent,
        version: item.event.version,
        counts: stats.counts,
        checksum: `sha256:${stats.sha256}`,
        size: stats.size,
        etag: etag ?? null,
        covers: null,
        asOf: null,
        origin: item.origin
      }
      w.indexed.push({ entry, at: new Date().toISOString(), cause: item.event })
      const { data: _data, ...payload } = item.event.payload
      w.logged.push({ event: { ...item.event, payload: { ...payload, stored: { key, checksum: entry.checksum, size: entry.size, counts: entry.counts } } }, origin: item.origin })
    } catch (err) {
      if (multipart) await this.#cleanUp(o, s.snapshotId, key)
      this.#fail(o, w, item, s.snapshotId, 'inline', key, err)
    }
  }

  async #chunk (o: Open, item: Extract<SnapshotItem, { kind: 'chunk' }>, w: WriteState): Promise<void> {
    const r = await o.assembler.handle(item, w.client)
    switch (r.type) {
      case 'cancelled': return // its partition was revoked: the new owner reads it again
      case 'rejected':
        w.rejected.push({ origin: item.origin, error: r.error })
        if (r.failed !== null) {
          o.snapshots.inc({ kind: 'chunked', outcome: 'failed' })
          w.events.push(failedEvent(this.#o.topic, r.failed.snapshotId, 'chunked', r.failed.key, r.error, new Date().toISOString(), { event: r.failed.cause }))
        }
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

  async #triggers (o: Open, items: TriggerItem[], w: WriteState): Promise<void> {
    const indexed = await indexedOrigins(w.client, items.map((t) => t.snapshotId))
    const todo: TriggerItem[] = []
    for (const t of items) {
      const done = indexed.get(t.snapshotId)
      // a redelivered trigger whose snapshot is stored: nothing to do (it is logged again, a duplicate)
      if (done !== undefined && done.topic === t.origin.topic && done.partition === t.origin.partition && done.offset === t.origin.offset) w.logged.push(t)
      else todo.push(t)
    }
    if (todo.length === 0) return
    const first = todo[0] as TriggerItem
    // a dump started after every one of these triggers was read answers them all: another
    // lane's (running or done) is shared rather than dumping again
    const newest = Math.max(...todo.map((t) => t.receivedAt))
    const last = o.lastDump
    const shared = last !== null && last.startedAt >= newest
    const mine = shared ? last : { startedAt: Date.now(), key: this.keyOf(first.snapshotId, 'state'), result: this.#dump(o, first) }
    if (!shared) o.lastDump = mine
    const key = mine.key
    try {
      const dump = await mine.result
      if (!shared) w.forget.push({ snapshotId: first.snapshotId, uploadId: '' })
      const at = new Date().toISOString()
      for (const t of todo) {
        const p = t.event.payload
        w.indexed.push({
          at,
          cause: t.event,
          entry: {
            snapshotId: t.snapshotId,
            key,
            kind: 'state',
            createdAt: dump.createdAt,
            createdBy: (typeof p.createdBy === 'string' ? p.createdBy : null) ?? t.event.userName ?? 'sluice',
            triggerEvent: typeof p.triggerEvent === 'string' ? p.triggerEvent : typeof p.triggerReason === 'string' ? p.triggerReason : t.event.eventType,
            version: t.event.version,
            counts: dump.counts,
            checksum: `sha256:${dump.sha256}`,
            size: dump.size,
            etag: dump.etag ?? null,
            covers: dump.covers,
            asOf: dump.asOf,
            origin: t.origin
          }
        })
        w.logged.push(t)
      }
      o.rt.logger.info({ snapshotId: first.snapshotId, key, triggers: todo.length, rows: dump.rows, bytes: dump.size, shared }, 'state snapshot dumped')
    } catch (err) {
      if (o.lastDump === mine) o.lastDump = null
      if (!shared) await this.#cleanUp(o, first.snapshotId, key)
      for (const t of todo) this.#fail(o, w, t, t.snapshotId, 'state', key, err)
    }
  }

  /** One state dump to snapshots/<first trigger's id>.jsonl.gz, recorded in snapshot_uploads while it runs. */
  async #dump (o: Open, first: TriggerItem): ReturnType<typeof dumpWithRetry> {
    const c = this.#o.s3
    const key = this.keyOf(first.snapshotId, 'state')
    await record(o, { snapshotId: first.snapshotId, key, uploadId: '', origin: first.origin })
    return dumpWithRetry({ pool: o.pool, s3: o.s3, bucket: c.bucket, key, group: o.rt.group, partBytes: c.partBytes, queueSize: c.queueSize, metadata: { 'sluice-snapshot-id': first.snapshotId, 'sluice-kind': 'state' } }, o.retry)
  }

  /** A snapshot given up: its event dead-lettered, SNAPSHOT_FAILED produced. Fatal and non-S3 errors go up. */
  #fail (o: Open, w: WriteState, item: SnapshotItem, snapshotId: string, kind: SnapshotKind, key: string, raw: unknown): void {
    const err = raw instanceof SluiceError ? raw : classifyS3Error(raw, `snapshot ${snapshotId}`)
    if (!err.poison) throw err
    o.rt.logger.error({ snapshotId, kind, key, code: err.code, err: err.message }, 'snapshot failed')
    o.snapshots.inc({ kind, outcome: 'failed' })
    w.rejected.push({ origin: item.origin, error: err })
    w.events.push(failedEvent(this.#o.topic, snapshotId, kind, key, err, new Date().toISOString(), { event: item.event }))
  }

  /** After a failed lib-storage upload: its multipart uploads aborted (a few attempts), its row gone. */
  async #cleanUp (o: Open, snapshotId: string, key: string): Promise<void> {
    try {
      await withS3Retry(`aborting uploads of ${key}`, { ...o.retry, maxAttempts: Math.min(3, o.retry.maxAttempts) }, async () => abortUploadsOf(o.s3, this.#o.s3.bucket, key))
    } catch (err) {
      o.rt.logger.warn({ key, err: errorMessage(err) }, 'could not abort the uploads of a failed snapshot now (swept later)')
    }
    await forgetUpload(o.pool, snapshotId).catch(() => {})
  }

  /** metadata/snapshot_index.json; best effort (the snapshots table is the index of record). */
  async #putIndexDocument (o: Open, doc: Buffer): Promise<void> {
    try {
      await withS3Retry(`writing ${this.indexKey}`, o.retry, async () =>
        o.s3.send(new PutObjectCommand({ Bucket: this.#o.s3.bucket, Key: this.indexKey, Body: doc, ContentType: 'application/json' })))
    } catch (err) {
      if (err instanceof SluiceError && err.fatal) throw err
      o.rt.logger.error({ key: this.indexKey, err: errorMessage(err) }, 'could not rewrite the snapshot index document (rewritten with the next snapshot)')
    }
  }

  /** Chunked snapshots given up for want of chunks: SNAPSHOT_FAILED for each (at least once). */
  async #expire (): Promise<void> {
    const o = this.#open
    if (o === null) return
    const gone = await o.assembler.expire()
    if (gone.length === 0) return
    const at = new Date().toISOString()
    o.snapshots.inc({ kind: 'chunked', outcome: 'failed' }, gone.length)
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
    const c = this.#o.s3
    const known = new Set((await allUploads(o.pool)).map((r) => r.key))
    for (const u of await listUploads(o.s3, c.bucket, `${c.prefix}snapshots/`)) {
      if (known.has(u.key) || (u.initiated !== undefined && Date.now() - u.initiated.getTime() < ORPHAN_AGE_MS)) continue
      await abortUpload(o.s3, c.bucket, u.key, u.uploadId)
      o.rt.logger.info({ key: u.key, uploadId: u.uploadId }, 'aborted an orphan multipart upload')
    }
  }
}

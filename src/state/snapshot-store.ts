import { createHash } from 'node:crypto'
import { Transform, Writable } from 'node:stream'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { Pool } from 'pg'
import type { S3Config } from '../config/config.ts'

/**
 * The snapshot index (the `snapshots` table) and its objects in S3, read with their
 * integrity checked: an object is hashed (sha256) as it streams, and one that does not match
 * the checksum and size it was indexed with is reported (TamperedError), never trusted.
 */
export interface SnapshotInfo {
  snapshotId: string
  objectKey: string
  kind: 'inline' | 'chunked' | 'state'
  createdAt: string
  createdBy: string | null
  triggerEvent: string | null
  version: number | null
  counts: Record<string, number>
  checksum: string
  sizeBytes: number
  etag: string | null
  covers: Array<{ topic: string, partition: number, offset: number }> | null
  asOf: string | null
  origin: { topic: string, partition: number, offset: number } | null
  indexedAt: string
}

export class TamperedError extends Error {
  readonly expected: { checksum: string, sizeBytes: number }
  readonly actual: { checksum: string, sizeBytes: number }
  constructor (s: SnapshotInfo, actual: { checksum: string, sizeBytes: number }) {
    super(`snapshot ${s.snapshotId}: the object ${s.objectKey} does not match its index (${s.checksum}, ${s.sizeBytes} bytes indexed; ${actual.checksum}, ${actual.sizeBytes} bytes stored): it was changed after it was written`)
    this.name = 'TamperedError'
    this.expected = { checksum: s.checksum, sizeBytes: s.sizeBytes }
    this.actual = actual
  }
}

export class MissingObjectError extends Error {
  constructor (s: SnapshotInfo) {
    super(`snapshot ${s.snapshotId}: the object ${s.objectKey} is missing from S3`)
    this.name = 'MissingObjectError'
  }
}

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

function toInfo (r: any): SnapshotInfo {
  return {
    snapshotId: r.snapshot_id,
    objectKey: r.object_key,
    kind: r.kind,
    createdAt: (r.created_at as Date).toISOString(),
    createdBy: r.created_by,
    triggerEvent: r.trigger_event,
    version: r.version === null ? null : Number(r.version),
    counts: r.counts,
    checksum: r.checksum,
    sizeBytes: Number(r.size_bytes),
    etag: r.etag,
    covers: r.covers,
    asOf: iso(r.as_of),
    origin: r.source_topic === null ? null : { topic: r.source_topic, partition: r.source_partition, offset: Number(r.source_offset) },
    indexedAt: (r.indexed_at as Date).toISOString()
  }
}

export async function listSnapshots (pool: Pool, q: { before?: string, kind?: string, limit: number }): Promise<SnapshotInfo[]> {
  const res = await pool.query(`SELECT * FROM snapshots
    WHERE ($1::timestamptz IS NULL OR created_at < $1::timestamptz) AND ($2::text IS NULL OR kind = $2)
    ORDER BY created_at DESC, snapshot_id DESC LIMIT $3`, [q.before ?? null, q.kind ?? null, q.limit])
  return res.rows.map(toInfo)
}

export async function getSnapshot (pool: Pool, id: string): Promise<SnapshotInfo | null> {
  const res = await pool.query('SELECT * FROM snapshots WHERE snapshot_id = $1', [id])
  return res.rows.length === 0 ? null : toInfo(res.rows[0])
}

/** The newest 'state' snapshot whose as_of is at or before `at`. */
export async function nearestStateSnapshot (pool: Pool, at: string): Promise<SnapshotInfo | null> {
  const res = await pool.query(`SELECT * FROM snapshots WHERE kind = 'state' AND as_of <= $1::timestamptz AND covers IS NOT NULL
    ORDER BY as_of DESC, created_at DESC LIMIT 1`, [at])
  return res.rows.length === 0 ? null : toInfo(res.rows[0])
}

/** An S3 client for reads (path-style when an endpoint is given, the SDK's own retries). */
export function createReadClient (c: S3Config): S3Client {
  return new S3Client({
    region: c.region,
    ...(c.endpoint !== null ? { endpoint: c.endpoint, forcePathStyle: true } : {}),
    ...(c.accessKeyId !== null && c.secretAccessKey !== null ? { credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey } } : {}),
    maxAttempts: 3
  })
}

/** A pass-through that hashes and counts; `result()` once it ended. */
export class HashTap extends Transform {
  readonly #hash = createHash('sha256')
  #size = 0
  #result: { checksum: string, sizeBytes: number } | null = null
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
    cb(null, chunk)
  }

  result (): { checksum: string, sizeBytes: number } {
    this.#result ??= { checksum: 'sha256:' + this.#hash.digest('hex'), sizeBytes: this.#size }
    return this.#result
  }
}

export class SnapshotObjects {
  readonly s3: S3Client
  readonly bucket: string

  constructor (s3: S3Client, bucket: string) {
    this.s3 = s3
    this.bucket = bucket
  }

  /** The object's body; `ifMatch`: only that exact version of the object (412 otherwise). */
  async open (s: SnapshotInfo, ifMatch?: string): Promise<{ body: Readable, etag: string | undefined }> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: s.objectKey, ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}) }))
      return { body: res.Body as Readable, etag: res.ETag }
    } catch (err) {
      const name = (err as { name?: string }).name
      if (name === 'NoSuchKey' || name === 'NotFound') throw new MissingObjectError(s)
      if (name === 'PreconditionFailed') throw new TamperedError(s, { checksum: 'changed while being read', sizeBytes: -1 })
      throw err
    }
  }

  /** Reads the whole object once, hashing it; throws TamperedError when it does not match. Returns its ETag. */
  async verify (s: SnapshotInfo): Promise<string | undefined> {
    const { body, etag } = await this.open(s)
    const tap = new HashTap()
    await pipeline(body, tap, new Writable({ write (_chunk, _enc, cb) { cb() } }))
    check(s, tap)
    return etag
  }
}

/** Throws TamperedError when what went through the tap is not the indexed object. */
export function check (s: SnapshotInfo, tap: HashTap): void {
  const got = tap.result()
  if (got.checksum !== s.checksum || got.sizeBytes !== s.sizeBytes) throw new TamperedError(s, got)
}

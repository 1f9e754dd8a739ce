import { createHash } from 'node:crypto'
import { PassThrough, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { Pool, PoolClient } from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import type { TopicPartitionOffset } from '../../kafka/types.ts'
import { classifyPgError } from '../../db/pg-errors.ts'
import { SluiceError } from '../../errors.ts'
import { retry } from '../../retry.ts'
import { abortUploadsOf, classifyS3Error, withS3Retry } from './s3-ops.ts'
import type { RetryPolicy } from './s3-ops.ts'

export interface StateDumpOptions {
  pool: Pool
  s3: S3Client
  bucket: string
  key: string
  /** the consumer group whose stored offsets the dump covers */
  group: string
  partBytes: number
  queueSize: number
  metadata: Record<string, string>
  stateTable?: string
  logTable?: string
}

export interface StateDump {
  sha256: string
  size: number
  rows: number
  /** rows per entity type */
  counts: Record<string, number>
  /** the stored next offsets read in the dump's snapshot: every event before them is in it */
  covers: TopicPartitionOffset[]
  /** max("timestamp") of the event log in the dump's snapshot */
  asOf: Date | null
  /** the dump transaction's start (PostgreSQL's now()) */
  createdAt: Date
  etag: string | undefined
}

/** Counts the lines of a stream without changing it. */
function lineCounter (count: { n: number }): Transform {
  return new Transform({
    transform (chunk: Buffer, _enc, cb) {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) count.n++
      cb(null, chunk)
    }
  })
}

/**
 * The dump's time and as_of (the log's newest event time): an index scan of the log's time
 * index (a hypertable's own; sql/012_time_index.postgres.sql on plain PostgreSQL).
 */
export function headSql (log: string): string {
  return `SELECT now() AS now, (SELECT max("timestamp") FROM ${log}) AS as_of`
}

/**
 * A consistent dump of entity_state: one REPEATABLE READ transaction reads sluice_offsets
 * (covers), max(timestamp) of the event log (as_of), the counts, and streams
 * `row_to_json(entity_state)` one row per line (NDJSON) through gzip and sha256 into a
 * multipart upload (lib-storage: memory bounded by partBytes x queueSize). The COPY uses CSV
 * with control characters as delimiter and quote: JSON never contains them raw, so every
 * line is row_to_json's text verbatim (COPY's text format would double the backslashes).
 * Throws S3 failures as classified SluiceErrors (SLUICE_ERR_S3_*), PostgreSQL ones as theirs.
 */
export async function dumpEntityState (o: StateDumpOptions): Promise<StateDump> {
  const state = o.stateTable ?? 'entity_state'
  const log = o.logTable ?? 'entity_event_logs'
  let client: PoolClient
  try {
    client = await o.pool.connect()
  } catch (err) {
    throw classifyPgError(err, 'connecting to PostgreSQL for a state dump')
  }
  let broken = false
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const offsets = await client.query('SELECT topic, partition, next_offset FROM sluice_offsets WHERE consumer_group = $1 ORDER BY topic, partition', [o.group])
    const covers = offsets.rows.map((r) => ({ topic: r.topic as string, partition: r.partition as number, offset: Number(r.next_offset) }))
    const head = await client.query(headSql(log))
    const byEntity = await client.query(`SELECT entity, count(*)::bigint AS n FROM ${state} GROUP BY entity ORDER BY entity`)
    const counts: Record<string, number> = {}
    for (const r of byEntity.rows) counts[r.entity as string] = Number(r.n)

    const hash = createHash('sha256')
    let size = 0
    const lines = { n: 0 }
    const body = new PassThrough()
    const upload = new Upload({
      client: o.s3,
      params: { Bucket: o.bucket, Key: o.key, Body: body, ContentType: 'application/gzip', Metadata: o.metadata },
      partSize: o.partBytes,
      queueSize: o.queueSize,
      leavePartsOnError: false
    })
    let s3Error: unknown = null
    const uploading = upload.done().catch((err: unknown) => {
      s3Error = err
      body.destroy(err as Error)
      throw err
    })
    // rows sorted before row_to_json (the outer ORDER BY is the subquery's own order: no second
    // sort); sorting the JSON lines instead spilled them to disk: 30,000 rows, 370-410 ms of
    // statement against 265-290 ms
    const sorted = `(SELECT * FROM ${state} ORDER BY entity, entity_id) s ORDER BY s.entity, s.entity_id`
    const copy = client.query(copyTo(`COPY (SELECT row_to_json(s) FROM ${sorted}) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`))
    const tap = new Transform({
      transform (chunk: Buffer, _enc, cb) {
        hash.update(chunk)
        size += chunk.length
        cb(null, chunk)
      }
    })
    const streaming = pipeline(copy, lineCounter(lines), createGzip({ level: 1 }), tap, body)
    const [streamed, uploaded] = await Promise.allSettled([streaming, uploading])
    if (s3Error !== null) {
      broken = streamed.status === 'rejected'
      throw classifyS3Error(s3Error, `uploading the state dump ${o.key}`)
    }
    if (streamed.status === 'rejected') {
      broken = true
      await upload.abort().catch(() => {})
      throw classifyPgError(streamed.reason, `dumping ${state}`)
    }
    if (uploaded.status === 'rejected') throw classifyS3Error(uploaded.reason, `uploading the state dump ${o.key}`)
    const rows = Object.values(counts).reduce((a, b) => a + b, 0)
    if (lines.n !== rows) throw new Error(`state dump ${o.key}: ${lines.n} lines streamed, ${rows} rows counted in the same snapshot`)
    await client.query('COMMIT')
    return {
      sha256: hash.digest('hex'),
      size,
      rows,
      counts,
      covers,
      asOf: head.rows[0].as_of ?? null,
      createdAt: head.rows[0].now,
      etag: uploaded.value.ETag
    }
  } catch (err) {
    if (!broken) await client.query('ROLLBACK').catch(() => { broken = true })
    if (err instanceof SluiceError) throw err
    throw classifyPgError(err, `dumping ${state}`)
  } finally {
    client.release(broken)
  }
}

/**
 * dumpEntityState, again from scratch (the key's earlier uploads aborted first) on a
 * transient S3 failure, up to retry.maxAttempts (the shared retry helper); then
 * SLUICE_ERR_S3_UPLOAD. PostgreSQL's failures go up at once (the lane retries the batch).
 */
export async function dumpWithRetry (o: StateDumpOptions, policy: RetryPolicy): Promise<StateDump> {
  const doing = `dumping state to ${o.key}`
  let attempts = 0
  try {
    return await retry(async (attempt) => {
      attempts = attempt
      await withS3Retry(`aborting earlier uploads of ${o.key}`, policy, async () => abortUploadsOf(o.s3, o.bucket, o.key))
      return await dumpEntityState(o)
    }, {
      baseMs: policy.baseMs,
      maxMs: policy.maxMs,
      maxAttempts: policy.maxAttempts,
      // only S3 being unavailable is retried here; anything else is the caller's to handle
      classify: (err) => {
        if (err instanceof SluiceError && err.code === 'SLUICE_ERR_S3_UNAVAILABLE') return err
        throw err
      },
      onRetry: (err, attempt, delayMs) => policy.onRetry?.(doing, err, attempt, delayMs)
    })
  } catch (err) {
    if (err instanceof SluiceError && err.code === 'SLUICE_ERR_S3_UNAVAILABLE') {
      throw new SluiceError('SLUICE_ERR_S3_UPLOAD', `${err.message}; gave up after ${attempts} attempts`, { cause: err })
    }
    throw err
  }
}

// 'state' snapshots made the way the contract of sql/005_snapshots.sql says (and as the S3
// sink's state dump does): in one REPEATABLE READ transaction, the stored offsets (covers),
// max("timestamp") of the events they cover (as_of), and entity_state as NDJSON of row_to_json,
// gzip'd, put to S3 and indexed with its sha256 and size.
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { Pool } from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import type { Test } from 'tap'
import type { S3Config } from '../../src/config/config.ts'
import { s3Config as stackS3Config } from './s3.ts'

/** The stack's S3 at the bucket's root, with 8 MiB parts and 3 attempts per request. */
export function s3Config (): S3Config {
  return stackS3Config('', { partBytes: 8 * 1024 * 1024, maxAttempts: 3 })
}

export function s3Client (c: S3Config = s3Config()): S3Client {
  return new S3Client({ endpoint: c.endpoint as string, region: c.region, forcePathStyle: true, credentials: { accessKeyId: c.accessKeyId as string, secretAccessKey: c.secretAccessKey as string } })
}

/** Deletes every object under `prefix`, a listing page (up to 1,000) at a time until none is left. */
export async function cleanPrefixNow (s3: S3Client, bucket: string, prefix: string): Promise<void> {
  for (;;) {
    const objects = (await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []
    if (objects.length === 0) return
    for (const o of objects) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }))
  }
}

/** Deletes every object under `prefix` when the test ends. */
export function cleanPrefix (t: Test, s3: S3Client, bucket: string, prefix: string): void {
  t.teardown(async () => { await cleanPrefixNow(s3, bucket, prefix) })
}

export interface MadeSnapshot {
  snapshotId: string
  objectKey: string
  covers: Array<{ topic: string, partition: number, offset: number }>
  asOf: Date | null
  rows: number
  sizeBytes: number
}

export async function makeStateSnapshot (pool: Pool, s3: S3Client, o: { bucket: string, prefix: string, id: string, group: string, createdAt?: Date }): Promise<MadeSnapshot> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const offs = await client.query('SELECT topic, partition, next_offset FROM sluice_offsets WHERE consumer_group = $1 ORDER BY 1, 2', [o.group])
    const covers = offs.rows.map((r) => ({ topic: r.topic as string, partition: r.partition as number, offset: Number(r.next_offset) }))
    const asOf = (await client.query(`SELECT max(l."timestamp") AS m FROM entity_event_logs l
      JOIN jsonb_to_recordset($1::jsonb) AS c(topic text, partition integer, "offset" bigint)
      ON c.topic = l.source_topic AND c.partition = l.source_partition AND l.source_offset < c."offset"`, [JSON.stringify(covers)])).rows[0].m as Date | null
    const chunks: Buffer[] = []
    const copy = client.query(copyTo("COPY (SELECT row_to_json(s) FROM entity_state s ORDER BY entity, entity_id) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"))
    for await (const c of copy) chunks.push(c as Buffer)
    await client.query('COMMIT')
    const raw = Buffer.concat(chunks)
    const rows = raw.toString('utf8').split('\n').filter((l) => l !== '').length
    const body = gzipSync(raw)
    const objectKey = `${o.prefix}${o.id}.ndjson.gz`
    const put = await s3.send(new PutObjectCommand({ Bucket: o.bucket, Key: objectKey, Body: body, ContentType: 'application/gzip' }))
    await pool.query(`INSERT INTO snapshots (snapshot_id, object_key, kind, created_at, created_by, counts, checksum, size_bytes, etag, covers, as_of)
      VALUES ($1, $2, 'state', $3, 'test', $4, $5, $6, $7, $8, $9)`,
    [o.id, objectKey, o.createdAt ?? new Date(), JSON.stringify({ rows }), 'sha256:' + createHash('sha256').update(body).digest('hex'), body.length, put.ETag ?? null, JSON.stringify(covers), asOf])
    return { snapshotId: o.id, objectKey, covers, asOf, rows, sizeBytes: body.length }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

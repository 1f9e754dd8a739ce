import type { PoolClient } from 'pg'
import type { TopicPartition, TopicPartitionOffset } from '../../kafka/types.ts'

export type SnapshotKind = 'inline' | 'chunked' | 'state'

/** One row of the snapshots index (sql/005_snapshots.sql). */
export interface IndexEntry {
  snapshotId: string
  key: string
  kind: SnapshotKind
  createdAt: string | Date
  createdBy: string | null
  triggerEvent: string | null
  /** bigint as an event carries it; number as read back */
  version: bigint | number | null
  counts: Record<string, number>
  /** 'sha256:<hex>' of the stored bytes */
  checksum: string
  size: number
  etag: string | null
  covers: TopicPartitionOffset[] | null
  asOf: string | Date | null
  /** the message that finished the snapshot (the last chunk, the SNAPSHOT_CREATED, the trigger) */
  origin: TopicPartitionOffset
}

type Db = Pick<PoolClient, 'query'>

/**
 * Upserts index rows inside the batch's transaction, in one statement (a round trip and a plan
 * per batch rather than per snapshot: 12 a 5,000-event batch of the seed mix): a redelivery
 * rewrites the same row. A snapshot id given twice keeps its last entry, as one upsert after
 * another would; rows go in snapshot-id order, the same lock order for every lane.
 */
export async function upsertIndex (client: Db, entries: readonly IndexEntry[]): Promise<void> {
  if (entries.length === 0) return
  const last = new Map<string, IndexEntry>()
  for (const e of entries) last.set(e.snapshotId, e)
  const rows = [...last.values()].sort((a, b) => (a.snapshotId < b.snapshotId ? -1 : a.snapshotId > b.snapshotId ? 1 : 0))
  await client.query(
    `INSERT INTO snapshots (snapshot_id, object_key, kind, created_at, created_by, trigger_event, version, counts,
       checksum, size_bytes, etag, covers, as_of, source_topic, source_partition, source_offset)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::bigint[],
       $8::jsonb[], $9::text[], $10::bigint[], $11::text[], $12::jsonb[], $13::timestamptz[], $14::text[], $15::int[], $16::bigint[])
     ON CONFLICT (snapshot_id) DO UPDATE SET object_key = EXCLUDED.object_key, kind = EXCLUDED.kind,
       created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by, trigger_event = EXCLUDED.trigger_event,
       version = EXCLUDED.version, counts = EXCLUDED.counts, checksum = EXCLUDED.checksum, size_bytes = EXCLUDED.size_bytes,
       etag = EXCLUDED.etag, covers = EXCLUDED.covers, as_of = EXCLUDED.as_of, source_topic = EXCLUDED.source_topic,
       source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset, indexed_at = now()`,
    [rows.map((e) => e.snapshotId), rows.map((e) => e.key), rows.map((e) => e.kind), rows.map((e) => timeText(e.createdAt)),
      rows.map((e) => e.createdBy), rows.map((e) => e.triggerEvent), rows.map((e) => (e.version === null ? null : String(e.version))),
      rows.map((e) => JSON.stringify(e.counts)), rows.map((e) => e.checksum), rows.map((e) => String(e.size)), rows.map((e) => e.etag),
      rows.map((e) => (e.covers === null ? null : JSON.stringify(e.covers))), rows.map((e) => (e.asOf === null ? null : timeText(e.asOf))),
      rows.map((e) => e.origin.topic), rows.map((e) => e.origin.partition), rows.map((e) => String(e.origin.offset))]
  )
}

/** A Date as an ISO instant (pg would send it in the process's time zone); a string as the event had it. */
function timeText (t: string | Date): string {
  return typeof t === 'string' ? t : t.toISOString()
}

/** The index rows of these snapshot ids (to recognise redelivered work), by id. */
export async function indexedOrigins (client: Db, ids: readonly string[]): Promise<Map<string, TopicPartitionOffset>> {
  const out = new Map<string, TopicPartitionOffset>()
  if (ids.length === 0) return out
  const res = await client.query('SELECT snapshot_id, source_topic, source_partition, source_offset FROM snapshots WHERE snapshot_id = ANY($1::text[])', [ids])
  for (const r of res.rows) out.set(r.snapshot_id, { topic: r.source_topic, partition: r.source_partition, offset: Number(r.source_offset) })
  return out
}

/**
 * metadata/snapshot_index.json: the newest `limit` indexed snapshots, newest first, so that a
 * rewrite costs the same after a million snapshots as after ten; `complete` is false when the
 * table holds older ones (GET /snapshots?before= pages through every one).
 */
export async function indexDocument (client: Db, limit: number): Promise<Buffer> {
  const res = await client.query(
    `SELECT snapshot_id, object_key, kind, created_at, created_by, trigger_event, version, counts, checksum,
       size_bytes, etag, covers, as_of, source_topic, source_partition, source_offset
     FROM snapshots ORDER BY created_at DESC, snapshot_id LIMIT $1`, [limit + 1])
  const complete = res.rows.length <= limit
  const snapshots = res.rows.slice(0, limit).map((r) => ({
    snapshotId: r.snapshot_id,
    key: r.object_key,
    kind: r.kind,
    createdAt: r.created_at,
    createdBy: r.created_by,
    triggerEvent: r.trigger_event,
    version: r.version === null ? null : Number(r.version),
    counts: r.counts,
    checksum: r.checksum,
    size: Number(r.size_bytes),
    etag: r.etag,
    covers: r.covers,
    asOf: r.as_of,
    origin: r.source_topic === null ? null : { topic: r.source_topic, partition: r.source_partition, offset: Number(r.source_offset) }
  }))
  return Buffer.from(JSON.stringify({ updatedAt: new Date().toISOString(), count: snapshots.length, complete, snapshots }, null, 1))
}

// ---- snapshot_uploads: multipart uploads started and not finished

export interface UploadRow {
  snapshotId: string
  key: string
  /** '' while the upload is being created (or for lib-storage uploads, whose id stays inside) */
  uploadId: string
  origin: TopicPartitionOffset | null
}

/**
 * Records an upload before (uploadId '') and after CreateMultipartUpload, autocommitted: a
 * crash at any point leaves a row naming the key, and whoever owns the partition next aborts
 * every upload of that key. An upload without a row is an orphan (swept by age).
 */
export async function recordUpload (db: Db, row: UploadRow): Promise<void> {
  await db.query(
    `INSERT INTO snapshot_uploads (snapshot_id, object_key, upload_id, source_topic, source_partition, source_offset)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (snapshot_id) DO UPDATE SET object_key = EXCLUDED.object_key, upload_id = EXCLUDED.upload_id,
       source_topic = EXCLUDED.source_topic, source_partition = EXCLUDED.source_partition,
       source_offset = EXCLUDED.source_offset, started_at = now()`,
    [row.snapshotId, row.key, row.uploadId, row.origin?.topic ?? null, row.origin?.partition ?? null, row.origin?.offset ?? null]
  )
}

/** forgetUpload of each (snapshot id, upload id) pair, in one statement. */
export async function forgetUploads (db: Db, rows: ReadonlyArray<{ snapshotId: string, uploadId: string }>): Promise<void> {
  if (rows.length === 0) return
  await db.query(
    `DELETE FROM snapshot_uploads u USING unnest($1::text[], $2::text[]) AS f(snapshot_id, upload_id)
     WHERE u.snapshot_id = f.snapshot_id AND u.upload_id = f.upload_id`,
    [rows.map((r) => r.snapshotId), rows.map((r) => r.uploadId)]
  )
}

/** Removes an upload's row (only that upload's when uploadId is given: a newer one stays). */
export async function forgetUpload (db: Db, snapshotId: string, uploadId?: string): Promise<void> {
  if (uploadId === undefined) await db.query('DELETE FROM snapshot_uploads WHERE snapshot_id = $1', [snapshotId])
  else await forgetUploads(db, [{ snapshotId, uploadId }])
}

function toRow (r: any): UploadRow {
  return {
    snapshotId: r.snapshot_id,
    key: r.object_key,
    uploadId: r.upload_id,
    origin: r.source_topic === null ? null : { topic: r.source_topic, partition: r.source_partition, offset: Number(r.source_offset) }
  }
}

/** Uploads recorded for these partitions (their previous owner's: abandoned by definition). */
export async function uploadsOfPartitions (db: Db, tps: readonly TopicPartition[]): Promise<UploadRow[]> {
  if (tps.length === 0) return []
  const res = await db.query(
    `SELECT * FROM snapshot_uploads
     WHERE (source_topic, source_partition) IN (SELECT * FROM unnest($1::text[], $2::int[]))`,
    [tps.map((t) => t.topic), tps.map((t) => t.partition)]
  )
  return res.rows.map(toRow)
}

/** Every recorded upload. */
export async function allUploads (db: Db): Promise<UploadRow[]> {
  return (await db.query('SELECT * FROM snapshot_uploads')).rows.map(toRow)
}

import type { S3Client } from '@aws-sdk/client-s3'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { errorMessage } from '../../errors.ts'
import type { TopicPartition } from '../../kafka/types.ts'
import { abortUpload, abortUploadsOf, listUploads } from './s3-ops.ts'
import { allUploads, forgetUpload, uploadsOfPartitions } from './snapshot-index.ts'

/** Unswept multipart uploads without a snapshot_uploads row younger than this are left alone. */
const ORPHAN_AGE_MS = 60_000

interface Recovery { s3: S3Client, pool: Pool, bucket: string, logger: Logger }

/**
 * The uploads a previous owner of these partitions left open (snapshot_uploads rows) are
 * aborted: their chunks come again. One that cannot be aborted now is logged and tried again
 * when its chunks come again.
 */
export async function abortAbandoned (r: Recovery, tps: readonly TopicPartition[]): Promise<void> {
  for (const row of await uploadsOfPartitions(r.pool, tps)) {
    try {
      const n = await abortUploadsOf(r.s3, r.bucket, row.key)
      await forgetUpload(r.pool, row.snapshotId, row.uploadId)
      r.logger.info({ snapshotId: row.snapshotId, key: row.key, aborted: n }, 'aborted an abandoned snapshot upload')
    } catch (err) {
      r.logger.warn({ snapshotId: row.snapshotId, key: row.key, err: errorMessage(err) }, 'could not abort an abandoned snapshot upload now (retried when its chunks come again)')
    }
  }
}

/** Aborts multipart uploads under `prefix` that no snapshot_uploads row names (orphans of a crash). */
export async function sweepOrphans (r: Recovery, prefix: string): Promise<void> {
  const known = new Set((await allUploads(r.pool)).map((u) => u.key))
  for (const u of await listUploads(r.s3, r.bucket, prefix)) {
    if (known.has(u.key) || (u.initiated !== undefined && Date.now() - u.initiated.getTime() < ORPHAN_AGE_MS)) continue
    await abortUpload(r.s3, r.bucket, u.key, u.uploadId)
    r.logger.info({ key: u.key, uploadId: u.uploadId }, 'aborted an orphan multipart upload')
  }
}

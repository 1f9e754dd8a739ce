import { Upload } from '@aws-sdk/lib-storage'
import type { S3Client } from '@aws-sdk/client-s3'
import { Readable } from 'node:stream'
import { SluiceError } from '../../errors.ts'
import type { EntityEvent } from '../../model/event.ts'
import { documentPieces } from './inline-document.ts'
import type { DocumentStats } from './inline-document.ts'
import { withS3Retry } from './s3-ops.ts'
import type { RetryPolicy } from './s3-ops.ts'
import type { IndexEntry } from './snapshot-index.ts'
import type { InlineItem } from './snapshot-items.ts'

export interface InlineTarget {
  s3: S3Client
  bucket: string
  key: string
  partBytes: number
  queueSize: number
  retry: RetryPolicy
}

/**
 * A SNAPSHOT_CREATED's document to `t.key` (lib-storage Upload: one PUT, or a multipart upload
 * past partBytes), its sha256, size and counts (`stats`, measured by a first pass) in the
 * object's metadata; S3 failures retried (withS3Retry). The snapshot's index entry. A second
 * serialisation that gives other bytes is a pipeline error, not a stored snapshot.
 */
export async function uploadInline (t: InlineTarget, item: InlineItem, stats: DocumentStats): Promise<IndexEntry> {
  const s = item.snapshot
  const metadata = {
    sha256: stats.sha256,
    size: String(stats.size),
    'data-sha256': stats.dataSha256,
    counts: encodeURIComponent(JSON.stringify(stats.counts)).slice(0, 1024),
    'sluice-snapshot-id': s.snapshotId,
    'sluice-kind': 'inline'
  }
  const etag = await withS3Retry(`uploading ${t.key}`, t.retry, async () => {
    const again: Partial<DocumentStats> = {}
    const upload = new Upload({
      client: t.s3,
      params: { Bucket: t.bucket, Key: t.key, Body: Readable.from(documentPieces(s, again)), ContentType: 'application/json', Metadata: metadata },
      partSize: t.partBytes,
      queueSize: t.queueSize,
      leavePartsOnError: false
    })
    const res = await upload.done()
    if (again.sha256 !== stats.sha256) throw new SluiceError('SLUICE_ERR_PIPELINE', `snapshot ${s.snapshotId} serialised to different bytes twice`)
    return res.ETag
  })
  return {
    snapshotId: s.snapshotId,
    key: t.key,
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
}

/** The SNAPSHOT_CREATED as the event log keeps it: its data left out, where it is stored put in. */
export function storedInlineEvent (event: EntityEvent, entry: IndexEntry): EntityEvent {
  const { data: _data, ...payload } = event.payload
  return { ...event, payload: { ...payload, stored: { key: entry.key, checksum: entry.checksum, size: entry.size, counts: entry.counts } } }
}

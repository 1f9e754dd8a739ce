import { createHash } from 'node:crypto'

/** A snapshot carried whole by a SNAPSHOT_CREATED event (the seed's file format). */
export interface InlineSnapshot {
  snapshotId: string
  createdAt: string
  createdBy: string | null
  triggerEvent: string | null
  /** the file format's version, as the producer sent it (the seed's "1.0") */
  version: unknown
  /** collection name -> its records (arrays are streamed record by record) */
  data: Record<string, unknown>
  /** the producer's metadata, without counts / checksum / size (sluice computes those) */
  metadata: Record<string, unknown>
}

/** What the serializer found while the bytes went by. */
export interface DocumentStats {
  /** sha256 hex of the whole document (the stored bytes) */
  sha256: string
  size: number
  counts: Record<string, number>
  /** sha256 hex and byte length of the `data` member as serialized (metadata.checksum / size) */
  dataSha256: string
  dataSize: number
}

const PIECE = 64 * 1024

/** Records per collection: an array's length, an object's keys, 0 for null, 1 otherwise. */
export function collectionCounts (data: Record<string, unknown>): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const [k, v] of Object.entries(data)) {
    counts[k] = Array.isArray(v) ? v.length : v === null ? 0 : typeof v === 'object' ? Object.keys(v).length : 1
  }
  return counts
}

/**
 * The stored document, deterministically, in pieces of ~64 KiB: the seed's format
 * `{snapshotId, createdAt, createdBy, triggerEvent, version, data, metadata}` where
 * metadata = the producer's metadata + {counts, checksum: "sha256:<hex of data>", size: <bytes
 * of data>} (a document cannot hold its own checksum: the whole object's sha256 is in the
 * index and in the object's x-amz-meta-sha256). The same snapshot always gives the same
 * bytes, so a redelivery rewrites the key with identical content. `stats` is filled as the
 * pieces are produced (complete once the generator is exhausted).
 */
export function * documentPieces (s: InlineSnapshot, stats: Partial<DocumentStats> = {}): Generator<Buffer> {
  const whole = createHash('sha256')
  const dataHash = createHash('sha256')
  let size = 0
  let dataSize = 0
  let parts: string[] = []
  let pending = 0
  const piece = (inData: boolean): Buffer => {
    const b = Buffer.from(parts.join(''), 'utf8')
    parts = []
    pending = 0
    whole.update(b)
    size += b.length
    if (inData) { dataHash.update(b); dataSize += b.length }
    return b
  }
  const push = function * (text: string, inData: boolean): Generator<Buffer> {
    parts.push(text)
    pending += text.length
    if (pending >= PIECE) yield piece(inData)
  }
  const head = JSON.stringify({ snapshotId: s.snapshotId, createdAt: s.createdAt, createdBy: s.createdBy, triggerEvent: s.triggerEvent, version: s.version ?? '1.0' })
  parts.push(head.slice(0, -1) + ',"data":')
  yield piece(false)
  yield * push('{', true)
  let firstKey = true
  for (const [k, v] of Object.entries(s.data)) {
    yield * push((firstKey ? '' : ',') + JSON.stringify(k) + ':', true)
    firstKey = false
    if (Array.isArray(v)) {
      yield * push('[', true)
      for (let i = 0; i < v.length; i++) yield * push((i === 0 ? '' : ',') + (JSON.stringify(v[i]) ?? 'null'), true)
      yield * push(']', true)
    } else {
      yield * push(JSON.stringify(v) ?? 'null', true)
    }
  }
  yield * push('}', true)
  if (pending > 0) yield piece(true)
  const counts = collectionCounts(s.data)
  stats.counts = counts
  stats.dataSha256 = dataHash.digest('hex')
  stats.dataSize = dataSize
  const meta = { ...s.metadata, counts, checksum: `sha256:${stats.dataSha256}`, size: dataSize }
  parts.push(',"metadata":' + JSON.stringify(meta) + '}')
  yield piece(false)
  stats.sha256 = whole.digest('hex')
  stats.size = size
}

/** The document's stats without keeping its bytes (a first pass before the upload). */
export function measureDocument (s: InlineSnapshot): DocumentStats {
  const stats: Partial<DocumentStats> = {}
  const pieces = documentPieces(s, stats)
  while (pieces.next().done !== true) { /* hashing only */ }
  return stats as DocumentStats
}

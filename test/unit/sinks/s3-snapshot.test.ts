import { createHash } from 'node:crypto'
import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { BulkString } from '../../../src/model/bulk-string.ts'
import type { EntityEvent } from '../../../src/model/event.ts'
import { collectionCounts, documentPieces, measureDocument } from '../../../src/sinks/s3/inline-document.ts'
import type { InlineSnapshot } from '../../../src/sinks/s3/inline-document.ts'
import { classifyS3Error, overTls } from '../../../src/sinks/s3/s3-ops.ts'
import { parseItem, triggerSnapshotId } from '../../../src/sinks/s3/snapshot-items.ts'

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')
const origin = { topic: 't', partition: 0, offset: 7, size: 10 } as KafkaMessage

function event (eventType: string, payload: Record<string, unknown>): EntityEvent {
  return {
    eventId: 'e-1',
    eventType,
    timestamp: '2025-02-25T10:55:00Z',
    aggregateType: 'Snapshot',
    entity: 'Snapshot',
    entityId: null,
    version: 3n,
    userName: 'system',
    workspace: 'default',
    payload,
    metadata: null,
    correlationId: null,
    causationId: null
  }
}

test('inline document: the seed format, deterministic, data bytes = JSON.stringify(data)', async (t) => {
  const data = { tasks: Array.from({ length: 3000 }, (_, i) => ({ id: i, s: 'é"\\\n'.repeat(i % 5) })), groups: { a: 1, b: 2 }, none: null, n: 5, empty: [] }
  const s: InlineSnapshot = { snapshotId: 'snap-1', createdAt: '2025-02-25T10:55:00.000Z', createdBy: 'system', triggerEvent: 'TASK_CREATED', version: '1.0', data, metadata: { source: 'x' } }
  const stats: Record<string, unknown> = {}
  const pieces = [...documentPieces(s, stats)]
  t.ok(pieces.length > 3, `streamed in ${pieces.length} pieces`)
  const bytes = Buffer.concat(pieces)
  const doc = JSON.parse(bytes.toString('utf8'))
  t.same(doc.data, data)
  t.same(Object.keys(doc), ['snapshotId', 'createdAt', 'createdBy', 'triggerEvent', 'version', 'data', 'metadata'])
  t.same(doc.metadata, { source: 'x', counts: { tasks: 3000, groups: 2, none: 0, n: 1, empty: 0 }, checksum: `sha256:${sha256(JSON.stringify(data))}`, size: Buffer.byteLength(JSON.stringify(data)) })
  t.equal(stats.sha256, sha256(bytes), 'whole-document sha256 computed while streaming')
  t.equal(stats.size, bytes.length)
  t.same(measureDocument(s), stats, 'a second pass gives the same bytes')
  t.same(collectionCounts({ a: [1, 2], b: {}, c: 'x' }), { a: 2, b: 0, c: 1 })
})

test('S3 errors: fatal, transient, rejected', async (t) => {
  const e = (name: string, status?: number, extra: Record<string, unknown> = {}): unknown =>
    Object.assign(new Error('boom'), { name, ...(status !== undefined ? { $metadata: { httpStatusCode: status } } : {}), ...extra })
  t.equal(classifyS3Error(e('AccessDenied', 403), 'x').code, 'SLUICE_ERR_S3_FATAL')
  t.equal(classifyS3Error(e('NoSuchBucket', 404), 'x').code, 'SLUICE_ERR_S3_FATAL')
  t.equal(classifyS3Error(e('InternalError', 500), 'x').code, 'SLUICE_ERR_S3_UNAVAILABLE')
  t.equal(classifyS3Error(e('SlowDown', 503), 'x').code, 'SLUICE_ERR_S3_UNAVAILABLE')
  t.equal(classifyS3Error(e('Error', undefined, { code: 'ECONNREFUSED' }), 'x').code, 'SLUICE_ERR_S3_UNAVAILABLE', 'no response: transient')
  t.equal(classifyS3Error(e('NoSuchUpload', 404), 'x').code, 'SLUICE_ERR_S3_UNAVAILABLE')
  t.equal(classifyS3Error(e('EntityTooLarge', 400), 'x').code, 'SLUICE_ERR_S3_REJECTED')
  t.match(classifyS3Error(e('SlowDown', 503), 'uploading part 3').message, /^uploading part 3: SlowDown: boom \(HTTP 503\)$/)
})

test('payloads go unsigned only over TLS: AWS itself or an https:// endpoint', async (t) => {
  t.equal(overTls(null), true, 'no endpoint: AWS over https')
  t.equal(overTls('https://minio.storage.svc:9000'), true)
  t.equal(overTls('HTTPS://s3.example'), true)
  t.equal(overTls('http://127.0.0.1:9000'), false)
  t.equal(overTls('http://https.example'), false)
})

test('snapshot events: kinds, ids, validation', async (t) => {
  t.equal(parseItem(event('SNAPSHOT_CREATED', { snapshotId: 'x', collections: {} }), origin).kind, 'log', 'a SNAPSHOT_CREATED without data is a notice')
  t.equal(parseItem(event('SNAPSHOT_UPLOADED', {}), origin).kind, 'log')
  const inline = parseItem(event('SNAPSHOT_CREATED', { snapshotId: 'x', data: { a: [] }, metadata: { counts: { a: 9 }, checksum: 'sha256:no', keep: 1 } }), origin)
  t.match(inline, { kind: 'inline', snapshot: { snapshotId: 'x', createdAt: '2025-02-25T10:55:00.000Z', createdBy: 'system', version: '1.0', metadata: { keep: 1 } } })
  t.notOk('counts' in (inline as { snapshot: InlineSnapshot }).snapshot.metadata, 'counts, checksum and size are sluice\'s to compute')
  const chunk = parseItem(event('SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 2, last: 5, data: Buffer.from('hello').toString('base64') }), origin)
  t.match(chunk, { kind: 'chunk', seq: 2, last: false, lastSeq: 5, size: 5, encoding: 'base64', event: { payload: { bytes: 5 } } })
  t.notOk('data' in (chunk as { event: EntityEvent }).event.payload, 'the logged event has no data')
  t.match(parseItem(event('SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 5, last: 5, data: 'é', encoding: 'utf8' }), origin), { last: true, size: 2 })
  for (const bytes of [Buffer.from('hello'), Buffer.from('hell'), Buffer.from([0xfb, 0xff, 0xfe, 1])]) {
    for (const text of [bytes.toString('base64'), bytes.toString('base64url')]) {
      const bulk = parseItem(event('SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: new BulkString(Buffer.from(text)) }), origin)
      t.match(bulk, { kind: 'chunk', size: bytes.length, encoding: 'base64' }, `a BulkString of ${text}: the decoded size`)
      t.ok(Buffer.isBuffer((bulk as { data: unknown }).data), 'its bytes, not a string')
    }
  }
  t.match(parseItem(event('SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: new BulkString(Buffer.from('é')), encoding: 'utf8' }), origin), { size: 2 })
  t.equal(triggerSnapshotId(event('SNAPSHOT_TRIGGERED', {})), 'state-e-1')
  t.equal(triggerSnapshotId({ ...event('SNAPSHOT_TRIGGERED', {}), eventId: 'a/b' }), `state-${createHash('sha1').update('a/b').digest('hex')}`)
  t.equal(triggerSnapshotId(event('SNAPSHOT_TRIGGERED', { snapshotId: 'nightly' })), 'nightly')
  const bad: Array<[string, Record<string, unknown>]> = [
    ['SNAPSHOT_CREATED', { data: {} }],
    ['SNAPSHOT_CREATED', { snapshotId: 'a b', data: {} }],
    ['SNAPSHOT_CREATED', { snapshotId: 'x', data: 'no' }],
    ['SNAPSHOT_CREATED', { snapshotId: 'x', data: {}, createdAt: 'yesterday' }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: -1, data: '' }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: 1 }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: 'aGVs bG8=' }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: '', encoding: 'hex' }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: '', last: 'yes' }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: new BulkString(Buffer.from('aGVs bG8=')) }],
    ['SNAPSHOT_CHUNK', { snapshotId: 'c', seq: 0, data: new BulkString(Buffer.from('aGVsbG8=\u00e9')) }],
    ['SNAPSHOT_TRIGGERED', { snapshotId: '../x' }]
  ]
  for (const [type, payload] of bad) {
    t.throws(() => parseItem(event(type, payload), origin), { code: 'SLUICE_ERR_SNAPSHOT_INVALID' }, `${type} ${JSON.stringify(payload)} is poison`)
  }
})

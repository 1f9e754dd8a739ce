import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, S3Client
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { test } from 'tap'

// Smoke test of the S3 server of scripts/stack.sh (versitygw, path-style): a streamed 32 MiB
// multipart upload read back byte for byte, and an aborted multipart upload that leaves nothing.
const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run \`eval "$(scripts/stack.sh env)"\` (and \`scripts/stack.sh up\`) first`)
  return v
}
const BUCKET = env('SLUICE_S3_BUCKET')
const MiB = 1024 * 1024
const SIZE = 32 * MiB
const PART = 5 * MiB

/** Deterministic pseudo-random bytes (xorshift32) in 1 MiB chunks, hashed as they are made. */
function * randomBytes (size: number, seed: number, hash?: Hash): Generator<Buffer> {
  let x = seed >>> 0 || 1
  for (let done = 0; done < size; done += MiB) {
    const words = new Uint32Array(Math.min(MiB, size - done) / 4)
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      words[i] = x
    }
    const chunk = Buffer.from(words.buffer)
    hash?.update(chunk)
    yield chunk
  }
}

test('S3: streamed multipart upload, read back, aborted upload leaves nothing', async (t) => {
  const s3 = new S3Client({
    endpoint: env('SLUICE_S3_ENDPOINT'),
    region: env('SLUICE_S3_REGION'),
    forcePathStyle: true,
    credentials: { accessKeyId: env('SLUICE_S3_ACCESS_KEY'), secretAccessKey: env('SLUICE_S3_SECRET_KEY') }
  })
  const prefix = `smoke/${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}/`
  const listUploads = async (): Promise<string[]> =>
    ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }))).Uploads ?? []).map((u) => u.Key as string)
  t.teardown(async () => {
    const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }))).Uploads ?? []
    for (const u of uploads) await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.Key, UploadId: u.UploadId }))
    const objects = (await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []
    for (const o of objects) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: o.Key }))
    s3.destroy()
  })

  // --- a 32 MiB object from a stream, 5 MiB parts, two in flight
  const key = `${prefix}big.bin`
  const produced = createHash('sha256')
  const parts: number[] = []
  const upload = new Upload({
    client: s3,
    params: { Bucket: BUCKET, Key: key, Body: Readable.from(randomBytes(SIZE, 0x5eed, produced)), ContentType: 'application/octet-stream' },
    partSize: PART,
    queueSize: 2
  })
  upload.on('httpUploadProgress', (p) => { if (p.part !== undefined) parts.push(p.part) })
  const started = Date.now()
  await upload.done()
  t.comment(`uploaded 32 MiB in ${Date.now() - started} ms`)
  const producedHex = produced.digest('hex')
  t.same([...new Set(parts)].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7], 'sent as 7 parts (6 x 5 MiB + 2 MiB)')

  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))
  t.equal(head.ContentLength, SIZE, 'HeadObject: ContentLength is 32 MiB')
  t.match(head.ETag, /-7"?$/, 'HeadObject: a multipart ETag of 7 parts')

  const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
  const read = createHash('sha256')
  let bytes = 0
  for await (const chunk of got.Body as Readable) {
    read.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  t.equal(bytes, SIZE, 'GetObject: 32 MiB read')
  t.equal(read.digest('hex'), producedHex, 'GetObject: sha256 equals the producer\'s')

  // --- a multipart upload aborted after its first part: the body stops after 6 MiB (part 1
  // goes out, part 2 cannot be cut) until the abort, so the upload cannot complete first
  const abortedKey = `${prefix}aborted.bin`
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  async function * gated (): AsyncGenerator<Buffer> {
    let sent = 0
    for (const chunk of randomBytes(SIZE, 0xab0)) {
      if (sent > PART) await gate
      yield chunk
      sent += chunk.length
    }
  }
  const aborted = new Upload({ client: s3, params: { Bucket: BUCKET, Key: abortedKey, Body: Readable.from(gated()) }, partSize: PART, queueSize: 2 })
  let listedMidway: string[] | null = null
  aborted.once('httpUploadProgress', () => {
    listUploads().then((keys) => { listedMidway = keys }, () => {}).finally(() => { aborted.abort().finally(release) })
  })
  await t.rejects(aborted.done(), { name: 'AbortError' }, 'the upload rejects with AbortError')
  t.same(listedMidway, [abortedKey], 'the multipart upload was listed before the abort')
  // done() rejects at once; lib-storage sends AbortMultipartUpload once the parts in flight return
  const rejectedAt = Date.now()
  const deadline = rejectedAt + 15_000
  let left = await listUploads()
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100)
    left = await listUploads()
  }
  t.comment(`upload list empty ${Date.now() - rejectedAt} ms after done() rejected`)
  t.same(left, [], 'ListMultipartUploads lists no upload under the prefix')
  await t.rejects(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: abortedKey })), { name: 'NotFound' }, 'HeadObject: no object at the aborted key')
})

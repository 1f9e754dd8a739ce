import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { test } from 'tap'
import { MultipartWriter } from '../../../src/sinks/s3/multipart-writer.ts'
import { createS3Client, signsPayloads, unsignedPayloads, uploadPart } from '../../../src/sinks/s3/s3-ops.ts'
import { readObject, s3Client, s3Config, s3Env, testPrefix } from '../../helpers/s3.ts'

// Over TLS the sink's client signs parts and objects without a sha256 of their bodies
// (UNSIGNED-PAYLOAD) and relies on their CRC32 against corruption: a body changed after signing
// must still be refused. (The stack's S3 server speaks plain HTTP: the unsigned client is made
// here as createS3Client makes it for an https:// endpoint.)
test('unsigned payloads: sent with their CRC32; a body changed on the way is refused', async (t) => {
  const prefix = testPrefix(t, 's3_unsigned')
  const s3 = unsignedPayloads(createS3Client(s3Config(prefix)))
  t.teardown(() => s3.destroy())
  const seen: Array<{ sha: string | undefined, crc: string | undefined }> = []
  let flip = false
  // after signing: what goes on the wire, and a bit flipped in the body when asked
  s3.middlewareStack.add((next) => async (args) => {
    const req = args.request as { headers: Record<string, string>, body?: unknown }
    seen.push({ sha: req.headers['x-amz-content-sha256'], crc: req.headers['x-amz-checksum-crc32'] })
    if (flip && Buffer.isBuffer(req.body)) {
      const body = Buffer.from(req.body)
      body[7] = (body[7] as number) ^ 1
      req.body = body
    }
    return await next(args)
  }, { step: 'finalizeRequest', priority: 'low', name: 'testWire' })
  const Bucket = s3Env.bucket
  const body = Buffer.from('a snapshot part '.repeat(4096))

  await s3.send(new PutObjectCommand({ Bucket, Key: prefix + 'whole', Body: body }))
  t.match(seen.at(-1), { sha: 'UNSIGNED-PAYLOAD', crc: /^[A-Za-z0-9+/]{6}==$/ }, 'PutObject: unsigned, with its CRC32')
  const reader = s3Client()
  t.teardown(() => reader.destroy())
  t.ok((await readObject(reader, prefix + 'whole')).equals(body), 'stored as sent')

  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: prefix + 'parts' }))
  t.teardown(async () => { await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: prefix + 'parts', UploadId: up.UploadId })).catch(() => {}) })
  flip = true
  await t.rejects(s3.send(new PutObjectCommand({ Bucket, Key: prefix + 'bad', Body: body })), { name: 'BadDigest' }, 'PutObject with a changed body: refused')
  await t.rejects(s3.send(new UploadPartCommand({ Bucket, Key: prefix + 'parts', UploadId: up.UploadId, PartNumber: 1, Body: body })), { name: 'BadDigest' }, 'UploadPart with a changed body: refused')
  t.match(seen.at(-1), { sha: 'UNSIGNED-PAYLOAD', crc: /==$/ }, 'UploadPart: unsigned, with its CRC32')
  flip = false
  await s3.send(new UploadPartCommand({ Bucket, Key: prefix + 'parts', UploadId: up.UploadId, PartNumber: 1, Body: body }))
  t.pass('the same part unchanged: accepted')
})

test('over plain HTTP the sink signs the payload (a sha256 of the body)', async (t) => {
  const prefix = testPrefix(t, 's3_signed')
  const s3 = createS3Client(s3Config(prefix))
  t.teardown(() => s3.destroy())
  let sha: string | undefined
  s3.middlewareStack.add((next) => async (args) => {
    sha = (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256']
    return await next(args)
  }, { step: 'finalizeRequest', priority: 'low', name: 'testWire' })
  const body = Buffer.from('a snapshot object')
  await s3.send(new PutObjectCommand({ Bucket: s3Env.bucket, Key: prefix + 'signed', Body: body }))
  t.equal(sha, createHash('sha256').update(body).digest('hex'), `${s3Env.endpoint}: x-amz-content-sha256 is the body's sha256`)
})

test('a part sent with a sha256 and a CRC32 computed beforehand (part-hasher.ts): sent as given, a wrong one refused', async (t) => {
  const prefix = testPrefix(t, 's3_part_sha')
  const s3 = createS3Client(s3Config(prefix))
  t.teardown(() => s3.destroy())
  t.ok(signsPayloads(s3), 'plain HTTP: payloads signed')
  t.notOk(signsPayloads(unsignedPayloads(createS3Client(s3Config(prefix)))), 'an unsigned client says so')
  const seen: Array<{ sha: string | undefined, crc: string | undefined }> = []
  s3.middlewareStack.add((next) => async (args) => {
    const headers = (args.request as { headers: Record<string, string> }).headers
    seen.push({ sha: headers['x-amz-content-sha256'], crc: headers['x-amz-checksum-crc32'] })
    return await next(args)
  }, { step: 'finalizeRequest', priority: 'low', name: 'testWire' })
  const Bucket = s3Env.bucket
  const Key = prefix + 'parts'
  const body = Buffer.from('a snapshot part '.repeat(4096))
  const sha = createHash('sha256').update(body).digest('hex')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  const ChecksumCRC32 = crc.toString('base64')
  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }))
  t.teardown(async () => { await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: up.UploadId })).catch(() => {}) })
  const input = { Bucket, Key, UploadId: up.UploadId, PartNumber: 1, Body: body, ChecksumCRC32 }
  const wrong = createHash('sha256').update('another part').digest('hex')
  const err = await s3.send(uploadPart(input, wrong)).then(() => null, (e: unknown) => e as { name?: string })
  t.comment(`refused with ${err?.name ?? 'nothing'}`)
  t.match(err, { name: /SHA256|Sha256|Digest/ }, 'a sha256 that is not the body\'s: refused by the server')
  t.same(seen.at(-1), { sha: wrong, crc: ChecksumCRC32 }, 'the given sha256 is what was signed and sent')
  const badCrc = await s3.send(uploadPart({ ...input, ChecksumCRC32: 'AAAAAA==' }, sha)).then(() => null, (e: unknown) => e as { name?: string })
  t.match(badCrc, { name: /Digest|Checksum/ }, `a CRC32 that is not the body's: refused by the server (${badCrc?.name ?? 'accepted'})`)
  t.same(seen.at(-1), { sha, crc: 'AAAAAA==' }, 'the given CRC32 is what was sent: the SDK computes none of its own')
  const res = await s3.send(uploadPart(input, sha))
  t.same(seen.at(-1), { sha, crc: ChecksumCRC32 })
  t.ok(res.ETag, 'the right one: accepted')
})

test('the multipart writer, signed and unsigned: parts carry the CRC32 (and over HTTP the sha256) the hash thread computed; object and sha256 as written', async (t) => {
  const partBytes = 5 * 1024 * 1024
  const data = Buffer.alloc(partBytes + 1234567)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 13)) & 0xff
  const reader = s3Client()
  t.teardown(() => reader.destroy())
  for (const unsigned of [false, true]) {
    const prefix = testPrefix(t, unsigned ? 's3_mpw_unsigned' : 's3_mpw_signed')
    const base = createS3Client(s3Config(prefix))
    const s3 = unsigned ? unsignedPayloads(base) : base
    t.teardown(() => s3.destroy())
    const seen: Array<{ sha: string | undefined, crc: string | undefined, part: string | undefined }> = []
    s3.middlewareStack.add((next, context) => async (args) => {
      const req = args.request as { headers: Record<string, string>, query?: Record<string, string> }
      if (context.commandName === 'UploadPartCommand') seen.push({ sha: req.headers['x-amz-content-sha256'], crc: req.headers['x-amz-checksum-crc32'], part: req.query?.partNumber })
      return await next(args)
    }, { step: 'finalizeRequest', priority: 'low', name: 'testWire' })
    const key = prefix + 'object'
    const writer = new MultipartWriter({ s3, bucket: s3Env.bucket, key, contentType: 'application/octet-stream', metadata: {}, partBytes, queueSize: 2, retry: { maxAttempts: 1, baseMs: 10, maxMs: 10 } })
    await writer.create()
    // in uneven pieces, as chunks come
    for (let off = 0; off < data.length; off += 700_001) await writer.write(data.subarray(off, off + 700_001))
    const { sha256 } = await writer.finish()
    t.equal(sha256, createHash('sha256').update(data).digest('hex'), `${unsigned ? 'unsigned' : 'signed'}: the sha256 of every byte written`)
    t.ok((await readObject(reader, key)).equals(data), 'stored as written')
    const parts = [data.subarray(0, partBytes), data.subarray(partBytes)]
    const expected = parts.map((p, i) => {
      const crc = Buffer.alloc(4)
      crc.writeUInt32BE(crc32(p))
      return { sha: unsigned ? 'UNSIGNED-PAYLOAD' : createHash('sha256').update(p).digest('hex'), crc: crc.toString('base64'), part: String(i + 1) }
    })
    t.same(seen.sort((a, b) => Number(a.part) - Number(b.part)), expected, 'each part: its own CRC32, and its sha256 signed over HTTP only')
  }
})

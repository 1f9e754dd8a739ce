import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { test } from 'tap'
import { PartHasher } from '../../../src/sinks/s3/part-hasher.ts'
import { PartPool } from '../../../src/sinks/s3/part-pool.ts'

const sha = (...parts: Buffer[]): string => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

// S3's x-amz-checksum-crc32: the CRC32 big-endian, base64
const crc = (b: Buffer): string => {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc32(b))
  return out.toString('base64')
}

test('objects hashed over their parts in order, each part on its own when asked, objects kept apart', async (t) => {
  const hasher = new PartHasher()
  const pool = new PartPool(1 << 18, 4)
  const fill = (seed: number, len: number): Buffer => {
    const b = pool.take()
    for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff
    return b.subarray(0, len)
  }
  const a = hasher.open()
  const b = hasher.open()
  // over three of the thread's 64 KiB slices, the last one partial
  const a1 = fill(1, (1 << 17) + 12345)
  const b1 = fill(2, 1000)
  const a2 = fill(3, 12345)
  // interleaved objects, the part's own hash asked for some
  const [ha1, hb1, ha2] = await Promise.all([hasher.part(a, a1, true), hasher.part(b, b1, false), hasher.part(a, a2, true)])
  t.same(ha1, { sha256: sha(a1), crc32: crc(a1) })
  t.same(hb1, { sha256: null, crc32: crc(b1) }, 'not asked: no own sha256')
  t.same(ha2, { sha256: sha(a2), crc32: crc(a2) })
  t.equal(await hasher.digest(a), sha(a1, a2), 'object a: its parts in order')
  t.equal(await hasher.digest(b), sha(b1), 'object b: its own part only')
  t.same(await hasher.part(hasher.open(), Buffer.alloc(0), true), { sha256: sha(), crc32: crc(Buffer.alloc(0)) }, 'an empty part')
  t.equal(await hasher.digest(hasher.open()), sha(), 'an object without parts: the sha256 of nothing')
  const c = hasher.open()
  await hasher.part(c, fill(4, 100), false)
  hasher.drop(c)
  t.equal(await hasher.digest(c), sha(), 'a dropped object starts again from nothing')
  await t.rejects(hasher.part(hasher.open(), Buffer.alloc(10), false), /shared memory/, 'a part outside shared memory is refused, not copied')
})

test('a thread that stops fails the objects it was hashing, not the ones after it', async (t) => {
  const hasher = new PartHasher()
  const pool = new PartPool(1024, 2)
  const part = pool.take().fill(9)
  const a = hasher.open()
  await hasher.part(a, part, false)
  await hasher.close()
  await t.rejects(hasher.part(a, part, false), { code: 'SLUICE_ERR_RUNTIME' }, 'its hash so far went with the thread')
  await t.rejects(hasher.digest(a), { code: 'SLUICE_ERR_RUNTIME' })
  const b = hasher.open()
  t.equal((await hasher.part(b, part, true)).sha256, sha(part), 'a new object: a new thread')
  t.equal(await hasher.digest(b), sha(part))
  await hasher.close()
})

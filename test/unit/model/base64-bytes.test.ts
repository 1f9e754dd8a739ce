import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { test } from 'tap'
import { BASE64, PLAIN, base64DecodedLength, base64End, decodeGroups, decodeTail, decodesWhole, isBase64, spanClass, tableClass } from '../../../src/model/base64-bytes.ts'

function decode (text: string): Buffer {
  const src = Buffer.from(text)
  const end = base64End(src)
  const groups = Math.floor(end / 4)
  const out = Buffer.alloc(groups * 3)
  decodeGroups(src, 0, groups, out, 0)
  return Buffer.concat([out, decodeTail(src, groups * 4, end - groups * 4)])
}

test('decodes what Buffer.from(text, "base64") decodes, both alphabets, any padding', async (t) => {
  for (let len = 0; len < 40; len++) {
    const bytes = randomBytes(len)
    for (const text of [bytes.toString('base64'), bytes.toString('base64url')]) {
      t.same(decode(text), bytes, `${len} bytes as ${text}`)
      t.equal(base64DecodedLength(Buffer.from(text)), len)
      t.ok(isBase64(Buffer.from(text)))
    }
  }
  const big = randomBytes(700_001)
  t.same(decode(big.toString('base64')), big, '700,001 bytes')
})

test('what is not base64', async (t) => {
  for (const text of ['aGVs bG8=', 'aGVsbG8=\n', 'aGV=sbG8', 'a===', 'é']) t.notOk(isBase64(Buffer.from(text)), JSON.stringify(text))
})

test('property: isBase64 of any bytes at any offset is the alphabet check of every character', async (t) => {
  const byte = fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...[...'AZaz09+/-_='].map((c) => c.charCodeAt(0))) }, fc.integer({ min: 0, max: 255 }))
  fc.assert(fc.property(fc.array(byte, { maxLength: 40 }), fc.nat(7), (bytes, skip) => {
    const all = Buffer.from([...Array(skip).fill(0x21), ...bytes]) // an odd byteOffset too
    const src = all.subarray(skip)
    return isBase64(src) === /^[A-Za-z0-9+/_-]*={0,2}$/.test(src.toString('latin1'))
  }), { numRuns: 2000 })
  t.pass()
})

test('property: decodeGroups from any group offset into any place, across its 32 KiB string slices', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 120_000 }), fc.nat(40), fc.nat(9), fc.boolean(), (len, lead, to, url) => {
    const bytes = randomBytes(len)
    const pre = randomBytes(lead * 3) // lead whole groups before the ones decoded
    const text = Buffer.from(Buffer.concat([pre, bytes]).toString(url ? 'base64url' : 'base64'))
    const groups = Math.floor(len / 3)
    const dst = Buffer.alloc(to + groups * 3 + 5, 0xee)
    decodeGroups(text, lead * 4, groups, dst, to)
    return dst.subarray(to, to + groups * 3).equals(bytes.subarray(0, groups * 3)) &&
      dst.subarray(0, to).every((b) => b === 0xee) && dst.subarray(to + groups * 3).every((b) => b === 0xee)
  }), { numRuns: 60 })
  t.pass()
})

test('property: spanClass of any span is its PLAIN (no byte below 0x20, no backslash) and BASE64 (the alphabet before <= 2 "=") answers', async (t) => {
  const byte = fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...[...'AZaz09+/-_='].map((c) => c.charCodeAt(0))) },
    { weight: 5, arbitrary: fc.integer({ min: 0x20, max: 0xff }) }, fc.constantFrom(0x00, 0x1f, 0x5c, 0x0a))
  fc.assert(fc.property(fc.array(byte, { maxLength: 40 }), fc.nat(40), fc.nat(40), (bytes, a, b) => {
    const buf = Buffer.from(bytes)
    const start = Math.min(a, b, buf.length)
    const end = Math.min(Math.max(a, b), buf.length)
    const span = buf.subarray(start, end)
    const plain = !span.some((x) => x < 0x20 || x === 0x5c)
    const base64 = /^[A-Za-z0-9+/_-]*={0,2}$/.test(span.toString('latin1'))
    return spanClass(buf, start, end) === ((plain ? PLAIN : 0) | (base64 ? BASE64 : 0))
  }), { numRuns: 3000 })
  t.pass()
})

test('property: long spans, base64 with up to three foreign bytes anywhere, across the trial decode\'s 32 KiB slices', async (t) => {
  // any byte that is not of either alphabet, '=' among them, and ones the decoders treat apart
  const foreign = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x3d, 0x20, 0x0a, 0x09, 0x0d, 0x0c, 0x5c, 0x22, 0x00, 0x80, 0xff, 0x2e, 0x2c))
  const insert = fc.record({ at: fc.nat(), byte: foreign })
  fc.assert(fc.property(fc.integer({ min: 256, max: 100_000 }), fc.boolean(), fc.nat(2), fc.array(insert, { maxLength: 3 }), fc.nat(8),
    (len, url, pad, inserts, lead) => {
      let text = randomBytes(Math.ceil(len * 3 / 4)).toString(url ? 'base64url' : 'base64').replace(/=+$/, '').slice(0, len) + '='.repeat(pad)
      for (const { at, byte } of inserts) {
        const i = at % (text.length + 1)
        text = text.slice(0, i) + String.fromCharCode(byte) + text.slice(i)
      }
      const buf = Buffer.concat([Buffer.alloc(lead, 0x41), Buffer.from(text, 'latin1'), Buffer.from('"')])
      const start = lead
      const end = lead + text.length
      const plain = ![...text].some((c) => c.charCodeAt(0) < 0x20 || c === '\\')
      const base64 = /^[A-Za-z0-9+/_-]*={0,2}$/.test(text)
      const expected = (plain ? PLAIN : 0) | (base64 ? BASE64 : 0)
      // the trial decode says base64 exactly when it is (the table pass answers the rest)
      return decodesWhole(buf, start, end) === base64 && spanClass(buf, start, end) === expected && tableClass(buf, start, end) === expected
    }), { numRuns: 400 })
  t.pass()
})

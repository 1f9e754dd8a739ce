import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import { base64DecodedLength, base64End, decodeGroups, decodeTail, isBase64 } from '../../../src/sinks/s3/base64-bytes.ts'

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

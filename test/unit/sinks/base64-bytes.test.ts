import { randomBytes } from 'node:crypto'
import { test } from 'tap'
import { base64DecodedLength, base64End, decodeGroups, decodeTail } from '../../../src/sinks/s3/base64-bytes.ts'

/** The bytes, or null when the text is not base64. */
function decode (text: string): Buffer | null {
  const src = Buffer.from(text)
  const end = base64End(src)
  const groups = Math.floor(end / 4)
  const out = Buffer.alloc(groups * 3)
  const whole = decodeGroups(src, 0, groups, out, 0)
  const tail = decodeTail(src, groups * 4, end - groups * 4)
  return whole && tail !== null ? Buffer.concat([out, tail]) : null
}

test('decodes what Buffer.from(text, "base64") decodes, both alphabets, any padding', async (t) => {
  for (let len = 0; len < 40; len++) {
    const bytes = randomBytes(len)
    for (const text of [bytes.toString('base64'), bytes.toString('base64url')]) {
      t.same(decode(text), bytes, `${len} bytes as ${text}`)
      t.equal(base64DecodedLength(Buffer.from(text)), len)
    }
  }
  const big = randomBytes(700_001)
  t.same(decode(big.toString('base64')), big, '700,001 bytes')
})

test('what is not base64 is found while decoding, in a whole group or in the tail', async (t) => {
  for (const text of ['aGVs bG8=', 'aGVsbG8=\n', 'aGV=sbG8', 'a===', 'é', 'aGVsbG8h\u0000aGVs', 'aGVsbG8hIQ!']) t.equal(decode(text), null, JSON.stringify(text))
})

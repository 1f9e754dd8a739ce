import { test } from 'tap'
import { BulkString } from '../../../src/model/bulk-string.ts'
import { parseWithBulkStrings } from '../../../src/stages/bulk-strings.ts'

const opts = { key: 'data', minBytes: 16 }
const big = 'QUJD'.repeat(8) // 32 base64 characters
const parse = (text: string): any => parseWithBulkStrings(Buffer.from(text), opts)

test('a long `data` string below the top level is a view of the bytes, the rest parses as JSON', async (t) => {
  const text = JSON.stringify({ eventType: 'SNAPSHOT_CHUNK', payload: { snapshotId: 's-1', seq: 3, data: big, last: false }, n: [1, 'two', { x: null }] })
  const buf = Buffer.from(text)
  const v = parseWithBulkStrings(buf, opts) as any
  t.ok(v.payload.data instanceof BulkString, 'data is a BulkString')
  t.equal(v.payload.data.bytes.buffer, buf.buffer, 'over the message\'s own memory')
  t.equal(v.payload.data.toString(), big)
  t.equal(v.payload.data.base64, true, 'known to be base64 from the scan')
  t.same({ ...v, payload: { ...v.payload, data: null } }, { ...JSON.parse(text), payload: { ...JSON.parse(text).payload, data: null } }, 'every other value as JSON.parse gives it')
  t.equal(JSON.stringify(v), text, 'JSON.stringify writes the string it stands for')
})

test('what stays an ordinary string', async (t) => {
  t.equal(typeof parse(JSON.stringify({ data: big })).data, 'string', 'a member of the top-level object (the envelope\'s own data/payload)')
  t.equal(typeof parse(JSON.stringify({ p: { data: 'short', pad: big } })).p.data, 'string', 'shorter than minBytes')
  t.equal(typeof parse(JSON.stringify({ p: { other: big } })).p.other, 'string', 'another member name')
  t.equal(parse(JSON.stringify({ p: { data: `${big}"quoted"\n` } })).p.data, `${big}"quoted"\n`, 'a value with escapes')
  t.same(parse(JSON.stringify({ p: { data: [big] } })).p.data, [big], 'an array element after the name')
  t.throws(() => parse(JSON.stringify({ p: { data: big, x: 'a\u0000b' } })), { code: 'SLUICE_ERR_NUL' }, 'a \\u0000 in the text is poison before the sentinel could be confused with it')
  t.equal(parse(JSON.stringify({ p: { [big]: 'data', data2: big } })).p.data2, big, 'a long member name, a near-miss name')
  const deep = parse(JSON.stringify({ a: [{ data: big }, { b: { data: big } }] }))
  t.ok(deep.a[0].data instanceof BulkString && deep.a[1].b.data instanceof BulkString, 'at any depth below the top')
})

test('escaped quotes before a bulk value do not throw the scan off', async (t) => {
  const text = JSON.stringify({ p: { note: 'say "data": "x"\\', data: big } })
  const v = parse(text)
  t.equal(v.p.note, 'say "data": "x"\\')
  t.ok(v.p.data instanceof BulkString)
  t.equal(v.p.data.toString(), big)
})

test('malformed JSON is rejected as JSON.parse rejects it', async (t) => {
  const bad = [
    `{"p":{"data":"${big}",}}`,
    `{"p":{"data":"${big}"`,
    `{"p":{"data":"${big}}}`,
    `{"p":{"data" "${big}"}}`,
    `{"p":{"data":"${big.slice(0, 10)}\n${big}"}}`
  ]
  for (const text of bad) {
    t.throws(() => JSON.parse(text), SyntaxError)
    t.throws(() => parse(text), SyntaxError, text.slice(0, 24))
  }
})

test('a bulk value that is not base64 says so; one made without the scan finds out when asked', async (t) => {
  const notBase64 = parse(JSON.stringify({ p: { data: big + ' é!' } })).p.data
  t.ok(notBase64 instanceof BulkString)
  t.equal(notBase64.base64, false, 'a space, a non-ASCII character, a "!"')
  t.equal(parse(JSON.stringify({ p: { data: big + 'QQ==' } })).p.data.base64, true, 'padding')
  t.equal(parse(JSON.stringify({ p: { data: big.replace('Q', '-') } })).p.data.base64, true, 'the URL-safe alphabet')
  t.equal(new BulkString(Buffer.from(big)).base64, true)
  t.equal(new BulkString(Buffer.from(big + '=a')).base64, false)
})

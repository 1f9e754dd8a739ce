import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { test } from 'tap'
import { plainText, scanJson, textHash } from '../../../src/stages/json-scan.ts'

const opts = { maxDepth: 8 }
const scan = (text: string | Buffer): ReturnType<typeof scanJson> => scanJson(typeof text === 'string' ? Buffer.from(text) : text, opts)

function code (f: () => unknown): string {
  try {
    f()
  } catch (err) {
    return (err as { code: string }).code
  }
  return 'none'
}

test('top-level members: names and the spans of their literal and value text', async (t) => {
  const text = '{ "a" : 1e400 , "b\\u00e9":{"x":[1,"]}"]} ,"c":"q\\"}", "d" :null}'
  const buf = Buffer.from(text)
  const { members } = scanJson(buf, opts)
  t.same(members?.map((m) => [m.name, buf.toString('utf8', m.keyStart, m.keyEnd), buf.toString('utf8', m.start, m.end)]), [
    ['a', '"a"', '1e400'],
    ['bé', '"b\\u00e9"', '{"x":[1,"]}"]}'],
    ['c', '"c"', '"q\\"}"'],
    ['d', '"d"', 'null']
  ])
  t.equal(scan('[1,{"a":2}]').members, null, 'an array is no object')
  t.equal(scan('"text"').members, null)
  t.same(scan('{}').members, [])
})

test('nesting deeper than the limit is poison before any parsing, however deep', async (t) => {
  t.equal(code(() => scan('['.repeat(8) + ']'.repeat(8))), 'none', 'at the limit')
  t.equal(code(() => scan('['.repeat(9) + ']'.repeat(9))), 'SLUICE_ERR_TOO_DEEP')
  t.equal(code(() => scanJson(Buffer.from('{"a":'.repeat(100_000)), { maxDepth: 512 })), 'SLUICE_ERR_TOO_DEEP', 'unterminated and 100,000 deep')
  t.equal(code(() => scan('{"a":"' + '['.repeat(50) + '"}')), 'none', 'brackets inside strings do not count')
})

test('bytes that are not UTF-8 are poison, never replaced', async (t) => {
  const bad = [
    [0x80], // lone continuation byte
    [0xc0, 0xaf], // overlong '/'
    [0xe2, 0x82], // truncated sequence
    [0xed, 0xa0, 0x80], // encoded surrogate U+D800
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0xe9] // Latin-1 é
  ]
  for (const bytes of bad) {
    const buf = Buffer.concat([Buffer.from('{"a":"x'), Buffer.from(bytes), Buffer.from('"}')])
    t.throws(() => scan(buf), { code: 'SLUICE_ERR_UTF8', message: /not valid UTF-8 \(bad byte 0x[0-9a-f]{2} at 7\)/ }, Buffer.from(bytes).toString('hex'))
  }
})

test('escapes no column can hold: \\u0000 and lone surrogates', async (t) => {
  t.equal(code(() => scan('{"a":"x\\u0000"}')), 'SLUICE_ERR_NUL')
  t.equal(code(() => scan('{"a\\u0000":1}')), 'SLUICE_ERR_NUL', 'in a member name too')
  t.equal(code(() => scan('{"a":"\\ud800"}')), 'SLUICE_ERR_UTF8', 'high surrogate alone')
  t.equal(code(() => scan('{"a":"\\ud800\\u0041"}')), 'SLUICE_ERR_UTF8', 'high surrogate, then no low one')
  t.equal(code(() => scan('{"a":"\\udc00x"}')), 'SLUICE_ERR_UTF8', 'low surrogate alone')
  t.equal(code(() => scan('{"a":"\\\\ud800"}')), 'none', 'an escaped backslash followed by text is no escape')
  t.equal(code(() => scan('{"a":"\\ud83d\\ude80 \\u00e9 \\n"}')), 'none', 'a pair and ordinary escapes')
})

test('property: every literal is checked and every member found, whatever escapes come before', async (t) => {
  // characters JSON.stringify escapes (quote, backslash, controls, NUL) beside plain and wide ones
  const text = fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0001', '\u0000', 'é', '\u{1F600}'), maxLength: 6 })
  const value = fc.oneof(text, fc.integer(), fc.dictionary(text, text, { maxKeys: 3, noNullPrototype: true }))
  const hasNul = (v: unknown): boolean => typeof v === 'string' ? v.includes('\u0000') : typeof v === 'object' && v !== null && Object.entries(v).some(([k, x]) => hasNul(k) || hasNul(x))
  fc.assert(fc.property(fc.dictionary(text, value, { maxKeys: 6, noNullPrototype: true }), (obj) => {
    const buf = Buffer.from(JSON.stringify(obj))
    if (hasNul(obj)) return code(() => scanJson(buf, opts)) === 'SLUICE_ERR_NUL'
    const { members } = scanJson(buf, opts)
    return isDeepStrictEqual(members?.map((m) => m.name), Object.keys(obj)) &&
      (members ?? []).every((m) => isDeepStrictEqual(JSON.parse(buf.toString('utf8', m.start, m.end)), obj[m.name]))
  }), { numRuns: 500 })
  t.equal(code(() => scan('{"a\\"b":1, "c":"\\u0000"}')), 'SLUICE_ERR_NUL', 'after an escaped name')
  t.equal(code(() => scan('{"a":1}\\u0000 "b"')), 'none', 'a backslash outside a literal is left to JSON.parse')
})

test('plainText: the bytes as text whatever it saw before (hash collisions, names past the bound, non-ASCII)', async (t) => {
  fc.assert(fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'é', '\u{1F600}', ' ', 'Z'), maxLength: 70 }), { maxLength: 20 }), (texts) => {
    for (const text of [...texts, ...texts]) {
      const buf = Buffer.from(`"${text}"`)
      if (plainText(buf, 1, buf.length - 1) !== text) return false
    }
    return true
  }), { numRuns: 500 })
  // two names with one hash (found by trying pseudo-random names): each comes back as itself, alternately
  const [a, b] = ['k1vpviet1i', 'k1iobzpgf']
  t.equal(textHash(Buffer.from(a), 0, a.length), textHash(Buffer.from(b), 0, b.length), 'one hash')
  for (let k = 0; k < 4; k++) {
    for (const name of [a, b]) t.equal(plainText(Buffer.from(`{"${name}":1}`), 2, 2 + name.length), name)
  }
  // more distinct names than the cache holds: still each its own text
  let wrong = 0
  for (let i = 0; i < 10_000; i++) {
    const name = `m${i}`
    if (plainText(Buffer.from(name), 0, name.length) !== name) wrong++
  }
  t.equal(wrong, 0)
  const { members } = scanJson(Buffer.from(`{"${a}":1,"${b}":2}`), opts)
  t.same(members?.map((m) => m.name), [a, b], 'the scan names colliding members apart')
})

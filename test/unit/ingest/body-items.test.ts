import fc from 'fast-check'
import { test } from 'tap'
import { splitBody } from '../../../src/ingest/body-items.ts'

const texts = (items: Buffer[]): string[] => items.map((b) => b.toString('utf8'))

test('one event, a JSON array, NDJSON: each item is the producer\'s own bytes', async (t) => {
  t.same(texts(splitBody(Buffer.from(' {"a": 1.50} \n'), 'json', 10)), ['{"a": 1.50}'], 'one object, trimmed')
  t.same(texts(splitBody(Buffer.from('[{"a":"x,]"} , {"b":[1,{"c":"\\"]"}]}]'), 'json', 10)), ['{"a":"x,]"}', '{"b":[1,{"c":"\\"]"}]}'], 'brackets and commas inside strings are text')
  t.same(texts(splitBody(Buffer.from('[1, "two", null]'), 'json', 10)), ['1', '"two"', 'null'], 'non-objects are items too (the pipeline refuses them)')
  t.same(texts(splitBody(Buffer.from('{"a":1}\r\n\n  \n{"b":2}\n{oops\n'), 'ndjson', 10)), ['{"a":1}', '{"b":2}', '{oops'], 'blank lines skipped, a malformed line is still an item')
  t.same(texts(splitBody(Buffer.from('{not json'), 'json', 10)), ['{not json'], 'a malformed single event is an item: the decode stage names it')
})

test('what makes the whole body unusable', async (t) => {
  const bad = { code: 'SLUICE_ERR_INGEST_BODY' }
  t.throws(() => splitBody(Buffer.from(''), 'json', 10), { ...bad, message: /no event/ })
  t.throws(() => splitBody(Buffer.from(' \n '), 'ndjson', 10), { ...bad, message: /no event/ })
  t.throws(() => splitBody(Buffer.from('[]'), 'json', 10), { ...bad, message: /no event/ })
  t.throws(() => splitBody(Buffer.from('[{"a":1}'), 'json', 10), { ...bad, message: /do not close/ })
  t.throws(() => splitBody(Buffer.from('[{"a":"1}]'), 'json', 10), { ...bad, message: /not terminated/ })
  t.throws(() => splitBody(Buffer.from('[1,,2]'), 'json', 10), { ...bad, message: /empty element/ })
  t.throws(() => splitBody(Buffer.from('[1,2,]'), 'json', 10), { ...bad, message: /empty element/ })
  t.throws(() => splitBody(Buffer.from('[1] [2]'), 'json', 10), { ...bad, message: /after its closing bracket/ })
  t.throws(() => splitBody(Buffer.from('[1}'), 'json', 10), { ...bad, message: /do not close/ })
  t.throws(() => splitBody(Buffer.from('[1,2,3]'), 'json', 2), { ...bad, message: /more than 2 events/ })
  t.throws(() => splitBody(Buffer.from('1\n2\n3\n'), 'ndjson', 2), { ...bad, message: /more than 2 events/ })
})

test('property: an array of any JSON values splits into exactly its elements, as written', async () => {
  fc.assert(fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 20 }), fc.constantFrom('', ' ', '\n\t'), (values, ws) => {
    const parts = values.map((v) => JSON.stringify(v))
    const body = Buffer.from(`${ws}[${ws}${parts.join(`${ws},${ws}`)}${ws}]${ws}`)
    const got = texts(splitBody(body, 'json', 100))
    if (JSON.stringify(got) !== JSON.stringify(parts)) throw new Error(`split ${body.toString()} into ${JSON.stringify(got)}`)
  }), { numRuns: 300 })
})

import fc from 'fast-check'
import { test } from 'tap'
import { decodeCursor, encodeCursor } from '../../../src/ingest/stream-cursor.ts'
import type { Cursor } from '../../../src/ingest/stream-cursor.ts'

test('a cursor survives its text form', async (t) => {
  const c: Cursor = new Map([['entity-events', new Map([[0, 41], [5, -1]])], ['a.b_c', new Map([[12, 9007199254740]])]])
  const text = encodeCursor(c)
  t.equal(text, 'entity-events@0=41,5=-1|a.b_c@12=9007199254740')
  t.same(decodeCursor(text), c)
  t.same(decodeCursor(''), new Map(), 'empty: no partition seen yet')
})

test('property: encode then decode is the identity', async () => {
  const topic = fc.stringMatching(/^[A-Za-z0-9._-]{1,30}$/)
  const parts = fc.dictionary(fc.nat({ max: 1000 }).map(String), fc.integer({ min: -1, max: 2 ** 50 }), { minKeys: 1, maxKeys: 8 })
  fc.assert(fc.property(fc.dictionary(topic, parts, { maxKeys: 4 }), (d) => {
    const c: Cursor = new Map(Object.entries(d).map(([t, ps]) => [t, new Map(Object.entries(ps).map(([p, o]) => [Number(p), o]))]))
    const back = decodeCursor(encodeCursor(c))
    if (encodeCursor(back) !== encodeCursor(c)) throw new Error(`${encodeCursor(c)} came back as ${encodeCursor(back)}`)
  }))
})

test('anything else is refused with SLUICE_ERR_STREAM_CURSOR', async (t) => {
  for (const bad of ['x', 'topic@', 'topic@0', 'topic@0=1,0=2', 'a@0=1|a@1=2', 'bad topic@0=1', 'topic@0=1.5', 'topic@-2=1', 'topic@0=-5', 'x'.repeat(20000)]) {
    t.throws(() => decodeCursor(bad), { code: 'SLUICE_ERR_STREAM_CURSOR' }, JSON.stringify(bad.slice(0, 30)))
  }
})

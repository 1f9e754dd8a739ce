import { test } from 'tap'
import { diffStates, jsonEqual } from '../../../src/state/diff.ts'

test('diff of two states: added, removed, changed, unchanged', async (t) => {
  const d = diffStates({ a: 1, b: { x: [1, 2] }, c: 'same', gone: null }, { a: 2, b: { x: [1, 2] }, c: 'same', new: false })
  t.same(d, { added: { new: false }, removed: { gone: null }, changed: { a: { old: 1, new: 2 } }, unchanged: 2 })
  t.same(diffStates({}, {}), { added: {}, removed: {}, changed: {}, unchanged: 0 })
  t.same(diffStates({ o: { p: 1, q: 2 } }, { o: { q: 2, p: 1 } }).unchanged, 1, 'key order does not matter')
  t.same(diffStates({ l: [1, 2] }, { l: [2, 1] }).changed, { l: { old: [1, 2], new: [2, 1] } }, 'array order does')
})

test('jsonEqual', async (t) => {
  t.ok(jsonEqual(null, null))
  t.notOk(jsonEqual(null, {}))
  t.notOk(jsonEqual([], {}))
  t.notOk(jsonEqual({ a: 1 }, { a: 1, b: 1 }))
  t.notOk(jsonEqual({ a: undefined as never }, { b: 1 }))
  t.ok(jsonEqual({ a: [{ b: 'c' }] }, { a: [{ b: 'c' }] }))
  t.notOk(jsonEqual(1, '1'))
})

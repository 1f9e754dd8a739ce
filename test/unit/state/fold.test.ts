import { test } from 'tap'
import { applyEvent, eventChanges, eventKind, foldEvents, foldStep, emptyFold } from '../../../src/state/fold.ts'

test('event kinds: *_CREATED sets, *_DELETED tombstones, the rest merges', async (t) => {
  t.equal(eventKind('TASK_CREATED'), 'created')
  t.equal(eventKind('group_created'), 'created', 'case-insensitive')
  t.equal(eventKind('TASK_DELETED'), 'deleted')
  t.equal(eventKind('TASK_UPDATED'), 'merged')
  t.equal(eventKind('STATUS_CHANGED'), 'merged')
  t.equal(eventKind('CREATED'), 'merged', 'the suffix needs its underscore')
})

test('changes: payload.changes when an object, else the payload without envelope fields', async (t) => {
  t.same(eventChanges({ entity: 'Task', entityId: 't', changes: { a: 1 }, b: 2 }), { a: 1 })
  t.same(eventChanges({ entity: 'Task', entityId: 't', entity_id: 't', entityType: 'x', entity_type: 'x', user: 'u', userName: 'u', user_name: 'u', workspace: 'w', a: 1 }), { a: 1 })
  t.same(eventChanges({ changes: 'text', a: 1 }), { changes: 'text', a: 1 }, 'a non-object changes is a field')
  t.same(eventChanges({ changes: [1, 2] }), { changes: [1, 2] })
  t.same(eventChanges(null), {})
  t.same(eventChanges([1]), {})
})

test('apply and fold', async (t) => {
  t.same(applyEvent({ a: 1, b: 1 }, 'TASK_UPDATED', { changes: { b: 2, c: { d: 1 } } }), { a: 1, b: 2, c: { d: 1 } }, 'top-level merge')
  t.same(applyEvent({ a: 1, c: { d: 1, e: 1 } }, 'TASK_UPDATED', { changes: { c: { d: 2 } } }), { a: 1, c: { d: 2 } }, 'nested objects are replaced, as jsonb || does')
  t.same(applyEvent({ a: 1 }, 'TASK_CREATED', { changes: { z: 1 } }), { z: 1 }, 'create replaces')
  t.same(applyEvent({ a: 1 }, 'TASK_DELETED', { changes: { z: 1 } }), { a: 1 }, 'delete keeps')
  let f = foldStep(emptyFold(), 'TASK_CREATED', { changes: { a: 1 } })
  f = foldStep(f, 'TASK_DELETED', {})
  t.same(f, { state: { a: 1 }, deleted: true, events: 2 })
  f = foldStep(f, 'TASK_UPDATED', { changes: { b: 1 } })
  t.same(f, { state: { a: 1, b: 1 }, deleted: true, events: 3 }, 'an update after a delete stays a tombstone')
  f = foldStep(f, 'TASK_CREATED', { changes: { c: 1 } })
  t.same(f, { state: { c: 1 }, deleted: false, events: 4 }, 'created again')
  const folded = foldEvents([
    { eventType: 'TASK_UPDATED', payload: { changes: { b: 2 } }, partition: 1, offset: 0 },
    { eventType: 'TASK_CREATED', payload: { changes: { a: 1 } }, partition: 0, offset: 7 }
  ])
  t.same(folded.state, { a: 1, b: 2 }, 'folded in (partition, offset) order, whatever the given order')
})

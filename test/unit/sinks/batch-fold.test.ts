import fc from 'fast-check'
import { test } from 'tap'
import { encodeCopyRow, EVENT_COLUMNS } from '../../../src/sinks/timescale/copy-encoder.ts'
import { batchFoldLines, FOLD_COLUMNS } from '../../../src/sinks/timescale/batch-fold.ts'
import type { FoldRow } from '../../../src/sinks/timescale/batch-fold.ts'
import { eventChanges, foldEvents, isJsonObject } from '../../../src/state/fold.ts'
import type { JsonObject } from '../../../src/state/fold.ts'

interface Ev { type: string, entity: string | null, entityId: string | null, payload: string, partition: number, offset: number, topic?: string, id?: string }

/** A batch row: the log COPY line as eventCopyRow writes it (EVENT_COLUMNS order) and its origin. */
function line (e: Ev): FoldRow {
  const v: Record<string, string | number | null> = {
    '"timestamp"': '2025-05-01T00:00:00Z',
    event_id: e.id ?? `${e.partition}/${e.offset}`,
    event_type: e.type,
    entity: e.entity,
    entity_id: e.entityId,
    version: e.offset,
    event_data: e.payload,
    source_topic: e.topic ?? 't',
    source_partition: e.partition,
    source_offset: e.offset
  }
  return { line: encodeCopyRow(EVENT_COLUMNS.map((c) => v[c] ?? null)), origin: { topic: e.topic ?? 't', partition: e.partition, offset: e.offset } }
}

/** A fold line's columns by name, unescaped enough for these tests (no tabs or backslashes in values). */
function parse (l: string): Record<string, string> {
  const cols = FOLD_COLUMNS.split(', ')
  const vals = l.replace(/\n$/, '').split('\t')
  return Object.fromEntries(cols.map((c, i) => [c, vals[i] as string]))
}

test('one fold line per entity: the reset, the payloads after it, the tombstone, the last and first event', async (t) => {
  const lines = batchFoldLines([
    line({ type: 'TASK_UPDATED', entity: 'Task', entityId: 'a', payload: '{"x":1}', partition: 1, offset: 7 }),
    line({ type: 'TASK_CREATED', entity: 'Task', entityId: 'a', payload: '{"c":1}', partition: 0, offset: 9 }),
    line({ type: 'NOTE', entity: null, entityId: null, payload: '{}', partition: 0, offset: 10 }),
    line({ type: 'TASK_DELETED', entity: 'Task', entityId: 'b', payload: '{"ignored":1}', partition: 2, offset: 1 }),
    line({ type: 'TASK_UPDATED', entity: 'Task', entityId: 'a', payload: '{"y":2.50}', partition: 1, offset: 8 }),
    line({ type: 'task_deleted', entity: 'Task', entityId: 'a', payload: '{}', partition: 1, offset: 9 })
  ])
  t.ok(lines !== null)
  const byId = new Map((lines ?? []).map((l) => { const r = parse(l); return [r.entity_id, r] }))
  t.equal(byId.size, 2, 'the event without an entity is not projected')
  t.same(byId.get('a'), {
    entity: 'Task',
    entity_id: 'a',
    reset: 't',
    payloads: '[{"c":1},{"x":1},{"y":2.50}]',
    deleted: 't',
    version: '9',
    updated_at: '2025-05-01T00:00:00Z',
    last_event_id: '1/9',
    source_topic: 't',
    source_partition: '1',
    source_offset: '9',
    first_partition: '0',
    first_offset: '9'
  }, 'in fold order (partition, offset): the create first, payload texts as stored')
  t.same([byId.get('b')?.reset, byId.get('b')?.payloads, byId.get('b')?.deleted], ['f', '[]', 't'], 'a delete alone merges nothing')
})

test('a batch of several topics or with a non-ASCII type is left to PostgreSQL', async (t) => {
  t.equal(batchFoldLines([
    line({ type: 'A_UPDATED', entity: 'T', entityId: 'a', payload: '{}', partition: 0, offset: 1 }),
    line({ type: 'A_UPDATED', entity: 'T', entityId: 'b', payload: '{}', partition: 0, offset: 1, topic: 'u' })
  ]), null)
  t.equal(batchFoldLines([line({ type: 'ÉTAT_CREATED', entity: 'T', entityId: 'a', payload: '{}', partition: 0, offset: 1 })]), null)
  t.same(batchFoldLines([]), [])
})

test('escaped texts pass through as COPY text', async (t) => {
  const [l] = batchFoldLines([line({ type: 'A_UPDATED', entity: 'T\tx', entityId: 'back\\slash', payload: '{"s":"a\\nb"}', partition: 0, offset: 1 })]) ?? []
  t.equal(l?.split('\t').slice(0, 4).join('\t'), 'T\\tx\tback\\\\slash\tf\t[{"s":"a\\\\nb"}]')
})

// The algebra: applying a fold line (reset, merge of the payloads' changes, tombstone) to any
// state gives the per-event fold of the same events from that state.
test('property: a fold line applied to any base equals the per-event fold', async (t) => {
  const types = fc.constantFrom('X_CREATED', 'X_DELETED', 'X_UPDATED', 'x_created', 'Y')
  const obj = fc.dictionary(fc.constantFrom('a', 'b', 'changes', 'user', 'entity'), fc.oneof(fc.integer(), fc.constant('s'), fc.dictionary(fc.constantFrom('a', 'c'), fc.integer(), { maxKeys: 2 })), { maxKeys: 4 })
  const events = fc.array(fc.record({ type: types, payload: obj, partition: fc.nat({ max: 2 }) }), { minLength: 1, maxLength: 12 })
  const base = fc.record({ state: fc.dictionary(fc.constantFrom('a', 'b', 'z'), fc.integer(), { maxKeys: 3 }), deleted: fc.boolean(), events: fc.constant(0) })
  fc.assert(fc.property(events, base, (evs, b) => {
    const offsets = [0, 0, 0]
    const placed = evs.map((e) => {
      const offset = offsets[e.partition] ?? 0
      offsets[e.partition] = offset + 1
      return { ...e, offset }
    })
    const lines = batchFoldLines(placed.map((e) => line({ type: e.type, entity: 'T', entityId: 'a', payload: JSON.stringify(e.payload), partition: e.partition, offset: e.offset })))
    const r = parse((lines ?? [])[0] as string)
    let state: JsonObject = r.reset === 't' ? {} : b.state
    for (const p of JSON.parse(r.payloads ?? '') as unknown[]) state = { ...state, ...eventChanges(p) }
    const deleted = r.deleted === '\\N' ? b.deleted : r.deleted === 't'
    const want = foldEvents(placed.map((e) => ({ eventType: e.type, payload: e.payload, partition: e.partition, offset: e.offset })), b)
    return isJsonObject(state) && JSON.stringify(state) === JSON.stringify(want.state) && deleted === want.deleted
  }), { numRuns: 2000 })
  t.pass('2,000 generated event lists')
})

import fc from 'fast-check'
import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { CONTENT_COLUMNS, EVENT_COLUMNS, escapeCopyText } from '../../../src/sinks/timescale/copy-encoder.ts'
import { batchDuplicate, batchRow, distinctSortedIdLines, firstCopies, ID_COLUMNS, sameContent, sortedIdLines } from '../../../src/sinks/timescale/event-ids.ts'
import type { BatchRow } from '../../../src/sinks/timescale/event-ids.ts'

function row (id: string, offset: number): BatchRow {
  const origin: KafkaMessage = { topic: 't', partition: 0, offset, key: null, value: null, timestamp: 0, headers: undefined, size: 0 }
  const values = EVENT_COLUMNS.map((c) => c === '"timestamp"' ? '2025-02-25T10:45:00Z' : c === 'event_id' ? escapeCopyText(id) : c === 'source_topic' ? 't' : c === 'source_partition' ? '0' : c === 'source_offset' ? String(offset) : 'x')
  return batchRow(values.join('\t') + '\n', id, origin)
}

test('an id line gives ID_COLUMNS in order', async (t) => {
  const r = row('ev\t1', 4)
  t.equal(ID_COLUMNS.split(', ')[0], 'event_id')
  t.same(r.idLine.slice(0, -1).split('\t'), ['ev\\t1', '2025-02-25T10:45:00Z', 't', '0', '4'], 'the id, the time, the origin')
  t.equal(r.idLine.at(-1), '\n')
})

const CONTENT = ['event_type', 'entity', 'entity_id', 'version', 'user_name', 'workspace', 'event_data', 'metadata', 'correlation_id', 'causation_id', 'extra']

function lineOf (id: string, time: string, offset: number, content: readonly string[]): string {
  const of = (c: string): string => c === '"timestamp"' ? time : c === 'event_id' ? escapeCopyText(id) : c === 'source_topic' ? 't' : c === 'source_partition' ? '3' : c === 'source_offset' ? String(offset) : content[CONTENT.indexOf(c)] as string
  return EVENT_COLUMNS.map(of).join('\t') + '\n'
}

test('two copies of an id have the same content when every column but the time, the id and the origin is the same text', async (t) => {
  t.same(CONTENT_COLUMNS, CONTENT, 'the content columns, as the duplicates query compares them')
  t.same([...EVENT_COLUMNS].sort(), [...CONTENT, '"timestamp"', 'event_id', 'source_topic', 'source_partition', 'source_offset'].sort(), 'every column is the content or what identifies the event')
  const text = fc.string({ unit: fc.constantFrom('a', 'b', '\\t', '\\\\', 'é', '\u{1F600}', '{', '"'), maxLength: 4 })
  const content = fc.array(text, { minLength: CONTENT.length, maxLength: CONTENT.length })
  fc.assert(fc.property(content, content, fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), fc.boolean(), (a, b, id1, id2, restamp) => {
    const first = lineOf(id1, '2025-02-25T10:45:00Z', 9, a)
    const second = lineOf(id2, restamp ? '2025-02-25T10:45:01.5Z' : '2025-02-25T10:45:00Z', 12345, b)
    const equal = a.every((x, i) => x === b[i])
    return sameContent(first, second) === equal && sameContent(first, first)
  }), { numRuns: 1000 })
  // random pairs are rarely equal: each content against itself under another id, time and origin
  fc.assert(fc.property(content, fc.string({ maxLength: 5 }), (a, id) => sameContent(lineOf('x', '2025-02-25T10:45:00Z', 1, a), lineOf(id, '2026-01-01T00:00:00Z', 77, a))))

  const origin = (offset: number): KafkaMessage => ({ topic: 't', partition: 3, offset, key: null, value: null, timestamp: 0, headers: undefined, size: 0 })
  const copy = (time: string, offset: number, content: readonly string[]): BatchRow => batchRow(lineOf('e1', time, offset, content), 'e1', origin(offset))
  const base = copy('2025-02-25T10:45:00Z', 1, CONTENT)
  t.equal(batchDuplicate(copy('2025-02-25T10:45:00Z', 2, CONTENT), base).kind, 'identical')
  t.equal(batchDuplicate(copy('2025-02-25T10:45:09Z', 3, CONTENT), base).kind, 'restamped')
  t.equal(batchDuplicate(copy('2025-02-25T10:45:00Z', 4, CONTENT.map((c) => (c === 'event_data' ? '{"a":2}' : c))), base).kind, 'differing')
})

test('id lines sort in one order of the ids, whatever the rest of the line and the order given', async (t) => {
  // ids with shared prefixes, control characters below the tab and escaped characters
  const id = fc.string({ unit: fc.constantFrom('a', 'b', '\u0001', '\t', '\\', 'é', '\u{1F600}'), minLength: 1, maxLength: 5 })
  fc.assert(fc.property(fc.uniqueArray(id, { minLength: 2, maxLength: 30 }), fc.integer({ min: 0, max: 1000 }), (ids, seed) => {
    const order = (lines: string[]): string[] => lines.map((l) => l.slice(0, l.indexOf('\t')))
    const a = order(sortedIdLines(ids.map((x, i) => row(x, i))))
    // other offsets and another order: the same order of ids
    const shuffled = ids.map((x, i) => row(x, seed + i * 7)).sort((p, q) => ((p.origin.offset * 31) % 17) - ((q.origin.offset * 31) % 17))
    const b = order(sortedIdLines(shuffled))
    if (JSON.stringify(a) !== JSON.stringify(b)) return false
    // a total order: each pair compares the same way wherever it sits
    return a.every((x, i) => i === 0 || (a[i - 1] as string) + '\t' < x + '\t')
  }), { numRuns: 300 })
  t.pass('300 id sets sorted the same way')
})

test('the id lines of several buffers: sortedIdLines\' order when every id is distinct, null when any id repeats', async (t) => {
  // ids that are prefixes of each other, with escaped characters: a repeated id must be found
  // whatever else its copies' lines hold (another offset, another time)
  const id = fc.string({ unit: fc.constantFrom('a', 'b', '\u0001', '\t', '\\', 'é'), minLength: 1, maxLength: 4 })
  let repeated = 0
  fc.assert(fc.property(fc.array(fc.array(id, { maxLength: 12 }), { maxLength: 4 }), (lists) => {
    let offset = 0
    const buffers = lists.map((ids) => ids.map((x) => row(x, offset++)))
    const all = buffers.flat()
    const got = distinctSortedIdLines(buffers.map((b) => b.map((r) => r.idLine)))
    const dup = firstCopies(all).later.length > 0
    if (dup) repeated++
    return dup ? got === null : JSON.stringify(got) === JSON.stringify(sortedIdLines(all))
  }), { numRuns: 500 })
  t.ok(repeated >= 50, `${repeated} of 500 runs had a repeated id`)
  t.same(distinctSortedIdLines([]), [], 'no buffers')
})

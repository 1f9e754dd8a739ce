import fc from 'fast-check'
import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { RELEASE_MIN_BYTES } from '../../../src/pipeline/release.ts'
import { COPY_MAX_BYTES, OriginStore } from '../../../src/sinks/timescale/origin-store.ts'

const bytes = fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { nil: null })
const message = fc.record({
  other: fc.nat(9), // 0: another partition (kept as it is)
  offset: fc.nat(),
  key: bytes,
  value: bytes,
  timestamp: fc.integer({ min: -1, max: 2 ** 42 }),
  headers: fc.option(fc.constant({ 'sluice-redrive-of': Buffer.from('t/0/1') }), { nil: undefined })
}).map(({ other, ...m }): KafkaMessage => ({
  topic: 'events', partition: other === 0 ? 7 : 3, size: (m.key?.length ?? 0) + (m.value?.length ?? 0) + (other === 1 ? 5 : 0), ...m
}))

test('a message comes back as it was added, its bytes copied', async (t) => {
  fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 50 }), (messages) => {
    const store = new OriginStore()
    for (const m of messages) store.add(m)
    // the originals change afterwards (a source reusing its buffers): the store does not
    const copies = messages.map((m) => ({ ...m, key: m.key === null ? null : Buffer.from(m.key), value: m.value === null ? null : Buffer.from(m.value) }))
    for (const m of messages) { m.key?.fill(0xee); m.value?.fill(0xee) }
    return store.count === messages.length && copies.every((m, i) => {
      const back = store.message(i)
      const kept = m.headers !== undefined || m.partition !== messages[0]?.partition
      const same = (a: Buffer | null, b: Buffer | null): boolean => a === null ? b === null : b !== null && (kept || a.equals(b))
      return back.topic === m.topic && back.partition === m.partition && back.offset === m.offset && back.timestamp === m.timestamp &&
        back.size === m.size && same(m.key, back.key) && same(m.value, back.value) && (back.headers === undefined) === (m.headers === undefined) &&
        store.offset(i) === m.offset && store.topicOf(i) === m.topic && store.partitionOf(i) === m.partition
    })
  }), { numRuns: 300 })
  t.pass('300 message sets')
})

test('a large value (one release.ts frees after its batch) is not copied: the message is kept as it is', async (t) => {
  t.equal(COPY_MAX_BYTES, RELEASE_MIN_BYTES, 'the same bound as release.ts')
  const store = new OriginStore()
  const large: KafkaMessage = { topic: 't', partition: 0, offset: 1, key: null, value: Buffer.alloc(RELEASE_MIN_BYTES, 1), timestamp: 0, headers: undefined, size: RELEASE_MIN_BYTES }
  const small: KafkaMessage = { ...large, offset: 2, value: Buffer.alloc(RELEASE_MIN_BYTES - 1, 2), size: RELEASE_MIN_BYTES - 1 }
  store.add(large)
  store.add(small)
  t.equal(store.message(0), large, 'the large one: the message itself')
  t.not(store.message(1).value, small.value, 'the smaller one: a copy')
  t.ok(store.message(1).value?.equals(small.value as Buffer))
})

test('an empty value is an empty Buffer, not null', async (t) => {
  const store = new OriginStore()
  store.add({ topic: 't', partition: 0, offset: 1, key: Buffer.alloc(0), value: Buffer.alloc(0), timestamp: 0, headers: undefined, size: 0 })
  t.same([store.message(0).key?.length, store.message(0).value?.length], [0, 0])
})

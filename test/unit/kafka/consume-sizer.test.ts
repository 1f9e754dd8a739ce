import { test } from 'tap'
import { ConsumeSizer } from '../../../src/kafka/consume-sizer.ts'

const KiB = 1024

test('idle: at most 16 messages, the full timeout; busy: a count from the bytes, 1 ms per message', async (t) => {
  const s = new ConsumeSizer({ fetchBatch: 2000, fetchBatchBytes: 4096 * KiB, idleTimeoutMs: 100 })
  t.same([s.count, s.timeoutMs], [16, 100], 'before anything came')
  s.observe(new Array(50).fill(500))
  t.same([s.count, s.timeoutMs], [2000, 1], '500 B messages: fetchBatch')
  s.observe([])
  t.same([s.count, s.timeoutMs], [16, 100], 'a call that returned nothing: idle again')
  s.observe([700 * KiB])
  s.observe([])
  t.same([s.count, s.timeoutMs], [5, 100], 'idle after large messages: fewer still')
})

test('larger messages count at once; the count comes back up with the average', async (t) => {
  const s = new ConsumeSizer({ fetchBatch: 2000, fetchBatchBytes: 4096 * KiB, idleTimeoutMs: 100 })
  s.observe(new Array(100).fill(500))
  s.observe([500, 500, 700 * KiB])
  t.equal(s.count, 5, 'one 700 KB message among small ones: 4 MiB / 700 KiB')
  const counts: number[] = []
  for (let i = 0; i < 30; i++) {
    s.observe(new Array(10).fill(500))
    counts.push(s.count)
  }
  t.ok(counts[0] as number < 2000, `right after, still cautious (${counts[0]})`)
  t.equal(counts.at(-1), 2000, 'small messages again: back to fetchBatch')
  t.same(counts, [...counts].sort((a, b) => a - b), 'growing back steadily')
})

test('never below one message', async (t) => {
  const s = new ConsumeSizer({ fetchBatch: 10, fetchBatchBytes: 64 * KiB, idleTimeoutMs: 50 })
  s.observe([8 * 1024 * KiB])
  t.equal(s.count, 1)
})

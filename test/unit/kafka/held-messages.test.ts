import type { Message } from 'node-rdkafka'
import { test } from 'tap'
import { HeldMessages } from '../../../src/kafka/held-messages.ts'

const msg = (topic: string, partition: number, offset: number): Message => ({ topic, partition, offset, value: Buffer.from(`${topic}:${partition}@${offset}`), size: 0, key: null })
const ids = (ms: ReadonlyArray<{ topic: string, partition: number, offset: number }>): string[] => ms.map((m) => `${m.topic}:${m.partition}@${m.offset}`)

test('paused partitions are held and come first once resumed; stale ones are dropped; runs of one partition in any order', async (t) => {
  const held = new HeldMessages()
  const live = new Map<string, unknown>([['a:0', 1], ['a:1', 1], ['b:0', 1]])
  const paused = new Set(['a:1'])
  const isPaused = (key: string): boolean => paused.has(key)
  // runs: a:0, a:1 (paused), c:0 (not live), a:0 again, b:0, a:1 again (paused)
  const first = held.sort([msg('a', 0, 1), msg('a', 0, 2), msg('a', 1, 7), msg('c', 0, 3), msg('a', 0, 3), msg('b', 0, 5), msg('a', 1, 8)], live, isPaused)
  t.same(ids(first), ['a:0@1', 'a:0@2', 'a:0@3', 'b:0@5'])
  t.equal(first[0]?.value?.toString(), 'a:0@1', 'the value handed over as it is')
  paused.delete('a:1')
  const second = held.sort([msg('a', 1, 9), msg('a', 0, 4)], live, isPaused)
  t.same(ids(second), ['a:1@7', 'a:1@8', 'a:1@9', 'a:0@4'], 'what was held first, in offset order, then the new ones')
  t.same(held.sort([], live, isPaused), [], 'nothing held twice')
  // held, then revoked (not live) or dropped (a seek): never delivered
  paused.add('b:0')
  held.sort([msg('b', 0, 6), msg('a', 1, 10)], live, isPaused)
  live.delete('b:0')
  paused.delete('b:0')
  t.same(ids(held.sort([], live, isPaused)), [])
  paused.add('a:0')
  held.sort([msg('a', 0, 5)], live, isPaused)
  held.drop('a:0')
  paused.delete('a:0')
  t.same(ids(held.sort([msg('a', 0, 9)], live, isPaused)), ['a:0@9'], 'a dropped partition\'s held messages are gone')
})

import { test } from 'tap'
import { BulkString } from '../../../src/model/bulk-string.ts'
import { PartitionPending } from '../../../src/pipeline/partition-pending.ts'
import { RELEASE_MIN_BYTES, release, releasable } from '../../../src/pipeline/release.ts'
import type { KafkaMessage } from '../../../src/kafka/types.ts'

const message = (value: Buffer | null, offset = 0): KafkaMessage => ({ topic: 't', partition: 0, offset, key: null, value, timestamp: 0, headers: undefined, size: value?.length ?? 0 })

test('only a large value alone on its memory is releasable', async (t) => {
  const own = Buffer.allocUnsafeSlow(RELEASE_MIN_BYTES)
  t.ok(releasable(own), 'its own ArrayBuffer, at the threshold')
  t.notOk(releasable(Buffer.allocUnsafeSlow(RELEASE_MIN_BYTES - 1)), 'smaller')
  t.notOk(releasable(Buffer.allocUnsafeSlow(RELEASE_MIN_BYTES + 10).subarray(10)), 'a view of a larger buffer')
  t.notOk(releasable(Buffer.from('pooled')), 'a slice of Node\'s pool')
  t.notOk(releasable(null))
})

test('a released value is freed: empty, and a BulkString over it refuses to be read', async (t) => {
  const v = Buffer.alloc(RELEASE_MIN_BYTES * 2, 0x41)
  const bulk = new BulkString(v.subarray(10, 100))
  t.equal(bulk.toString(), 'A'.repeat(90))
  release(v)
  t.equal(v.length, 0, 'the Buffer is empty')
  t.equal(bulk.byteLength, 90, 'the BulkString still knows its length')
  t.throws(() => bulk.toString(), /read after its Kafka message was released/)
  release(v) // twice is harmless
  t.equal(v.length, 0)
})

test('a partition\'s pending work lists the values to free once durable', async (t) => {
  const p = new PartitionPending('t', 0)
  const big = Buffer.allocUnsafeSlow(RELEASE_MIN_BYTES)
  p.consumed(message(big, 1))
  p.consumed(message(Buffer.from('{"small":true}'), 2))
  p.consumed(message(null, 3))
  t.equal(p.large.length, 1)
  t.equal(p.large[0], big)
  t.equal(p.nextOffset, 4)
})

import { test } from 'tap'
import { FetchWaker } from '../../../src/kafka/fetch-waker.ts'
import type { OffsetsForTimes } from '../../../src/kafka/fetch-waker.ts'

type Toppars = Array<{ topic: string, partition: number, offset: number }>

/** node-rdkafka's offsetsForTimes as far as the waker sees it: calls recorded, answered by hand. */
class FakeConsumer implements OffsetsForTimes {
  readonly calls: Array<{ toppars: Toppars, timeout: number }> = []
  readonly #answers: Array<(err: unknown) => void> = []
  throws = false

  offsetsForTimes (toppars: Toppars, timeout: number, cb: (err: unknown) => void): void {
    if (this.throws) throw new Error('KafkaConsumer is not connected')
    this.calls.push({ toppars, timeout })
    this.#answers.push(cb)
  }

  get waiting (): number { return this.#answers.length }

  /** the broker answers the oldest request */
  answer (err: unknown = null): void {
    const cb = this.#answers.shift()
    if (cb === undefined) throw new Error('no request in flight')
    cb(err)
  }
}

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
const tp = (partition: number) => ({ topic: 't', partition })

test('asks for the latest offset of the resumed partitions, one request at a time; later resumes go in the next', async (t) => {
  const c = new FakeConsumer()
  const w = new FetchWaker(() => c, 750)
  w.wake([tp(0), tp(1)])
  t.same(c.calls, [{ toppars: [{ topic: 't', partition: 0, offset: -1 }, { topic: 't', partition: 1, offset: -1 }], timeout: 750 }], 'one request: offset -1 is "latest"')
  w.wake([tp(2)])
  w.wake([tp(2), tp(3)])
  t.equal(c.calls.length, 1, 'nothing more while the first is in flight')
  c.answer()
  await tick()
  t.same(c.calls[1]?.toppars.map((x) => x.partition), [2, 3], 'then one request for what was resumed meanwhile, each partition once')
  c.answer(new Error('Local: Timed out'))
  await tick()
  t.equal(c.calls.length, 2, 'nothing pending: no request after an answer (an error is an answer too)')
  w.wake([tp(4)])
  t.equal(c.calls.length, 3, 'idle again: the next resume asks at once')
  c.answer()
  await w.stop()
})

test('stop waits for the request in flight, drops what is pending, and wakes nothing afterwards', async (t) => {
  const c = new FakeConsumer()
  const w = new FetchWaker(() => c)
  w.wake([tp(0)])
  w.wake([tp(1)])
  let stopped = false
  const stopping = w.stop().then(() => { stopped = true })
  await tick()
  t.notOk(stopped, 'a disconnect must not start while a request holds the consumer')
  c.answer()
  await stopping
  t.equal(c.calls.length, 1, 'the pending partition was not asked for after the stop')
  w.wake([tp(2)])
  t.equal(c.waiting, 0, 'stopped: no more requests')
})

test('a consumer that is gone or refuses the call wakes nothing and breaks nothing', async (t) => {
  let consumer: FakeConsumer | null = null
  const w = new FetchWaker(() => consumer)
  w.wake([tp(0)])
  consumer = new FakeConsumer()
  t.equal(consumer.calls.length, 0, 'no consumer: nothing sent')
  consumer.throws = true
  w.wake([tp(1)])
  await tick()
  consumer.throws = false
  w.wake([tp(2)])
  t.same(consumer.calls.map((c) => c.toppars.map((x) => x.partition)), [[2]], 'after a refused call the next resume is asked for')
  consumer.answer()
  await w.stop()
})

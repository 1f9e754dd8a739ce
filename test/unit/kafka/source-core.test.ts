import { test } from 'tap'
import { SluiceError } from '../../../src/errors.ts'
import { parseBrokers, brokerList } from '../../../src/kafka/brokers.ts'
import { SourceCore } from '../../../src/kafka/source-core.ts'
import type { KafkaMessage, SourceHandlers } from '../../../src/kafka/types.ts'

function handlers (over: Partial<SourceHandlers> = {}): SourceHandlers & { errors: Error[], batches: KafkaMessage[][], revoked: number } {
  const h = {
    errors: [] as Error[],
    batches: [] as KafkaMessage[][],
    revoked: 0,
    onAssign: async () => [],
    onRevoke: async () => { h.revoked++ },
    onBatch: (m: KafkaMessage[]) => { h.batches.push(m) },
    onError: (e: Error) => { h.errors.push(e) },
    ...over
  }
  return h
}

const msg = (offset: number): KafkaMessage => ({ topic: 't', partition: 0, offset, key: null, value: null, timestamp: 0, headers: undefined, size: 0 })
const core = (): SourceCore => new SourceCore({
  kind: 'test',
  isFatal: (err) => (err as { fatal?: boolean }).fatal === true,
  detail: (err) => ` (code ${(err as { code?: number }).code ?? 'none'})`
})

test('wraps client errors by kind, with the detail; a SluiceError as it is', async (t) => {
  const c = core()
  const fatal = c.wrap(Object.assign(new Error('denied'), { fatal: true, code: 58 }), 'joining')
  t.match(fatal, { code: 'SLUICE_ERR_KAFKA_FATAL', message: 'joining: denied (code 58)' })
  t.equal(c.wrap(new Error('timeout'), 'fetching').code, 'SLUICE_ERR_KAFKA_TRANSIENT')
  t.equal(c.wrap(new Error('x'), 'commit', 'SLUICE_ERR_KAFKA_TRANSIENT').code, 'SLUICE_ERR_KAFKA_TRANSIENT')
  const own = new SluiceError('SLUICE_ERR_KAFKA_FATAL', 'own')
  t.equal(c.wrap(own, 'any'), own)
})

test('a failure is reported once, never while closing', async (t) => {
  const c = core()
  const h = handlers()
  c.started(h)
  c.fail(new Error('one'))
  c.fail(new Error('two'))
  t.equal(h.errors.length, 1)
  t.match(h.errors[0], { code: 'SLUICE_ERR_KAFKA_TRANSIENT', message: 'kafka source (test): one (code none)' })

  const d = core()
  const h2 = handlers()
  d.started(h2)
  d.closing = true
  d.fail(new Error('late'))
  t.equal(h2.errors.length, 0)
  t.throws(() => d.started(h2), { code: 'SLUICE_ERR_CONFIG' }, 'started twice')
})

test('delivery: empty batches are not handed over; a throwing handler is a failure', async (t) => {
  const c = core()
  let calls = 0
  const h = handlers({ onBatch: () => { calls++; throw new Error('handler broke') } })
  c.started(h)
  c.deliver([])
  t.equal(calls, 0)
  c.deliver([msg(1)])
  t.equal(calls, 1)
  t.equal(h.errors.length, 1)
})

test('pause set, readiness, revoke that fails is logged', async (t) => {
  const warned: unknown[] = []
  const c = new SourceCore({ kind: 'test', isFatal: () => false, logger: { debug () {}, info () {}, warn: (o: unknown) => { warned.push(o) }, error () {} } as never })
  c.started(handlers({ onRevoke: async () => { throw new Error('revoke broke') } }))
  c.pause([{ topic: 't', partition: 1 }])
  t.ok(c.isPaused('t:1'))
  c.resume([{ topic: 't', partition: 1 }])
  t.notOk(c.isPaused('t:1'))
  t.notOk(c.isReady())
  c.ready = true
  t.ok(c.isReady())
  c.closing = true
  t.notOk(c.isReady(), 'not ready while closing')
  await c.revoke([{ topic: 't', partition: 0 }])
  t.equal(warned.length, 1, 'the failed onRevoke is logged')
})

test('the chain runs steps in order; settle waits for steps queued meanwhile', async (t) => {
  const c = core()
  const order: number[] = []
  c.enqueue(async () => { await new Promise((resolve) => setTimeout(resolve, 20)); order.push(1) }).catch(() => {})
  c.enqueue(async () => {
    order.push(2)
    c.enqueue(async () => { order.push(3) }).catch(() => {})
  }).catch(() => {})
  await c.settle()
  t.same(order, [1, 2, 3])
})

test('one broker-list parser', async (t) => {
  t.same(parseBrokers(' a:1, b:2 ,,'), ['a:1', 'b:2'])
  t.same(parseBrokers(['a:1', ' b:2 ']), ['a:1', 'b:2'])
  t.equal(brokerList('a:1, b:2'), 'a:1,b:2')
})

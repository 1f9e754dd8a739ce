import { test } from 'tap'
import { engine, gate, messages, until } from './engine-fakes.ts'

test('a partition over its fair share is paused alone; the others keep flowing', async (t) => {
  // 6 partitions share 600 messages: 100 each; pressure from 300
  const { runner, source, sink, db } = engine({ inflight: { maxMessages: 600, maxBytes: 1 << 30, lowRatio: 0.5 }, batch: { maxRows: 50, maxBytes: 1 << 30, lingerMs: 1 } })
  await runner.start()
  await source.assign([0, 1, 2, 3, 4, 5])
  const g = gate()
  sink.gate = g.promise
  source.deliver(messages(0, 0, 299))
  t.same(source.calls, [], 'under the low mark nobody is paused')
  source.deliver(messages(0, 299, 300))
  t.same(source.calls, [['pause', ['t:0']]], 'the hot partition, over its share under pressure, is paused alone')
  source.deliver(messages(1, 0, 99))
  t.same(source.calls, [['pause', ['t:0']]], 'a partition under its share is still consumed')
  t.same([...source.paused], ['t:0'])
  sink.gate = null
  g.open()
  await until(() => db.offsets.get('t:0') === 300 && db.offsets.get('t:1') === 99, 'durable')
  t.same(source.calls.at(-1), ['resume', ['t:0']], 'resumed once its work was durable')
  t.equal(source.paused.size, 0)
  await runner.stop(1000)
})

test('the cap still pauses every partition', async (t) => {
  const { runner, source, sink, db } = engine({ inflight: { maxMessages: 100, maxBytes: 1 << 30, lowRatio: 0.5 }, batch: { maxRows: 50, maxBytes: 1 << 30, lingerMs: 1 } })
  await runner.start()
  await source.assign([0, 1])
  const g = gate()
  sink.gate = g.promise
  source.deliver([...messages(0, 0, 49), ...messages(1, 0, 49)])
  source.deliver([...messages(0, 49, 51), ...messages(1, 49, 51)])
  t.same(new Set(source.paused), new Set(['t:0', 't:1']), 'both paused at the cap')
  t.ok(runner.budget.over)
  const st = await runner.status()
  t.same(st.partitions.map((p) => p.pausedBy), [['backpressure'], ['backpressure']])
  sink.gate = null
  g.open()
  await until(() => db.offsets.get('t:0') === 51 && db.offsets.get('t:1') === 51, 'durable')
  t.equal(source.paused.size, 0, 'both resumed')
  await runner.stop(1000)
})

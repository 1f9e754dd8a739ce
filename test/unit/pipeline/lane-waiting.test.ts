import { test } from 'tap'
import { engine, gate, messages, message, until } from './engine-fakes.ts'

test('a partition waiting for its sink work (a state dump) does not hold up the other partitions of its lane', async (t) => {
  const { runner, source, sink, db, fatal } = engine({ batch: { maxRows: 7, maxBytes: 1 << 30, lingerMs: 1 }, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0, 1])
  const dump = gate()
  sink.hold = dump.promise
  // partition 0: 3 messages, then one that starts the work, then 3 more; partition 1 alongside
  source.deliver([...messages(0, 0, 3), message(0, 3, 'hold-3'), ...messages(0, 4, 7), ...messages(1, 0, 10)])
  await until(() => db.offsets.get('t:1') === 10, 'the other partition durable while the work runs')
  source.deliver([...messages(0, 7, 9), ...messages(1, 10, 30)])
  await until(() => db.offsets.get('t:1') === 30, 'and what arrives for it meanwhile')
  t.equal(db.offsets.get('t:0'), undefined, 'nothing of the waiting partition is durable yet')
  t.notOk(sink.writes.flat().some((r) => r.startsWith('v0-') || r.startsWith('hold')), 'nor written')
  t.ok(sink.writes.every((w) => w.length <= 7), 'the other partition\'s batches keep to the limits')
  dump.open()
  await until(() => db.offsets.get('t:0') === 9, 'the waiting partition durable once the work settled')
  t.same(db.records.filter((r) => !r.startsWith('v1-')), ['v0-0', 'v0-1', 'v0-2', 'hold-3', 'v0-4', 'v0-5', 'v0-6', 'v0-7', 'v0-8'], 'whole, in offset order')
  t.equal(runner.budget.messages, 0, 'the in-flight budget is empty again')
  t.equal(await runner.stop(1000), true)
  t.same(fatal, [])
})

test('shutdown waits for a partition\'s sink work, then writes it', async (t) => {
  const { runner, source, sink, db } = engine({ batch: { maxRows: 100, maxBytes: 1 << 30, lingerMs: 1 }, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0])
  const dump = gate()
  sink.hold = dump.promise
  source.deliver([message(0, 0, 'hold-0'), ...messages(0, 1, 4)])
  await until(() => runner.budget.messages === 4, 'taken in')
  const stopped = runner.stop(60_000)
  let done = false
  stopped.then(() => { done = true }, () => {})
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
  t.notOk(done, 'the drain waits for the work')
  dump.open()
  t.equal(await stopped, true, 'a clean stop')
  t.equal(db.offsets.get('t:0'), 4, 'everything durable')
})

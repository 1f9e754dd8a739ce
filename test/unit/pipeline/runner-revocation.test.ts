import { test } from 'tap'
import { engine, gate, messages, until } from './engine-fakes.ts'

test('a revoked partition\'s pending work is dropped, and its late messages ignored', async (t) => {
  const { runner, source, sink, db } = engine({ batch: { maxRows: 10, maxBytes: 1 << 30, lingerMs: 1 }, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0, 1])
  const g = gate()
  sink.gate = g.promise
  source.deliver([...messages(0, 0, 10), ...messages(1, 0, 5)])
  await until(() => sink.writes.length === 1, 'a batch of partition 0 is being written')
  source.deliver([...messages(0, 10, 25), ...messages(1, 5, 25)]) // queued behind it
  const revoked = source.revoke([1])
  sink.gate = null
  g.open()
  await revoked
  source.deliver(messages(1, 25, 30)) // a fetch that raced the revocation
  await until(() => db.offsets.get('t:0') === 25, 'partition 0 durable')
  await runner.stop(1000)
  t.same(db.records.filter((r) => r.startsWith('v0-')).length, 25, 'partition 0 in full')
  const p1 = db.records.filter((r) => r.startsWith('v1-'))
  t.ok(p1.length <= 5, `partition 1: at most the batch in flight at the revocation (${p1.length})`)
  t.ok((db.offsets.get('t:1') ?? 0) <= 5, 'partition 1\'s offset covers only what was written')
  t.equal(runner.budget.messages, 0, 'the dropped work left the budget')
})

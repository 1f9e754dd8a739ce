import { test } from 'tap'
import { engine, messages, until } from './engine-fakes.ts'

test('each partition is written in offset order and its next offset stored with its rows', async (t) => {
  const { runner, source, db, fatal } = engine({ batch: { maxRows: 7, maxBytes: 1 << 30, lingerMs: 1 } })
  await runner.start()
  t.same(await source.assign([0, 1]), [], 'nothing stored yet')
  // fetches interleave the partitions, as a source does
  for (let i = 0; i < 50; i += 10) source.deliver([...messages(0, i, i + 10), ...messages(1, i, i + 10)])
  await until(() => db.offsets.get('t:0') === 50 && db.offsets.get('t:1') === 50, 'both partitions durable')
  for (const p of [0, 1]) {
    const mine = db.records.filter((r) => r.startsWith(`v${p}-`))
    t.same(mine, messages(p, 0, 50).map((m) => String(m.value)), `partition ${p}: every message once, in offset order`)
  }
  const committed = source.commits.flat().filter((c) => c.partition === 0).map((c) => c.offset)
  t.same(committed, [...committed].sort((a, b) => a - b), 'the advisory Kafka commits move forward')
  t.equal(committed.at(-1), 50)
  t.equal(runner.budget.messages, 0, 'the in-flight budget is empty again')
  t.equal(await runner.stop(1000), true)
  t.same(fatal, [])
})

test('a restarted runner resumes from the stored offsets', async (t) => {
  const first = engine()
  await first.runner.start()
  await first.source.assign([0])
  first.source.deliver(messages(0, 0, 5))
  await first.runner.stop(1000)
  const second = engine({}, first.db) // the same database
  await second.runner.start()
  t.same(await second.source.assign([0]), [{ topic: 't', partition: 0, offset: 5 }], 'assigned at the stored next offset')
  await second.runner.stop(1000)
})

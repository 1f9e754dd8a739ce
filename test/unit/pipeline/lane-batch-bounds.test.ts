import { test } from 'tap'
import { engine, gate, messages, until } from './engine-fakes.ts'

test('batches stay within the batch limits whatever arrives during a slow write', async (t) => {
  const { runner, source, sink, db } = engine({ batch: { maxRows: 10, maxBytes: 1 << 30, lingerMs: 1 }, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0])
  const g = gate()
  sink.gate = g.promise
  source.deliver(messages(0, 0, 3))
  await until(() => sink.writes.length === 1, 'the first (lingered) batch is being written')
  // 95 messages arrive while that write waits
  for (let i = 3; i < 98; i += 19) source.deliver(messages(0, i, i + 19))
  sink.gate = null
  g.open()
  await until(() => db.offsets.get('t:0') === 98, 'everything durable')
  t.same(sink.writes.map((w) => w.length), [3, 10, 10, 10, 10, 10, 10, 10, 10, 10, 5], 'the backlog went in batches of at most 10')
  t.equal(db.records.length, 98)
  await runner.stop(1000)
})

test('bytes bound a batch too', async (t) => {
  const { runner, source, sink, db } = engine({ batch: { maxRows: 1000, maxBytes: 30, lingerMs: 1 }, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0])
  const g = gate()
  sink.gate = g.promise
  source.deliver(messages(0, 0, 1))
  await until(() => sink.writes.length === 1, 'first write')
  source.deliver(messages(0, 1, 21)) // values like "v0-12": 5 bytes each
  sink.gate = null
  g.open()
  await until(() => db.offsets.get('t:0') === 21, 'everything durable')
  // a batch is sealed by the message that reaches the limit
  const bytes = sink.writes.map((w) => w.reduce((n, r) => n + r.length, 0))
  t.ok(sink.writes.every((w, i) => (bytes[i] as number) - (w.at(-1) as string).length < 30), `no batch past 30 bytes before its last message (${bytes.join(', ')})`)
  t.ok(sink.writes.length >= 4, 'the backlog went in several batches')
  await runner.stop(1000)
})

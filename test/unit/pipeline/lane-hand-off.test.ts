import { test } from 'tap'
import { engine, message, until } from './engine-fakes.ts'

// Sink.handOff: the S3 snapshot sink's event-log rows go into the event log's own write of the
// batch, one write instead of two.
test('records a sink hands to another sink of the batch are written by that sink\'s one write', async (t) => {
  const { runner, source, sink, handing, db, fatal } = engine({ handing: true, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0, 1])
  source.deliver([message(0, 0, 'a'), message(0, 1, 'snap-1'), message(1, 0, 'b'), message(1, 1, 'snap-2')])
  await until(() => db.offsets.get('t:0') === 2 && db.offsets.get('t:1') === 2, 'the batch durable')
  t.equal(sink.writes.length, 1, 'one write of the receiving sink')
  t.same([...(sink.writes[0] ?? [])].sort(), ['a', 'b', 'log:snap-1', 'log:snap-2'], 'with its own records and the handed ones')
  t.equal(handing?.selfWrites, 0, 'the handing sink stored none itself')
  t.same([...db.records].sort(), ['a', 'b', 'log:snap-1', 'log:snap-2'], 'each stored once')

  // a batch without records of the receiving sink: nothing to join, the handing sink writes them
  source.deliver([message(0, 2, 'snap-3')])
  await until(() => db.offsets.get('t:0') === 3, 'the second batch durable')
  t.equal(sink.writes.length, 1, 'no write of the receiving sink')
  t.equal(handing?.selfWrites, 1, 'the handing sink stored its records itself')
  t.equal(db.records.filter((r) => r === 'log:snap-3').length, 1, 'once')
  t.same(fatal, [])
  await runner.stop(1000)
})

test('a batch tried again hands its records over again, and stores them once', async (t) => {
  const { runner, source, sink, handing, db, fatal } = engine({ handing: true, flushConcurrency: 1 })
  await runner.start()
  await source.assign([0])
  sink.failures = 1
  source.deliver([message(0, 0, 'a'), message(0, 1, 'snap-1')])
  await until(() => db.offsets.get('t:0') === 2, 'durable after the retry')
  t.same(sink.writes.map((w) => [...w].sort()), [['a', 'log:snap-1'], ['a', 'log:snap-1']], 'the failed write and the retried one both carried the handed record')
  t.equal(handing?.selfWrites, 0)
  t.same([...db.records].sort(), ['a', 'log:snap-1'], 'stored once')
  t.same(fatal, [])
  await runner.stop(1000)
})

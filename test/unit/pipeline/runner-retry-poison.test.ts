import { test } from 'tap'
import { metricSum } from '../../helpers/prom.ts'
import type { DlqEntry } from '../../../src/sinks/dlq/dlq-entry.ts'
import type { DlqPublisher } from '../../../src/sinks/dlq/dlq-topic.ts'
import { engine, FakeDb, message, messages, until } from './engine-fakes.ts'

test('a transient failure is retried while the partition waits; nothing is written twice', async (t) => {
  const { runner, source, sink, db, metrics, fatal } = engine()
  await runner.start()
  await source.assign([0])
  sink.failures = 2
  db.failCommits = 1
  source.deliver(messages(0, 0, 20))
  await until(() => db.offsets.get('t:0') === 20, 'durable after the retries')
  t.same(db.records, messages(0, 0, 20).map((m) => String(m.value)), 'stored once, in order')
  t.equal(db.commits, 1, 'one transaction committed')
  t.equal(sink.writes.length, 4, 'two failed writes, one failed commit, one success')
  t.equal(metricSum(await metrics.registry.metrics(), 'sluice_retries_total', { operation: 'flush' }), 3)
  t.same(fatal, [])
  await runner.stop(1000)
})

test('the stages\' dead letters are produced before the batch\'s transaction opens, the rows the database rejects inside it', async (t) => {
  const db = new FakeDb()
  const produced: Array<{ codes: string[], openTransactions: number }> = []
  const dlq = { publish: async (entries: readonly DlqEntry[]) => { produced.push({ codes: entries.map((e) => e.code), openTransactions: db.open }) } }
  const { runner, source, fatal } = engine({ dlq: dlq as unknown as DlqPublisher }, db)
  await runner.start()
  await source.assign([0])
  source.deliver([message(0, 0), message(0, 1, 'bad json'), message(0, 2, 'reject me'), message(0, 3)])
  await until(() => db.offsets.get('t:0') === 4, 'the offset passes the poison')
  t.same(produced, [
    { codes: ['SLUICE_ERR_DECODE'], openTransactions: 0 },
    { codes: ['SLUICE_ERR_ROW_REJECTED'], openTransactions: 1 }
  ], 'no connection waits in a transaction for the stage\'s dead letter; the rejection is known only inside it')
  t.same(db.dlq.map((d) => d.code).sort(), ['SLUICE_ERR_DECODE', 'SLUICE_ERR_ROW_REJECTED'], 'both stored with the batch')
  t.same(fatal, [])
  await runner.stop(1000)
})

test('poison from a stage or the sink is dead-lettered and the partition moves on', async (t) => {
  const { runner, source, db, metrics, fatal } = engine()
  await runner.start()
  await source.assign([0])
  source.deliver([message(0, 0), message(0, 1, 'bad json'), message(0, 2), message(0, 3, 'reject me'), message(0, 4)])
  await until(() => db.offsets.get('t:0') === 5, 'the offset passes the poison')
  t.same(db.records, ['v0-0', 'v0-2', 'v0-4'])
  t.same(db.dlq.sort((a, b) => a.offset - b.offset), [
    { code: 'SLUICE_ERR_DECODE', partition: 0, offset: 1 },
    { code: 'SLUICE_ERR_ROW_REJECTED', partition: 0, offset: 3 }
  ], 'each poison message once, with its code, in the same transaction')
  t.equal(metricSum(await metrics.registry.metrics(), 'sluice_dead_lettered_total'), 2)
  t.same(fatal, [])
  await runner.stop(1000)
})

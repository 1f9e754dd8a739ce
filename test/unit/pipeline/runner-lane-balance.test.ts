import { test } from 'tap'
import { engine, gate, messages, until } from './engine-fakes.ts'

test('partitions are spread evenly over the lanes, whatever the topic name', async (t) => {
  const { runner, source, sink, db } = engine({ flushConcurrency: 3, batch: { maxRows: 5, maxBytes: 1 << 30, lingerMs: 1 } })
  await runner.start()
  await source.assign([0, 1, 2, 3, 4, 5])
  const g = gate()
  sink.gate = g.promise
  source.deliver([0, 1, 2, 3, 4, 5].flatMap((p) => messages(p, 0, 5)))
  await until(() => sink.inFlight === 3, 'three lanes writing at once')
  const partitionsOf = (w: string[]): Set<string> => new Set(w.map((r) => r.split('-')[0] as string))
  const sets = sink.writes.map(partitionsOf)
  t.same(sets.map((s) => s.size), [1, 1, 1], 'each batch in flight holds one partition (each lane has its own)')
  t.equal(new Set(sets.flatMap((s) => [...s])).size, 3, 'three different partitions')
  sink.gate = null
  g.open()
  await until(() => [0, 1, 2, 3, 4, 5].every((p) => db.offsets.get(`t:${p}`) === 5), 'all durable')
  t.equal(sink.maxInFlight, 3, 'never more than the lanes')
  t.equal(sink.writes.length, 6, 'two partitions per lane, one batch each')
  await runner.stop(1000)
})

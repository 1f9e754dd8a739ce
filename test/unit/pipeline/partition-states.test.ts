import { test } from 'tap'
import type { Source, TopicPartition } from '../../../src/kafka/types.ts'
import { SluiceMetrics } from '../../../src/metrics/metrics.ts'
import { InflightBudget } from '../../../src/pipeline/inflight-budget.ts'
import { PartitionStates } from '../../../src/pipeline/partition-states.ts'

/** Records what the pause logic asks of a source (the edge), nothing else. */
function recordingSource () {
  const calls: Array<[string, string[]]> = []
  const fmt = (tps: TopicPartition[]) => tps.map((p) => `${p.topic}:${p.partition}`)
  const source = {
    kind: 'rdkafka',
    start: async () => {},
    pause: (tps: TopicPartition[]) => { calls.push(['pause', fmt(tps)]) },
    resume: (tps: TopicPartition[]) => { calls.push(['resume', fmt(tps)]) },
    seek: async () => {},
    commit: async () => {},
    assignments: () => [],
    isReady: () => true,
    highWatermarks: async () => new Map([['t:0', 100], ['t:1', 50]]),
    close: async () => {}
  } satisfies Source
  return { source, calls }
}

const tps = [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]

test('backpressure pauses every owned partition and resumes them', async (t) => {
  const { source, calls } = recordingSource()
  const s = new PartitionStates(source, new SluiceMetrics())
  s.assigned(tps, [])
  s.setBackpressure(true)
  s.setBackpressure(true)
  s.setBackpressure(false)
  t.same(calls, [['pause', ['t:0', 't:1']], ['resume', ['t:0', 't:1']]])
})

test('an admin pause outlives backpressure and a revoke/assign of the same partition', async (t) => {
  const { source, calls } = recordingSource()
  const s = new PartitionStates(source, new SluiceMetrics())
  s.assigned(tps, [])
  s.adminPause([{ topic: 't', partition: 1 }])
  s.setBackpressure(true)
  s.setBackpressure(false)
  t.same(calls, [['pause', ['t:1']], ['pause', ['t:0']], ['resume', ['t:0']]])
  calls.length = 0
  s.revoked(tps)
  s.assigned(tps, [{ topic: 't', partition: 1, offset: 7 }])
  await new Promise((resolve) => setImmediate(resolve))
  t.same(calls, [['pause', ['t:1']]], 'paused again after the rebalance')
  s.adminResume()
  t.same(calls, [['pause', ['t:1']], ['resume', ['t:1']]])
})

test('status reports stored offsets, lag and why a partition is paused', async (t) => {
  const { source } = recordingSource()
  const s = new PartitionStates(source, new SluiceMetrics())
  s.assigned(tps, [{ topic: 't', partition: 0, offset: 40 }])
  s.stored([{ topic: 't', partition: 0, offset: 60 }, { topic: 't', partition: 0, offset: 55 }])
  s.adminPause([{ topic: 't', partition: 0 }])
  const budget = new InflightBudget({ maxMessages: 10, maxBytes: 10, lowRatio: 0.5, onHigh () {}, onLow () {} })
  const st = await s.status(budget)
  t.equal(st.partitions.length, 2)
  t.match(st.partitions[0], { topic: 't', partition: 0, storedOffset: 60, highWatermark: 100, lag: 40, paused: true, pausedBy: ['admin'] })
  t.match(st.partitions[1], { topic: 't', partition: 1, storedOffset: null, lag: null, paused: false, pausedBy: [] })
})

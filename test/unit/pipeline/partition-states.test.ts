import { test } from 'tap'
import type { Source, TopicPartition } from '../../../src/kafka/types.ts'
import { SluiceMetrics } from '../../../src/metrics/metrics.ts'
import { InflightBudget } from '../../../src/pipeline/inflight-budget.ts'
import { PartitionStates } from '../../../src/pipeline/partition-states.ts'
import type { PartitionState } from '../../../src/pipeline/partition-states.ts'

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

/** Partition states over a budget of 10 messages / 1000 bytes, low mark at half. */
function states (source: Source) {
  const ref: { s?: PartitionStates } = {}
  const budget = new InflightBudget({ maxMessages: 10, maxBytes: 1000, lowRatio: 0.5, onChange: () => ref.s?.apply() })
  const s = ref.s = new PartitionStates(source, new SluiceMetrics(), budget)
  return { s, budget }
}

test('a full budget pauses every owned partition and resumes them', async (t) => {
  const { source, calls } = recordingSource()
  const { s, budget } = states(source)
  s.assigned(tps, [])
  const [p0, p1] = [s.get('t', 0), s.get('t', 1)] as [PartitionState, PartitionState]
  budget.add(p0, 4, 0)
  budget.add(p1, 4, 0)
  t.same(calls, [], 'under the cap and both under their share')
  budget.add(p0, 2, 0)
  t.same(calls, [['pause', ['t:0', 't:1']]], 'at the cap both are paused, though p1 is under its share')
  t.same((await s.status()).partitions.map((p) => p.pausedBy), [['backpressure'], ['backpressure']])
  budget.release(p0, 6, 0)
  t.same(calls, [['pause', ['t:0', 't:1']], ['resume', ['t:0', 't:1']]], 'back under the low mark: both resume')
})

test('under pressure only the partition over its fair share is paused', async (t) => {
  const { source, calls } = recordingSource()
  const { s, budget } = states(source)
  s.assigned(tps, [])
  const [p0, p1] = [s.get('t', 0), s.get('t', 1)] as [PartitionState, PartitionState]
  budget.add(p0, 4, 0)
  t.same(calls, [], 'under the low mark nobody is paused, whatever its share')
  budget.add(p0, 1, 0)
  t.same(calls, [['pause', ['t:0']]], 'p0 holds its share (5 of 10) at the low mark: paused alone')
  const st = await s.status()
  t.same(st.partitions.map((p) => p.pausedBy), [['fair-share'], []])
  budget.add(p1, 4, 0)
  t.same(calls, [['pause', ['t:0']]], 'p1 keeps being consumed under its share')
  budget.release(p0, 3, 0)
  t.same(calls, [['pause', ['t:0']], ['resume', ['t:0']]], 'p0 resumes once its own work is back under half its share')
  budget.add(p0, 100, 0)
  t.same(calls.at(-1), ['pause', ['t:0', 't:1']], 'the cap still pauses everybody')
  t.ok(budget.over)
})

test('an admin pause outlives backpressure and a revoke/assign of the same partition', async (t) => {
  const { source, calls } = recordingSource()
  const { s, budget } = states(source)
  s.assigned(tps, [])
  s.adminPause([{ topic: 't', partition: 1 }])
  const p0 = s.get('t', 0) as PartitionState
  budget.add(p0, 10, 0)
  budget.release(p0, 10, 0)
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
  const { s } = states(source)
  s.assigned(tps, [{ topic: 't', partition: 0, offset: 40 }])
  s.stored([{ topic: 't', partition: 0, offset: 60 }, { topic: 't', partition: 0, offset: 55 }])
  s.adminPause([{ topic: 't', partition: 0 }])
  const st = await s.status()
  t.equal(st.partitions.length, 2)
  t.match(st.partitions[0], { topic: 't', partition: 0, storedOffset: 60, highWatermark: 100, lag: 40, paused: true, pausedBy: ['admin'] })
  t.match(st.partitions[1], { topic: 't', partition: 1, storedOffset: null, lag: null, paused: false, pausedBy: [] })
})

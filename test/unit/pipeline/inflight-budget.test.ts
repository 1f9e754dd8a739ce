import { test } from 'tap'
import { InflightBudget } from '../../../src/pipeline/inflight-budget.ts'
import type { PartitionLoad } from '../../../src/pipeline/inflight-budget.ts'

const load = (key: string): PartitionLoad => ({ key, inflightMessages: 0, inflightBytes: 0, overShare: false })

test('crossing the cap is one change, dropping below the low mark another', async (t) => {
  let changes = 0
  const b = new InflightBudget({ maxMessages: 100, maxBytes: 1000, lowRatio: 0.5, onChange: () => { changes++ } })
  b.setPartitions(2)
  const p = load('t:0')
  b.add(p, 49, 10)
  t.equal(changes, 0)
  b.add(p, 1, 10)
  t.equal(changes, 1, 'p holds its share (50 of 100) at the low mark: over its share')
  t.ok(p.overShare)
  t.notOk(b.over)
  b.add(p, 50, 10)
  t.equal(changes, 2, 'the cap')
  t.ok(b.over)
  b.add(p, 50, 10)
  t.equal(changes, 2, 'no second change while over')
  b.release(p, 90, 10)
  t.equal(changes, 2, '60 messages is above the low mark of 50')
  b.release(p, 10, 10)
  t.equal(changes, 3)
  t.notOk(b.over)
  t.ok(p.overShare, 'still over half its share')
  t.same([b.messages, p.inflightMessages], [50, 50])
})

test('bytes alone trip the budget, and both must drain to resume', async (t) => {
  const b = new InflightBudget({ maxMessages: 100, maxBytes: 1000, lowRatio: 0.5, onChange () {} })
  const p = load('t:0')
  b.add(p, 1, 1000)
  t.ok(b.over)
  b.add(p, 60, 0)
  b.release(p, 0, 600)
  t.ok(b.over, 'bytes are low but 61 messages are above 50')
  b.release(p, 20, 0)
  t.notOk(b.over)
})

test('fair shares: the share is the cap over the assigned partitions', async (t) => {
  const b = new InflightBudget({ maxMessages: 120, maxBytes: 1e9, lowRatio: 0.5, onChange () {} })
  b.setPartitions(6)
  const parts = Array.from({ length: 6 }, (_, i) => load(`t:${i}`))
  b.add(parts[0] as PartitionLoad, 59, 0)
  t.notOk(parts[0]?.overShare, 'below the low mark (60) no partition is held back')
  b.add(parts[1] as PartitionLoad, 1, 0)
  t.notOk(parts[1]?.overShare, 'p1 is far under its share (20)')
  b.add(parts[0] as PartitionLoad, 1, 0)
  t.ok(parts[0]?.overShare, 'p0 is over its share under pressure')
  b.release(parts[0] as PartitionLoad, 49, 0)
  t.ok(parts[0]?.overShare, '11 is still over half its share (10)')
  b.release(parts[0] as PartitionLoad, 1, 0)
  t.notOk(parts[0]?.overShare, 'back to half its share: resumed')
})

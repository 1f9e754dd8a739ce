import { test } from 'tap'
import { InflightBudget } from '../../../src/pipeline/inflight-budget.ts'

test('crossing the high mark pauses once, dropping below the low mark resumes once', async (t) => {
  const calls: string[] = []
  const b = new InflightBudget({ maxMessages: 100, maxBytes: 1000, lowRatio: 0.5, onHigh: () => calls.push('high'), onLow: () => calls.push('low') })
  b.add(99, 10)
  t.same(calls, [])
  b.add(1, 10)
  t.same(calls, ['high'])
  b.add(50, 10)
  t.same(calls, ['high'], 'no second high while over')
  t.ok(b.over)
  b.release(90, 10)
  t.same(calls, ['high'], '60 messages is above the low mark of 50')
  b.release(10, 10)
  t.same(calls, ['high', 'low'])
  t.notOk(b.over)
  t.equal(b.messages, 50)
})

test('bytes alone trip the budget, and both must drain to resume', async (t) => {
  const calls: string[] = []
  const b = new InflightBudget({ maxMessages: 100, maxBytes: 1000, lowRatio: 0.5, onHigh: () => calls.push('high'), onLow: () => calls.push('low') })
  b.add(1, 1000)
  t.same(calls, ['high'])
  b.add(60, 0)
  b.release(0, 600)
  t.same(calls, ['high'], 'bytes are low but 61 messages are above 50')
  b.release(20, 0)
  t.same(calls, ['high', 'low'])
})

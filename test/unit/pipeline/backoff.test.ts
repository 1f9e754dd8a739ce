import { test } from 'tap'
import { backoffDelay } from '../../../src/pipeline/backoff.ts'

test('backoff grows exponentially, is capped, and is jittered', async (t) => {
  t.equal(backoffDelay(1, 100, 10_000, () => 1), 100)
  t.equal(backoffDelay(4, 100, 10_000, () => 1), 800)
  t.equal(backoffDelay(30, 100, 10_000, () => 1), 10_000, 'capped')
  t.equal(backoffDelay(30, 100, 10_000, () => 0), 50, 'never below half the base')
  const seen = new Set(Array.from({ length: 50 }, () => Math.round(backoffDelay(5, 100, 10_000))))
  t.ok(seen.size > 10, 'jittered')
  for (const d of seen) t.ok(d >= 50 && d <= 1600)
})

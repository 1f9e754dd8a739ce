import { test } from 'tap'
import { SluiceError } from '../../src/errors.ts'
import { backoffDelay, retry } from '../../src/retry.ts'

const fast = { baseMs: 1, maxMs: 4 }

test('backoff grows exponentially, is capped, and is jittered', async (t) => {
  t.equal(backoffDelay(1, 100, 10_000, () => 1), 100)
  t.equal(backoffDelay(4, 100, 10_000, () => 1), 800)
  t.equal(backoffDelay(30, 100, 10_000, () => 1), 10_000, 'capped')
  t.equal(backoffDelay(30, 100, 10_000, () => 0), 50, 'never below half the base')
  const delays = Array.from({ length: 50 }, () => backoffDelay(5, 100, 10_000))
  t.ok(new Set(delays.map(Math.round)).size > 10, 'jittered')
  // one assertion for all of them: the test's count does not depend on the draws
  t.same(delays.filter((d) => d < 50 || d > 1600), [], 'every delay of attempt 5 within [base/2, base x 2^4]')
})

test('retries transient errors until the operation succeeds', async (t) => {
  const retried: Array<[string, number, number]> = []
  const attempts: number[] = []
  const result = await retry(async (attempt) => {
    attempts.push(attempt)
    if (attempt < 4) throw new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', `down ${attempt}`)
    return 'done'
  }, { ...fast, onRetry: (err, attempt, delayMs) => retried.push([err.message, attempt, delayMs]) })
  t.equal(result, 'done')
  t.same(attempts, [1, 2, 3, 4])
  t.same(retried.map(([m, a]) => [m, a]), [['down 1', 1], ['down 2', 2], ['down 3', 3]])
  for (const [, attempt, delay] of retried) t.ok(delay >= 0.5 && delay <= Math.min(4, 2 ** (attempt - 1)), `delay ${delay} of attempt ${attempt} within bounds`)
})

test('poison and fatal errors are thrown at once', async (t) => {
  for (const code of ['SLUICE_ERR_DECODE', 'SLUICE_ERR_PG_AUTH'] as const) {
    let calls = 0
    const err = new SluiceError(code, 'no')
    await t.rejects(retry(async () => { calls++; throw err }, { ...fast, onRetry: () => t.fail('no retry') }), err)
    t.equal(calls, 1, `${code}: one call`)
  }
})

test('the last error is thrown when attempts run out', async (t) => {
  let calls = 0
  await t.rejects(retry(async (attempt) => {
    calls++
    throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `attempt ${attempt}`)
  }, { ...fast, maxAttempts: 3 }), { code: 'SLUICE_ERR_KAFKA_TRANSIENT', message: 'attempt 3' })
  t.equal(calls, 3)
})

test('an error that is not a SluiceError is rethrown unless classified', async (t) => {
  const raw = new TypeError('bug')
  let calls = 0
  await t.rejects(retry(async () => { calls++; throw raw }, fast), raw, 'rethrown as is')
  t.equal(calls, 1)

  const seen: unknown[] = []
  const value = await retry(async (attempt) => {
    if (attempt === 1) throw new Error('ECONNREFUSED')
    return attempt
  }, {
    ...fast,
    classify: (err) => { seen.push(err); return new SluiceError('SLUICE_ERR_S3_UNAVAILABLE', 'S3 down', { cause: err }) }
  })
  t.equal(value, 2, 'a classified transient error is retried')
  t.equal(seen.length, 1)
  await t.rejects(retry(async () => { throw new Error('403') }, {
    ...fast, classify: (err) => new SluiceError('SLUICE_ERR_S3_FATAL', 'denied', { cause: err })
  }), { code: 'SLUICE_ERR_S3_FATAL', cause: { message: '403' } }, 'a classified fatal error is thrown with its cause')
})

test('an abort stops the retries and throws the last error', async (t) => {
  const ac = new AbortController()
  let calls = 0
  const started = Date.now()
  const p = retry(async (attempt) => {
    calls++
    throw new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', `attempt ${attempt}`)
  }, { baseMs: 60_000, maxMs: 60_000, signal: ac.signal, onRetry: () => ac.abort() })
  await t.rejects(p, { code: 'SLUICE_ERR_PG_UNAVAILABLE', message: 'attempt 1' })
  t.equal(calls, 1, 'no attempt after the abort')
  t.ok(Date.now() - started < 30_000, 'the backoff sleep ended with the abort')

  let after = 0
  await t.rejects(retry(async () => { after++; throw new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', 'x') }, { ...fast, signal: ac.signal }))
  t.equal(after, 1, 'an already aborted signal: one attempt, no retry')
})

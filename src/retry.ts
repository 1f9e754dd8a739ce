/**
 * The one retry helper: an error's kind decides what happens next. Transient errors are retried
 * with capped, jittered backoff; poison and fatal errors are thrown at once.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { isSluiceError } from './errors.ts'
import type { SluiceError } from './errors.ts'

/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
 * and Jitter"): a uniform delay in [base/2, min(max, base * 2^(attempt-1))], so replicas that
 * failed together do not retry together, and a delay never collapses to zero.
 */
export function backoffDelay (attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)))
  const floor = Math.min(ceiling, baseMs / 2)
  return floor + random() * (ceiling - floor)
}

export interface RetryOptions {
  /** first delay */
  baseMs: number
  /** cap */
  maxMs: number
  /** default: unlimited */
  maxAttempts?: number
  /** aborted: stop retrying, throw the last error */
  signal?: AbortSignal
  /** raw error -> SluiceError (default: SluiceError as is, anything else rethrown) */
  classify?: (err: unknown) => SluiceError
  onRetry?: (err: SluiceError, attempt: number, delayMs: number) => void
}

function asIs (err: unknown): SluiceError {
  if (isSluiceError(err)) return err
  throw err
}

/**
 * Runs op; retries while the (classified) error is transient, with capped, jittered backoff;
 * poison and fatal errors are thrown at once; the last error is thrown when attempts run out.
 * `op` always runs at least once, even with an aborted signal.
 */
export async function retry<T> (op: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const classify = opts.classify ?? asIs
  const maxAttempts = opts.maxAttempts ?? Infinity
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt)
    } catch (raw) {
      const err = classify(raw)
      if (!err.transient || attempt >= maxAttempts || opts.signal?.aborted === true) throw err
      const delayMs = backoffDelay(attempt, opts.baseMs, opts.maxMs)
      opts.onRetry?.(err, attempt, delayMs)
      try {
        await sleep(delayMs, undefined, opts.signal === undefined ? undefined : { signal: opts.signal })
      } catch {
        // only an abort rejects the sleep
        throw err
      }
    }
  }
}

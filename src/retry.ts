import { setTimeout as sleep } from 'node:timers/promises'
import { isSluiceError } from './errors.ts'
import type { SluiceError } from './errors.ts'

export interface RetryOptions {
  /** first delay */
  baseMs: number
  /** cap */
  maxMs: number
  /** default: unlimited */
  maxAttempts?: number
  /** aborted: stop retrying, throw the last error */
  signal?: AbortSignal
  /** raw error -> SluiceError (default: a SluiceError as is, anything else rethrown) */
  classify?: (err: unknown) => SluiceError
  onRetry?: (err: SluiceError, attempt: number, delayMs: number) => void
}

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

/**
 * Runs op; retries while the (classified) error is transient, with capped, jittered backoff;
 * poison and fatal errors are thrown at once; the last error is thrown when attempts run out.
 */
export async function retry<T> (op: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const classify = opts.classify ?? ((err: unknown): SluiceError => { if (isSluiceError(err)) return err; throw err })
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt)
    } catch (raw) {
      const err = classify(raw)
      if (!err.transient || opts.signal?.aborted === true) throw err
      if (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts) throw err
      const delay = backoffDelay(attempt, opts.baseMs, opts.maxMs)
      opts.onRetry?.(err, attempt, delay)
      try {
        await sleep(delay, undefined, { signal: opts.signal })
      } catch {
        throw err // aborted while waiting
      }
    }
  }
}

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

// The part of k6's `k6` module the scripts under bench/k6 use: check, sleep, fail.
import { checks, record } from './state.ts'

const pause = new Int32Array(new SharedArrayBuffer(4))

/** k6's check: runs each named predicate on the value, records it in `checks`, true when all pass. */
export function check<T> (value: T, sets: Record<string, (v: T) => boolean>, tags: Record<string, string> = {}): boolean {
  let all = true
  for (const [name, fn] of Object.entries(sets)) {
    let ok = false
    try { ok = fn(value) === true } catch { ok = false }
    const c = checks.get(name) ?? { passes: 0, fails: 0 }
    if (ok) c.passes++
    else c.fails++
    checks.set(name, c)
    record('checks', 'rate', ok ? 1 : 0, { check: name, ...tags })
    all &&= ok
  }
  return all
}

/** k6's sleep: blocks the VU (seconds). */
export function sleep (seconds: number): void {
  Atomics.wait(pause, 0, 0, Math.max(0, seconds * 1000))
}

export function fail (message?: string): never {
  throw new Error(message ?? 'fail() called')
}

export default { check, sleep, fail }

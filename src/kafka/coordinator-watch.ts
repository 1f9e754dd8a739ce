/**
 * Tells from librdkafka's statistics that a consumer has had no group coordinator for too
 * long. librdkafka 2.12 now and then stays without any broker after a broker restart: its
 * group state stays `query-coord` ("no broker available for coordinator query") for good,
 * with no re-bootstrap, although the broker is back (README Limits). The group state is `up`
 * whenever the coordinator is known and connected, whatever the member's assignment (an idle
 * member with no partitions is `up` too), so "not `up` for this long" is the sign.
 */
export class CoordinatorWatch {
  readonly #limitMs: number
  #upAt: number

  /** `limitMs` 0: never fires. */
  constructor (limitMs: number, now = Date.now()) {
    this.#limitMs = limitMs
    this.#upAt = now
  }

  /** librdkafka's `statistics.interval.ms` for this limit: a quarter of it, 1 to 5 s. */
  get statsIntervalMs (): number {
    return this.#limitMs <= 0 ? 0 : Math.min(5_000, Math.max(1_000, Math.floor(this.#limitMs / 4)))
  }

  /** Starts counting again (a new consumer). */
  reset (now = Date.now()): void {
    this.#upAt = now
  }

  /**
   * One statistics report: returns for how long the coordinator has been missing when that
   * is at least the limit, else null. A report without a group state counts as not `up`.
   */
  observe (statsJson: string, now = Date.now()): number | null {
    if (groupState(statsJson) === 'up') this.#upAt = now
    const missing = now - this.#upAt
    return this.#limitMs > 0 && missing >= this.#limitMs ? missing : null
  }
}

/** The consumer group's state (`cgrp.state`) in a statistics report, null when it has none. */
export function groupState (statsJson: string): string | null {
  let stats: unknown
  try {
    stats = JSON.parse(statsJson)
  } catch {
    return null
  }
  const state = (stats as { cgrp?: { state?: unknown } } | null)?.cgrp?.state
  return typeof state === 'string' ? state : null
}

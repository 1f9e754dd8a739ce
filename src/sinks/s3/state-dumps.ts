import type { TriggerItem } from './snapshot-items.ts'
import type { StateDump } from './state-dump.ts'

/** One state dump of this worker, running or done. */
export interface DumpRun {
  /** Date.now() when it was asked for: its snapshot of entity_state is taken after that */
  readonly startedAt: number
  /** the trigger it is keyed by */
  readonly snapshotId: string
  readonly key: string
  readonly result: Promise<StateDump>
  /** it failed (its upload cleaned up): it answers no trigger */
  failed: boolean
}

export interface StateDumpsOptions {
  /** SLUICE_S3_DUMP_SHARE_MS: a dump asked for at most this long before a trigger was read answers it */
  shareMs: number
  keyOf: (snapshotId: string) => string
  /** the triggers whose snapshot is not indexed yet from the same message (a redelivery's is) */
  unanswered: (items: TriggerItem[]) => Promise<TriggerItem[]>
  /** records the dump's upload, then dumps entity_state to `key` (state-dump.ts) */
  dump: (first: TriggerItem, key: string) => Promise<StateDump>
  /** after a failed dump: its uploads aborted and its upload row removed (best effort) */
  cleanUp: (snapshotId: string, key: string) => Promise<void>
}

/** Dumps kept to answer later triggers (newest last); older ones are past any share window. */
const RECENT = 32

/**
 * The worker's state dumps (SNAPSHOT_TRIGGERED), shared by every lane:
 *  - A trigger read by the consumer (`early`) starts its dump at once, with the other triggers
 *    read in the same turn of the event loop, unless a dump already answers them. Its batch
 *    (`prepare`) then finds the dump running or done: the lane does not wait for a dump it
 *    could have started earlier, and leaves the trigger's partition out of its batches until
 *    it settles (SinkBuffer.waiting).
 *  - A dump answers every trigger read before it was asked for, or at most shareMs after
 *    (`shareable`), unless it failed.
 *  - Two dumps of one key never run at once: a dump waits for the one before it with its key.
 *    A failed dump cleans up after itself, whoever shared it.
 */
export class StateDumps {
  readonly #o: StateDumpsOptions
  readonly #recent: DumpRun[] = []
  readonly #running = new Set<Promise<unknown>>()
  #early: TriggerItem[] = []
  #earlyRun: Promise<void> | null = null

  constructor (opts: StateDumpsOptions) {
    this.#o = opts
  }

  /** The newest dump that answers triggers read up to `newest` (Date.now() values), or null. */
  shareable (newest: number): DumpRun | null {
    for (let i = this.#recent.length - 1; i >= 0; i--) {
      const d = this.#recent[i] as DumpRun
      if (d.startedAt < newest - this.#o.shareMs) return null // the ones before started earlier still
      if (!d.failed) return d
    }
    return null
  }

  /** A new dump keyed by `first`, started once the dump before it with that key (if any) settled. */
  start (first: TriggerItem): DumpRun {
    const key = this.#o.keyOf(first.snapshotId)
    let before: Promise<unknown> | undefined
    for (const d of this.#recent) if (d.key === key) before = d.result
    const run = async (): Promise<StateDump> => {
      if (before !== undefined) await before.catch(() => {})
      try {
        return await this.#o.dump(first, key)
      } catch (err) {
        d.failed = true
        await this.#o.cleanUp(first.snapshotId, key)
        throw err
      }
    }
    const d: DumpRun = { startedAt: Date.now(), snapshotId: first.snapshotId, key, result: run(), failed: false }
    d.result.catch(() => {}) // awaited by the batches it answers
    this.#recent.push(d)
    if (this.#recent.length > RECENT) this.#recent.shift()
    this.#track(d.result)
    return d
  }

  /**
   * A trigger was read (SnapshotBuffer): the dump that will answer it is started now. Resolves
   * (never rejects) when that dump settled, or at once if none could be started here (its
   * batch's `prepare` then does it).
   */
  early (item: TriggerItem): Promise<void> {
    this.#early.push(item)
    this.#earlyRun ??= this.#track(new Promise<void>((resolve) => { setImmediate(resolve) }).then(async () => {
      const items = this.#early
      this.#early = []
      this.#earlyRun = null
      await this.#answer(items)
    }).catch(() => {}))
    return this.#earlyRun
  }

  /** Resolves when no dump (or early start) runs. */
  async settled (): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
  }

  async #answer (items: TriggerItem[]): Promise<void> {
    const newest = newestOf(items).receivedAt
    let d = this.shareable(newest)
    if (d === null) {
      const todo = await this.#o.unanswered(items)
      if (todo.length === 0) return
      d = this.shareable(newest) ?? this.start(newestOf(todo))
    }
    await d.result
  }

  #track<T> (p: Promise<T>): Promise<T> {
    this.#running.add(p)
    const done = (): void => { this.#running.delete(p) }
    p.then(done, done)
    return p
  }
}

/**
 * The trigger read last: the key of a dump started for a batch. A dump keyed by it can only
 * have been asked for after it was read, so it would have answered the batch; a dump keyed by
 * an earlier trigger may be the one that did not (and may be shared by another batch already).
 */
export function newestOf (items: readonly TriggerItem[]): TriggerItem {
  let n = items[0] as TriggerItem
  for (const t of items) if (t.receivedAt >= n.receivedAt) n = t
  return n
}

import { tpKey } from '../../kafka/types.ts'
import type { KafkaMessage, TopicPartition } from '../../kafka/types.ts'
import type { ChunkOutcome } from './chunk-assembler.ts'
import type { ChunkItem } from './snapshot-items.ts'

/**
 * The chunks of one partition, handed to the assembler in offset order as soon as they are
 * consumed, ahead of their batch: S3 parts go out while the next chunks are still being
 * fetched, and a batch's transaction only waits for what is left (`outcomeOf`). A handling
 * failure (transient: S3 or PostgreSQL unreachable past the retries of one request) stops the
 * queue at that chunk; it is thrown to the batch that asks for that chunk, whose retry starts
 * the queue again from it. Only what a batch asks for counts: outcomes of chunks whose batch
 * is dropped (a revoked partition) are never used.
 */
export class ChunkQueue {
  readonly #handle: (c: ChunkItem) => Promise<ChunkOutcome>
  readonly #outcomes = new WeakMap<ChunkItem, ChunkOutcome>()
  /** consumed, not handled yet, in offset order */
  #items: ChunkItem[] = []
  #running: Promise<void> | null = null
  #error: unknown = null
  #stopped = false
  /** resolved (and replaced) each time a chunk is handled or the run ends */
  #progress: { promise: Promise<void>, resolve: () => void } | null = null

  constructor (handle: (c: ChunkItem) => Promise<ChunkOutcome>) {
    this.#handle = handle
  }

  get stopped (): boolean { return this.#stopped }

  /** A chunk was consumed (on the consuming tick: no await). */
  push (c: ChunkItem): void {
    if (this.#stopped) return
    this.#items.push(c)
    this.#kick()
  }

  /**
   * The outcome of a chunk, once it and every chunk before it were handled. A chunk this queue
   * never saw (taken in before the sink was open) is queued now; one of a stopped queue (its
   * partition was revoked) is 'cancelled'.
   */
  async outcomeOf (c: ChunkItem): Promise<ChunkOutcome> {
    for (;;) {
      const done = this.#outcomes.get(c)
      if (done !== undefined) return done
      if (this.#stopped) return { type: 'cancelled' }
      if (this.#error !== null) {
        const err = this.#error
        this.#error = null // the batch's retry starts the queue again from this chunk
        throw err
      }
      if (!this.#items.includes(c)) this.#items.push(c)
      this.#kick()
      // this chunk, not the whole queue: a batch is written as soon as its own chunks are in parts
      await this.#progressed()
    }
  }

  /**
   * Drops what is queued and waits for the chunk being handled (revocation, shutdown).
   * Returns the offset of the first chunk dropped unhandled, if any: the partition's stored
   * offset must not pass it.
   */
  async stop (): Promise<number | undefined> {
    this.#stopped = true
    const first = this.#items[0]?.origin.offset
    this.#items = []
    await this.#running
    return first
  }

  #kick (): void {
    if (this.#running !== null || this.#error !== null || this.#stopped) return
    this.#running = this.#run().finally(() => {
      this.#running = null
      this.#progressMade()
    })
  }

  #progressed (): Promise<void> {
    if (this.#progress === null) {
      let resolve = (): void => {}
      const promise = new Promise<void>((_resolve) => { resolve = _resolve })
      this.#progress = { promise, resolve }
    }
    return this.#progress.promise
  }

  #progressMade (): void {
    const p = this.#progress
    this.#progress = null
    p?.resolve()
  }

  async #run (): Promise<void> {
    while (this.#items.length > 0 && !this.#stopped) {
      const c = this.#items[0] as ChunkItem
      try {
        this.#outcomes.set(c, await this.#handle(c))
      } catch (err) {
        this.#error = err
        return
      }
      this.#items.shift()
      this.#progressMade()
    }
  }
}

/** One ChunkQueue per partition, made on first use. */
export class ChunkQueues {
  readonly #handle: (c: ChunkItem) => Promise<ChunkOutcome>
  readonly #queues = new Map<string, ChunkQueue>()

  constructor (handle: (c: ChunkItem) => Promise<ChunkOutcome>) {
    this.#handle = handle
  }

  of (origin: Pick<KafkaMessage, 'topic' | 'partition'>): ChunkQueue {
    const key = tpKey(origin.topic, origin.partition)
    let q = this.#queues.get(key)
    if (q === undefined) {
      q = new ChunkQueue(this.#handle)
      this.#queues.set(key, q)
    }
    return q
  }

  /** Stops the queues of these partitions (all without `tps`); returns, per partition, the first chunk left unhandled. */
  async stop (tps?: readonly TopicPartition[]): Promise<Array<[TopicPartition, number]>> {
    const unhandled: Array<[TopicPartition, number]> = []
    const keys = tps?.map((tp) => [tpKey(tp.topic, tp.partition), tp] as const) ?? [...this.#queues.keys()].map((k) => [k, null] as const)
    await Promise.all(keys.map(async ([key, tp]) => {
      const q = this.#queues.get(key)
      if (q === undefined) return
      this.#queues.delete(key)
      const first = await q.stop()
      if (first !== undefined && tp !== null) unhandled.push([tp, first])
    }))
    return unhandled
  }
}

import type { KafkaMessage } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { SinkBuffer } from '../sink.ts'
import { parseItem } from './snapshot-items.ts'
import type { ChunkItem, SnapshotItem, TriggerItem } from './snapshot-items.ts'

/** What a buffer starts as it takes items in (the sink's eager work). */
export interface EagerWork {
  /** a chunk's upload work starts before its batch is flushed */
  chunk: (c: ChunkItem) => void
  /** the state dump that answers a trigger starts; settles with it, never rejects (absent: no dumps) */
  trigger?: (t: TriggerItem) => Promise<void>
}

/**
 * One partition's snapshot events between two flushes. Each event is parsed when it is taken
 * in (a bad one throws poison there: dead-lettered at once); a chunk or a trigger is also
 * handed to `eager` at once, so its upload or its state dump starts before its batch is
 * flushed; while that dump runs the buffer is `waiting` (its lane seals it once the dump
 * settled). `prepared` is what the sink's `prepare` made of the batch this buffer is in, for
 * `write`; `indexes`, that the buffer's last `write` stored index rows (the index document is
 * rewritten once it commits).
 */
export class SnapshotBuffer<P = unknown> implements SinkBuffer<EntityEvent> {
  readonly items: SnapshotItem[] = []
  bytes = 0
  prepared: P | null = null
  indexes = false
  readonly #eager: EagerWork | null
  #dump: Promise<void> | null = null

  constructor (eager: EagerWork | null) {
    this.#eager = eager
  }

  get count (): number { return this.items.length }

  waiting (): Promise<void> | null { return this.#dump }

  add (e: EntityEvent, origin: KafkaMessage): void {
    const item = parseItem(e, origin)
    this.items.push(item)
    this.bytes += origin.size
    if (this.#eager === null) return
    if (item.kind === 'chunk') {
      this.#eager.chunk(item)
    } else if (item.kind === 'trigger' && this.#eager.trigger !== undefined) {
      const dump = this.#eager.trigger(item)
      this.#dump = dump
      dump.then(() => { if (this.#dump === dump) this.#dump = null }, () => {})
    }
  }
}

import type { KafkaMessage } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { SinkBuffer } from '../sink.ts'
import { parseItem } from './snapshot-items.ts'
import type { ChunkItem, SnapshotItem } from './snapshot-items.ts'

/**
 * One partition's snapshot events between two flushes. Each event is parsed when it is taken
 * in (a bad one throws poison there: dead-lettered at once); a chunk is also handed to
 * `eager` at once, so its upload starts before its batch is flushed. `prepared` is what the
 * sink's `prepare` made of the batch this buffer is in, for `write`; `indexes`, that the
 * buffer's last `write` stored index rows (the index document is rewritten once it commits).
 */
export class SnapshotBuffer<P = unknown> implements SinkBuffer<EntityEvent> {
  readonly items: SnapshotItem[] = []
  bytes = 0
  prepared: P | null = null
  indexes = false
  readonly #eager: ((c: ChunkItem) => void) | null

  constructor (eager: ((c: ChunkItem) => void) | null) {
    this.#eager = eager
  }

  get count (): number { return this.items.length }

  add (e: EntityEvent, origin: KafkaMessage): void {
    const item = parseItem(e, origin)
    this.items.push(item)
    this.bytes += origin.size
    if (item.kind === 'chunk') this.#eager?.(item)
  }
}

import type { EntityEvent } from '../../model/event.ts'
import type { KafkaMessage } from '../../kafka/types.ts'
import type { SinkBuffer } from '../sink.ts'
import type { FoldRow } from './batch-fold.ts'
import { CopyText } from './copy-text.ts'
import { BufferedRow } from './event-ids.ts'
import { appendEventLine } from './event-line.ts'
import { OriginStore } from './origin-store.ts'

/**
 * One partition's pending rows: each event's COPY line, encoded on the consuming tick, kept as
 * bytes (copy-text.ts: the line string dies young), with its id line and its Kafka message's
 * bytes (origin-store.ts: the message dies young too); kept apart so a rejected row can be
 * isolated. A write of a batch without a duplicate reads them as they are (event-sink.ts);
 * only the others make an object per row (rows).
 */
export class EventBuffer implements SinkBuffer<EntityEvent> {
  readonly text = new CopyText()
  readonly idLines: string[] = []
  readonly origins = new OriginStore()

  get count (): number { return this.origins.count }

  get bytes (): number { return this.text.byteLength }

  add (e: EntityEvent, origin: KafkaMessage): void {
    this.idLines.push(appendEventLine(this.text, e, origin))
    this.origins.add(origin)
  }

  /** Its blocks for reuse once its batch committed (CopyText.release): nothing reads the buffer afterwards. */
  release (): void {
    this.text.release()
    this.origins.release()
  }

  /** The buffer's rows, for a write that labels duplicates or isolates rejected rows. */
  rows (into: BufferedRow[]): void {
    for (let i = 0; i < this.origins.count; i++) into.push(new BufferedRow(this.idLines[i] as string, this.origins, this.text, i))
  }

  /** The rows' log lines decoded with their origins, for the projection's fold (batch-fold.ts). */
  foldRows (into: FoldRow[]): void {
    const o = this.origins
    for (let i = 0; i < o.count; i++) into.push({ line: this.text.line(i), origin: { topic: o.topicOf(i), partition: o.partitionOf(i), offset: o.offset(i) } })
  }
}

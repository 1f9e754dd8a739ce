import type { KafkaMessage } from '../../kafka/types.ts'
import { CopyText } from './copy-text.ts'

/**
 * Larger values are not copied (a snapshot chunk's ~700 KB): the pipeline frees such a value as
 * soon as its batch is durable (pipeline/release.ts, the same 64 KiB), and a copy would hold it
 * twice, and past that point.
 */
export const COPY_MAX_BYTES = 64 * 1024

/**
 * The Kafka messages of one partition's buffered rows, kept until their batch is written
 * without holding the messages themselves: offsets, timestamps and sizes in arrays, key and
 * value bytes copied into blocks outside the V8 heap (copy-text.ts). A message held until its
 * batch commits (an object and, for its key and value, two Buffers with an ArrayBuffer each)
 * outlives two scavenges and is promoted, for the old generation's collector to free; copied
 * here, it dies young (docs/benchmarks.md). message(i) gives a message back whole, its key and
 * value views of the blocks, for what needs it (a rejected row's dead letter, a duplicate's
 * origin). A message with headers, of another partition, or with a value large enough for
 * release.ts, is kept as it is.
 */
export class OriginStore {
  /** the partition's (its first message's) */
  topic = ''
  partition = -1
  readonly #offsets: number[] = []
  readonly #timestamps: number[] = []
  readonly #sizes: number[] = []
  /** per message: 1 when its value is null, 2 when its key is, 3 both */
  readonly #nulls: number[] = []
  /** per message: its value, then its key (empty when null) */
  readonly #bytes = new CopyText()
  #kept: Map<number, KafkaMessage> | null = null

  get count (): number { return this.#offsets.length }

  add (m: KafkaMessage): void {
    const i = this.#offsets.length
    if (i === 0) {
      this.topic = m.topic
      this.partition = m.partition
    }
    this.#offsets.push(m.offset)
    this.#timestamps.push(m.timestamp)
    this.#sizes.push(m.size)
    const value = m.value
    const key = m.key
    if (m.headers !== undefined || m.topic !== this.topic || m.partition !== this.partition || (value !== null && value.length >= COPY_MAX_BYTES)) {
      (this.#kept ??= new Map()).set(i, m)
      this.#nulls.push(3)
      this.#put(null)
      this.#put(null)
      return
    }
    this.#nulls.push((value === null ? 1 : 0) | (key === null ? 2 : 0))
    this.#put(value)
    this.#put(key)
  }

  #put (b: Buffer | null): void {
    const bytes = this.#bytes
    const n = b === null ? 0 : b.length
    bytes.begin(n)
    if (b !== null) bytes.copy(b, 0, n)
    bytes.end()
  }

  /** Gives the key and value blocks for reuse (CopyText.release): no message of this store is read afterwards. */
  release (): void {
    this.#bytes.release()
  }

  offset (i: number): number {
    return this.#kept?.get(i)?.offset ?? this.#offsets[i] as number
  }

  topicOf (i: number): string {
    return this.#kept?.get(i)?.topic ?? this.topic
  }

  partitionOf (i: number): number {
    return this.#kept?.get(i)?.partition ?? this.partition
  }

  /** Message i, as it was added. */
  message (i: number): KafkaMessage {
    const kept = this.#kept?.get(i)
    if (kept !== undefined) return kept
    const nulls = this.#nulls[i] as number
    return {
      topic: this.topic,
      partition: this.partition,
      offset: this.#offsets[i] as number,
      key: (nulls & 2) === 0 ? this.#bytes.bytes(2 * i + 1) : null,
      value: (nulls & 1) === 0 ? this.#bytes.bytes(2 * i) : null,
      timestamp: this.#timestamps[i] as number,
      headers: undefined,
      size: this.#sizes[i] as number
    }
  }
}

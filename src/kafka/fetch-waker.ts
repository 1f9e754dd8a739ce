import type { TopicPartition } from './types.ts'
import { tpKey } from './types.ts'

/** What the waker needs of node-rdkafka's KafkaConsumer. */
export interface OffsetsForTimes {
  offsetsForTimes (toppars: Array<{ topic: string, partition: number, offset: number }>, timeout: number, cb: (err: unknown) => void): void
}

/**
 * Wakes librdkafka's fetchers after a resume. librdkafka resumes a partition on its main
 * thread without waking the broker thread that fetches it: when every partition that broker
 * leads is paused, the thread sleeps until its next timeout (up to a second) and the resumed
 * partition waits with it (measured with a bare consumer: 180 to 620 ms from resume to the
 * first message, 40 to 160 ms with the wake; confluent-kafka-go #630 logs the same gap). A
 * ListOffsets request for the resumed partitions (latest offset: no log lookup) goes through
 * the broker thread of each partition's leader, and its answer wakes that thread.
 *
 * At most one request is in flight (each holds a libuv thread until answered); partitions
 * resumed meanwhile go into the next one.
 */
export class FetchWaker {
  readonly #consumer: () => OffsetsForTimes | null
  readonly #timeoutMs: number
  readonly #pending = new Map<string, TopicPartition>()
  #inflight: Promise<void> | null = null
  #stopped = false

  constructor (consumer: () => OffsetsForTimes | null, timeoutMs = 1_000) {
    this.#consumer = consumer
    this.#timeoutMs = timeoutMs
  }

  wake (tps: readonly TopicPartition[]): void {
    if (this.#stopped) return
    for (const tp of tps) this.#pending.set(tpKey(tp.topic, tp.partition), tp)
    if (this.#inflight === null) this.#send()
  }

  /** No more wakes; resolves once the request in flight has returned (before a disconnect). */
  async stop (): Promise<void> {
    this.#stopped = true
    this.#pending.clear()
    while (this.#inflight !== null) await this.#inflight
  }

  #send (): void {
    const consumer = this.#consumer()
    if (this.#stopped || consumer === null || this.#pending.size === 0) return
    const toppars = [...this.#pending.values()].map((tp) => ({ topic: tp.topic, partition: tp.partition, offset: -1 }))
    this.#pending.clear()
    this.#inflight = new Promise<void>((resolve) => {
      try {
        consumer.offsetsForTimes(toppars, this.#timeoutMs, () => resolve()) // the answer itself is not needed
      } catch {
        resolve() // disconnected: nothing to wake
      }
    }).then(() => {
      this.#inflight = null
      this.#send()
    })
  }
}

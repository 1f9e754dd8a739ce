import type { Message } from 'node-rdkafka'
import { fromRdkafka } from './rdkafka-client.ts'
import { tpKey } from './types.ts'
import type { KafkaMessage } from './types.ts'

/**
 * The messages librdkafka fetched for partitions that were paused meanwhile, kept by partition
 * until they are resumed (librdkafka does not fetch them again), dropped when revoked or
 * sought.
 */
export class HeldMessages {
  readonly #held = new Map<string, KafkaMessage[]>()

  /**
   * What to deliver of a consume call's messages: first what was held for partitions resumed
   * since (older offsets), then the call's messages of partitions that are live and not paused;
   * those of paused partitions are held, those of partitions not live dropped (stale).
   */
  sort (messages: readonly Message[], live: ReadonlyMap<string, unknown>, isPaused: (key: string) => boolean): KafkaMessage[] {
    let out: KafkaMessage[] = []
    for (const [key, kept] of this.#held) {
      if (!live.has(key)) this.#held.delete(key)
      else if (!isPaused(key)) { out = out.concat(kept); this.#held.delete(key) }
    }
    // the messages come in runs of one partition: its key and state once per run
    let key = ''
    let isLive = false
    let paused = false
    let lastTopic = ''
    let lastPartition = -1
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as Message
      if (m.partition !== lastPartition || m.topic !== lastTopic) {
        key = tpKey(m.topic, m.partition)
        isLive = live.has(key)
        paused = isPaused(key)
        lastTopic = m.topic
        lastPartition = m.partition
      }
      if (!isLive) continue
      const msg = fromRdkafka(m)
      if (paused) {
        const kept = this.#held.get(key)
        if (kept === undefined) this.#held.set(key, [msg])
        else kept.push(msg)
        continue
      }
      out.push(msg)
    }
    return out
  }

  drop (key: string): void {
    this.#held.delete(key)
  }

  clear (): void {
    this.#held.clear()
  }
}

import type { DlqEntry } from './dlq-entry.ts'

export interface DlqRecord {
  topic: string
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, string>
  partition?: number
}

/** The part of a producer the dead-letter topic needs. */
export interface DlqProducer {
  produceBatch (records: DlqRecord[]): Promise<void>
}

/**
 * Publishes dead letters to `<origin topic><suffix>` with the reason and origin in headers.
 * Runs before the batch's transaction commits, so a crash in between can publish a dead
 * letter twice (at least once); the sluice_dlq table holds it exactly once.
 */
export class DlqPublisher {
  readonly #producer: DlqProducer
  readonly #suffix: string

  constructor (producer: DlqProducer, suffix: string) {
    this.#producer = producer
    this.#suffix = suffix
  }

  topicFor (topic: string): string {
    return topic + this.#suffix
  }

  async publish (entries: readonly DlqEntry[]): Promise<void> {
    if (entries.length === 0) return
    const records: DlqRecord[] = entries.map((e) => ({
      topic: this.topicFor(e.origin.topic),
      key: e.origin.key,
      value: e.origin.value,
      headers: {
        'sluice-error-code': e.code,
        'sluice-error-message': e.message.slice(0, 1000),
        'sluice-stage': e.stage,
        'sluice-pipeline': e.pipeline,
        'sluice-origin-topic': e.origin.topic,
        'sluice-origin-partition': String(e.origin.partition),
        'sluice-origin-offset': String(e.origin.offset),
        'sluice-attempts': String(e.attempts)
      }
    }))
    await this.#producer.produceBatch(records)
  }
}

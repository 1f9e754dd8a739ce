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
 * Runs before the batch's transaction commits (the stages' dead letters before it opens, the
 * rows the database rejected inside it), so a crash in between can publish a dead letter twice
 * (at least once); the sluice_dlq table holds it exactly once.
 */
export class DlqPublisher {
  readonly #producer: DlqProducer
  readonly #suffix: string
  readonly #maxValueBytes: number

  /**
   * A value over maxValueBytes (default 900 KiB, under a broker's 1 MB default) is sent
   * without its value and with a `sluice-value-omitted` header: a dead letter the topic would
   * refuse must not block its partition; the sluice_dlq table keeps the whole message.
   */
  constructor (producer: DlqProducer, suffix: string, maxValueBytes = 900 * 1024) {
    this.#producer = producer
    this.#suffix = suffix
    this.#maxValueBytes = maxValueBytes
  }

  topicFor (topic: string): string {
    return topic + this.#suffix
  }

  async publish (entries: readonly DlqEntry[]): Promise<void> {
    if (entries.length === 0) return
    const records: DlqRecord[] = entries.map((e) => {
      const tooLarge = e.origin.value !== null && e.origin.value.length > this.#maxValueBytes
      const record: DlqRecord = {
        topic: this.topicFor(e.origin.topic),
        key: e.origin.key,
        value: tooLarge ? null : e.origin.value,
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
      }
      if (tooLarge) record.headers['sluice-value-omitted'] = `${e.origin.value?.length} bytes, over ${this.#maxValueBytes}; the sluice_dlq table holds it`
      return record
    })
    await this.#producer.produceBatch(records)
  }
}

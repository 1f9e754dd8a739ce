import { SluiceError } from '../errors.ts'

/**
 * librdkafka reported every broker down: after `limitMs`, a metadata request says whether
 * they still are (it answers without waiting for messages); if so, `fail` gets the error. A
 * message or a new consumer in between cancels it (`up`).
 */
export class BrokersDownTimer {
  readonly #limitMs: number
  readonly #probe: (done: (err: { message: string } | null) => void) => boolean
  readonly #fail: (err: SluiceError) => void
  #timer: NodeJS.Timeout | null = null

  /**
   * `probe` sends the metadata request and returns true, or returns false when there is no
   * consumer to ask (being replaced). `limitMs` 0: never fails.
   */
  constructor (limitMs: number, probe: (done: (err: { message: string } | null) => void) => boolean, fail: (err: SluiceError) => void) {
    this.#limitMs = limitMs
    this.#probe = probe
    this.#fail = fail
  }

  down (): void {
    if (this.#limitMs <= 0 || this.#timer !== null) return
    const since = Date.now()
    this.#timer = setTimeout(() => {
      const sent = this.#probe((err) => {
        this.#timer = null
        if (err) this.#fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `all Kafka brokers unreachable for ${Math.round((Date.now() - since) / 1000)} s: ${err.message}`, { cause: err }))
      })
      if (!sent) this.#timer = null
    }, this.#limitMs)
    this.#timer.unref()
  }

  up (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }
}

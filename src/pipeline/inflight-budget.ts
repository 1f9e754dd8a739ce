/**
 * In-flight work (consumed, not yet durable) capped by messages and bytes. Crossing the high
 * mark calls onHigh once; falling below the low mark (ratio of both caps) calls onLow once.
 */
export interface InflightBudgetOptions {
  maxMessages: number
  maxBytes: number
  lowRatio: number
  onHigh: () => void
  onLow: () => void
}

export class InflightBudget {
  messages = 0
  bytes = 0
  #over = false
  readonly #opts: InflightBudgetOptions

  constructor (opts: InflightBudgetOptions) {
    this.#opts = opts
  }

  get over (): boolean { return this.#over }

  add (messages: number, bytes: number): void {
    this.messages += messages
    this.bytes += bytes
    if (!this.#over && (this.messages >= this.#opts.maxMessages || this.bytes >= this.#opts.maxBytes)) {
      this.#over = true
      this.#opts.onHigh()
    }
  }

  release (messages: number, bytes: number): void {
    this.messages -= messages
    this.bytes -= bytes
    if (this.#over &&
      this.messages <= this.#opts.maxMessages * this.#opts.lowRatio &&
      this.bytes <= this.#opts.maxBytes * this.#opts.lowRatio) {
      this.#over = false
      this.#opts.onLow()
    }
  }
}

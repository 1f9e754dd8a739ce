/**
 * In-flight work (consumed, not yet durable), capped by messages and bytes, and shared fairly
 * between partitions:
 * - the cap: at or above either cap every partition is paused, until both are back under
 *   the low mark (lowRatio of the caps);
 * - fair shares: once the total reaches the low mark, a partition holding its share of
 *   either cap (cap / assigned partitions) or more is paused alone, until its own work is
 *   back under lowRatio of its share; the others keep being consumed.
 * So one partition with a backlog cannot fill the budget and leave the other partitions (and
 * the lanes that write them) idle. onChange is called on every transition, not per message.
 */
export interface InflightBudgetOptions {
  maxMessages: number
  maxBytes: number
  lowRatio: number
  onChange: () => void
}

/** One partition's share of the budget, kept by its owner (no lookup per message). */
export interface PartitionLoad {
  readonly key: string
  inflightMessages: number
  inflightBytes: number
  /** paused for holding more than its share */
  overShare: boolean
}

export class InflightBudget {
  messages = 0
  bytes = 0
  #over = false
  #partitions = 1
  readonly #opts: InflightBudgetOptions

  constructor (opts: InflightBudgetOptions) {
    this.#opts = opts
  }

  /** Every partition is paused: the total is over a cap. */
  get over (): boolean { return this.#over }

  /** The number of partitions sharing the budget (those assigned). */
  setPartitions (n: number): void {
    this.#partitions = Math.max(1, n)
  }

  add (p: PartitionLoad, messages: number, bytes: number): void {
    this.messages += messages
    this.bytes += bytes
    p.inflightMessages += messages
    p.inflightBytes += bytes
    let changed = false
    if (!this.#over && (this.messages >= this.#opts.maxMessages || this.bytes >= this.#opts.maxBytes)) {
      this.#over = true
      changed = true
    }
    if (!p.overShare && this.#pressure() &&
      (p.inflightMessages >= this.#opts.maxMessages / this.#partitions || p.inflightBytes >= this.#opts.maxBytes / this.#partitions)) {
      p.overShare = true
      changed = true
    }
    if (changed) this.#opts.onChange()
  }

  release (p: PartitionLoad, messages: number, bytes: number): void {
    this.messages -= messages
    this.bytes -= bytes
    p.inflightMessages -= messages
    p.inflightBytes -= bytes
    const low = this.#opts.lowRatio
    let changed = false
    if (this.#over && this.messages <= this.#opts.maxMessages * low && this.bytes <= this.#opts.maxBytes * low) {
      this.#over = false
      changed = true
    }
    if (p.overShare &&
      p.inflightMessages <= this.#opts.maxMessages / this.#partitions * low &&
      p.inflightBytes <= this.#opts.maxBytes / this.#partitions * low) {
      p.overShare = false
      changed = true
    }
    if (changed) this.#opts.onChange()
  }

  /** At or above the low mark: partitions over their share are paused. */
  #pressure (): boolean {
    return this.messages >= this.#opts.maxMessages * this.#opts.lowRatio || this.bytes >= this.#opts.maxBytes * this.#opts.lowRatio
  }
}

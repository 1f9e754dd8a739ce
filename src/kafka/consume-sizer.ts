/** messages an idle call may gather, each waited for up to the timeout: their size is unknown */
const IDLE_COUNT = 16

/**
 * How much node-rdkafka's next consume call asks for. node-rdkafka waits up to the consume
 * timeout for each next message, so under a backlog one call gathers its whole count whatever
 * the messages' size (a count sized for 500 B events took 200 MB of 700 KB chunks at once):
 *  - idle (the last call returned nothing), a call waits up to the timeout for each message,
 *    and asks for at most 16 (a 1 MB message each: 16 MB);
 *  - while messages come, it waits 1 ms for each, so it returns about what librdkafka had
 *    fetched ahead (SLUICE_KAFKA_PREFETCH_BYTES);
 *  - either way it asks for at most fetchBatch messages and about fetchBatchBytes: the count
 *    follows the message size, the larger of a moving average and the last call's largest
 *    message (larger messages count at once).
 * (One message per idle call bounds memory as well, but under load a 1 ms gap makes a call
 * idle often: the snapshot benchmark's rdkafka rate was 46 MiB/s with 1, 52 MiB/s with 16.)
 */
export class ConsumeSizer {
  readonly #fetchBatch: number
  readonly #fetchBatchBytes: number
  readonly #idleTimeoutMs: number
  #count: number
  #avgSize = 0
  #busy = false

  constructor (opts: { fetchBatch: number, fetchBatchBytes: number, idleTimeoutMs: number }) {
    this.#fetchBatch = opts.fetchBatch
    this.#fetchBatchBytes = opts.fetchBatchBytes
    this.#idleTimeoutMs = opts.idleTimeoutMs
    this.#count = opts.fetchBatch
  }

  /** messages the next call asks for */
  get count (): number { return this.#busy ? this.#count : Math.min(this.#count, IDLE_COUNT) }
  /** how long the next call waits for each message */
  get timeoutMs (): number { return this.#busy ? 1 : this.#idleTimeoutMs }

  /** A call returned these value sizes (none: idle, or an error). */
  observe (sizes: ArrayLike<number>): void {
    this.#busy = sizes.length > 0
    if (sizes.length === 0) return
    let bytes = 0
    let largest = 0
    for (let i = 0; i < sizes.length; i++) {
      const n = sizes[i] as number
      bytes += n
      if (n > largest) largest = n
    }
    const avg = bytes / sizes.length
    this.#avgSize = this.#avgSize === 0 ? avg : 0.7 * this.#avgSize + 0.3 * avg
    const size = Math.max(this.#avgSize, largest)
    this.#count = Math.max(1, Math.min(this.#fetchBatch, Math.floor(this.#fetchBatchBytes / Math.max(1, size))))
  }
}

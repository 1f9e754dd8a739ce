/**
 * Part buffers shared by the multipart uploads of one sink: a part whose upload has returned
 * gives its buffer back, and the next part (of the same snapshot or of the next one) takes it
 * instead of allocating partBytes anew. At most `keep` idle buffers are kept. Without it each
 * snapshot allocated its own 8 MiB buffers, and the last snapshot's stayed in memory until V8
 * collected them (measured: RSS one part buffer higher per snapshot that followed another).
 */
export class PartPool {
  readonly partBytes: number
  readonly #keep: number
  readonly #idle: Buffer[] = []

  constructor (partBytes: number, keep: number) {
    this.partBytes = partBytes
    this.#keep = keep
  }

  take (): Buffer {
    // shared memory: the part hasher's thread reads the part in place (part-hasher.ts)
    return this.#idle.pop() ?? Buffer.from(new SharedArrayBuffer(this.partBytes))
  }

  /** A buffer nothing reads or writes any more. */
  give (buf: Buffer): void {
    if (buf.length === this.partBytes && this.#idle.length < this.#keep && !this.#idle.includes(buf)) this.#idle.push(buf)
  }
}

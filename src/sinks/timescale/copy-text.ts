/**
 * COPY text lines kept as UTF-8 bytes, appended into blocks outside the V8 heap as each event is
 * encoded. A line kept as a string until its batch commits (hundreds of milliseconds) outlives
 * two scavenges: copied twice, then promoted, for the old generation's collector to free;
 * holding one more such line per event cost 2-5% of the ingest rate (docs/benchmarks.md).
 * Each line's place is three small integers in one array; nothing per line on the heap. A
 * "line" is any run of bytes: origin-store.ts keeps Kafka message keys and values in one.
 */
export class CopyText {
  readonly #blocks: Buffer[] = []
  #block: Buffer | null = null
  #used = 0
  /** per line: its block, start, end */
  readonly #at: number[] = []

  /** the lines' bytes, all told */
  byteLength = 0
  /** where the line begun starts */
  #start = 0

  get count (): number { return this.#at.length / 3 }

  append (line: string): void {
    // a JavaScript string's UTF-8 takes at most 3 bytes per UTF-16 unit
    this.begin(line.length * 3)
    this.put(line)
    this.end()
  }

  /**
   * Starts a line written in pieces (put, copy), in order, then end(): `room` bounds its
   * bytes, so that it goes into one block.
   */
  begin (room: number): void {
    const block = this.#block
    if (block === null || block.length - this.#used < room) {
      this.#block = newBlock(this.#blocks.length === 0, room)
      this.#blocks.push(this.#block)
      this.#used = 0
    }
    this.#start = this.#used
  }

  /** A piece of the line begun: the string's UTF-8. */
  put (s: string): void {
    this.#used += (this.#block as Buffer).write(s, this.#used, 'utf8')
  }

  /** A piece of the line begun: bytes [start, end) of buf, as they are. */
  copy (buf: Buffer, start: number, end: number): void {
    this.#used += buf.copy(this.#block as Buffer, this.#used, start, end)
  }

  /** Ends the line begun. */
  end (): void {
    this.#at.push(this.#blocks.length - 1, this.#start, this.#used)
    this.byteLength += this.#used - this.#start
  }

  /** Line i's bytes (newline included). */
  bytes (i: number): Buffer {
    const at = this.#at
    return (this.#blocks[at[3 * i] as number] as Buffer).subarray(at[3 * i + 1], at[3 * i + 2])
  }

  /** Line i as a string. */
  line (i: number): string {
    const at = this.#at
    return (this.#blocks[at[3 * i] as number] as Buffer).toString('utf8', at[3 * i + 1], at[3 * i + 2])
  }

  /** Whether line j follows line i in the same block, byte for byte. */
  adjacent (i: number, j: number): boolean {
    const at = this.#at
    return at[3 * i] === at[3 * j] && at[3 * i + 2] === at[3 * j + 1]
  }

  /**
   * Gives the 1 MiB blocks to the texts made next and forgets every line: called once nothing
   * reads the lines, nor a Buffer taken from them (bytes, tail, span, chunks), any more (their
   * batch committed). A fresh block is memory the kernel maps on its first write, page by page:
   * reused, its pages are mapped already (docs/benchmarks.md).
   */
  release (): void {
    for (const b of this.#blocks) if (b.length === BLOCK && freeBlocks.length < FREE_BLOCKS) freeBlocks.push(b)
    this.#blocks.length = 0
    this.#block = null
    this.#at.length = 0
    this.#used = 0
    this.byteLength = 0
  }

  /** Every line's bytes, in order: one slice per run of lines that follow each other in a block. */
  * chunks (): Generator<Buffer> {
    const n = this.count
    let i = 0
    while (i < n) {
      let j = i + 1
      while (j < n && this.adjacent(j - 1, j)) j++
      yield this.span(i, j)
      i = j
    }
  }

  /** The bytes of lines [i, j), which must be adjacent one after another. */
  span (i: number, j: number): Buffer {
    const at = this.#at
    return (this.#blocks[at[3 * i] as number] as Buffer).subarray(at[3 * i + 1], at[3 * (j - 1) + 2])
  }
}

const FIRST_BLOCK = 16 * 1024
const BLOCK = 1024 * 1024
/** released blocks kept for reuse, at most FREE_BLOCKS (8 MiB) */
const freeBlocks: Buffer[] = []
const FREE_BLOCKS = 8

/**
 * A block for at least `room` bytes: a text's first one small (a partition's share of a small
 * batch), then 1 MiB ones, released ones first; a longer line gets a block of its own.
 */
function newBlock (first: boolean, room: number): Buffer {
  if (first && room <= FIRST_BLOCK) return Buffer.allocUnsafeSlow(FIRST_BLOCK)
  if (room <= BLOCK) return freeBlocks.pop() ?? Buffer.allocUnsafeSlow(BLOCK)
  return Buffer.allocUnsafeSlow(room)
}

/** A line of some CopyText. */
export interface TextLine {
  readonly text: CopyText
  readonly index: number
}

/**
 * COPY data of the lines in order: runs of lines that follow each other in one block go as
 * one slice of it (a whole batch without duplicates: one slice per block), nothing copied.
 */
export function * lineChunks (lines: readonly TextLine[]): Generator<Buffer> {
  let i = 0
  while (i < lines.length) {
    const first = lines[i] as TextLine
    let j = i + 1
    let last = first
    while (j < lines.length) {
      const next = lines[j] as TextLine
      if (next.text !== first.text || next.index !== last.index + 1 || !first.text.adjacent(last.index, next.index)) break
      last = next
      j++
    }
    yield first.text.span(first.index, last.index + 1)
    i = j
  }
}

import { Worker } from 'node:worker_threads'
import { SluiceError } from '../../errors.ts'

/** What the hasher's thread is asked (part-hasher-thread.ts). */
export type HasherRequest =
  | { op: 'part', seq: number, object: number, buffer: SharedArrayBuffer, offset: number, length: number, own: boolean }
  | { op: 'digest', seq: number, object: number }
  | { op: 'drop', object: number }

export interface HasherReply { seq: number, hex: string | null, crc32: string | null }

/** A part's checksums: its sha256 hex when asked for (null otherwise), its CRC32 as S3 takes it (base64, big-endian) */
export interface PartSums { sha256: string | null, crc32: string }

/** sha256 of no bytes */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
const EMPTY_CRC32 = 'AAAAAA=='

/**
 * The sha256 of snapshot objects, and each part's CRC32 and (for a signed upload) sha256,
 * computed on a thread of their own from the parts' shared memory (no copy): on the main
 * thread they were 0.58 of the 2.4-2.8 CPU seconds a 256 MiB snapshot cost the worker over
 * plain HTTP (the object's own sha256 as bytes were copied into parts, the SDK's sha256 of
 * each part for its signature and its CRC32 for the server's check), time in which nothing
 * else moved. Parts are filled in SharedArrayBuffers (part-pool.ts) and must not change until
 * `part` has resolved. The thread is started on first use and holds the process open only
 * while it has work.
 */
export class PartHasher {
  #worker: Worker | null = null
  #seq = 0
  #objects = 0
  readonly #waiting = new Map<number, { resolve: (r: HasherReply) => void, reject: (err: Error) => void }>()
  /** objects whose hash state a thread that stopped took with it */
  readonly #lost = new Set<number>()
  readonly #live = new Set<number>()

  /** A new object to hash: its handle for part, digest and drop. */
  open (): number {
    const id = ++this.#objects
    this.#live.add(id)
    return id
  }

  /**
   * Adds a part to the object's sha256 (parts in the order of these calls); resolves once the
   * bytes were read (the buffer may then be reused) with the part's CRC32, and its own sha256
   * hex when `own`.
   */
  async part (object: number, bytes: Buffer, own: boolean): Promise<PartSums> {
    if (bytes.length === 0) return { sha256: own ? EMPTY_SHA256 : null, crc32: EMPTY_CRC32 }
    if (!(bytes.buffer instanceof SharedArrayBuffer)) throw new Error('a part to hash must be in shared memory (PartPool)')
    const r = await this.#ask({ op: 'part', seq: 0, object, buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.length, own })
    return { sha256: r.hex, crc32: r.crc32 as string }
  }

  /** The object's sha256 hex over every part given, once they were all read; the object is closed. */
  async digest (object: number): Promise<string> {
    this.#live.delete(object)
    try {
      return (await this.#ask({ op: 'digest', seq: 0, object })).hex as string
    } finally {
      this.#lost.delete(object)
    }
  }

  /** Forgets an object whose upload was given up. */
  drop (object: number): void {
    this.#live.delete(object)
    this.#lost.delete(object)
    this.#worker?.postMessage({ op: 'drop', object } satisfies HasherRequest)
  }

  /** Stops the thread: objects being hashed fail (SLUICE_ERR_RUNTIME), new ones start another. */
  async close (): Promise<void> {
    await this.#worker?.terminate()
  }

  async #ask (req: Exclude<HasherRequest, { op: 'drop' }>): Promise<HasherReply> {
    if (this.#lost.has(req.object)) throw new SluiceError('SLUICE_ERR_RUNTIME', 'the part hasher\'s thread stopped while hashing this object')
    const worker = this.#thread()
    req.seq = ++this.#seq
    if (this.#waiting.size === 0) worker.ref()
    return await new Promise((resolve, reject) => {
      this.#waiting.set(req.seq, { resolve, reject })
      worker.postMessage(req)
    })
  }

  #thread (): Worker {
    if (this.#worker !== null) return this.#worker
    const w = new Worker(new URL('./part-hasher-thread.ts', import.meta.url))
    w.unref()
    w.on('message', (r: HasherReply) => {
      const waiting = this.#waiting.get(r.seq)
      this.#waiting.delete(r.seq)
      if (this.#waiting.size === 0) w.unref()
      waiting?.resolve(r)
    })
    const stopped = (cause: Error): void => {
      if (this.#worker !== w) return
      const err = new SluiceError('SLUICE_ERR_RUNTIME', `the part hasher's thread stopped: ${cause.message}`, { cause })
      this.#worker = null
      // every object hashed so far lost its state with the thread
      for (const id of this.#live) this.#lost.add(id)
      const waiting = [...this.#waiting.values()]
      this.#waiting.clear()
      for (const x of waiting) x.reject(err)
    }
    w.on('error', stopped)
    w.on('exit', (code) => { stopped(new Error(`the part hasher's thread exited (${code})`)) })
    this.#worker = w
    return w
  }
}

let shared: PartHasher | null = null

/** The process's part hasher (one thread for every upload). */
export function partHasher (): PartHasher {
  shared ??= new PartHasher()
  return shared
}

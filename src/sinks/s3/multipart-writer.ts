import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand } from '@aws-sdk/client-s3'
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3'
import { base64End, decodeGroups, decodeTail } from '../../model/base64-bytes.ts'
import { partHasher } from './part-hasher.ts'
import type { PartHasher } from './part-hasher.ts'
import { PartPool } from './part-pool.ts'
import { abortUpload, signsPayloads, uploadPart, withS3Retry } from './s3-ops.ts'
import type { RetryPolicy } from './s3-ops.ts'

export interface MultipartWriterOptions {
  s3: S3Client
  bucket: string
  key: string
  contentType: string
  metadata: Record<string, string>
  /** bytes per part (S3: at least 5 MiB except the last) */
  partBytes: number
  /** parts uploaded in parallel; `write` waits for a free slot beyond that */
  queueSize: number
  retry: RetryPolicy
  /** where part buffers come from and go back to (default: the writer's own) */
  pool?: PartPool
  /** where the checksums are computed (default: the process's, part-hasher.ts) */
  hasher?: PartHasher
}

/**
 * One S3 multipart upload fed by `write` calls of any size: bytes are copied into a part
 * buffer of partBytes, and a full part is uploaded in the background while the next one
 * fills; parts being filled or sent are at most queueSize, so memory is bounded by
 * partBytes x queueSize whatever the object's size (part buffers are reused). The object's
 * sha256, each part's CRC32 and, when the client signs payloads, each part's sha256 are
 * computed off the main thread (part-hasher.ts) as parts are cut; a part is sent once they are
 * known, and its buffer reused once it was sent. Each part
 * is retried on its own (RetryPolicy); a part that still fails is thrown by the next
 * `write` or by `finish`. Nothing is visible in the bucket until `finish` completes it.
 */
export class MultipartWriter {
  readonly key: string
  readonly #o: MultipartWriterOptions
  #uploadId: string | null = null
  readonly #parts: CompletedPart[] = []
  #current: Buffer | null = null
  #fill = 0
  #partNumber = 0
  readonly #inflight = new Set<Promise<void>>()
  readonly #pool: PartPool
  #error: unknown = null
  #bytes = 0
  readonly #hasher: PartHasher
  readonly #object: number
  /** the client signs payloads: each part's sha256 goes into its signature (s3-ops.ts) */
  readonly #signed: boolean

  constructor (opts: MultipartWriterOptions) {
    this.#o = opts
    this.key = opts.key
    this.#pool = opts.pool ?? new PartPool(opts.partBytes, opts.queueSize)
    if (this.#pool.partBytes !== opts.partBytes) throw new Error(`part pool of ${this.#pool.partBytes} bytes for parts of ${opts.partBytes}`)
    this.#hasher = opts.hasher ?? partHasher()
    this.#object = this.#hasher.open()
    this.#signed = signsPayloads(opts.s3)
  }

  get uploadId (): string | null { return this.#uploadId }
  /** bytes written so far */
  get bytes (): number { return this.#bytes }

  async create (): Promise<string> {
    const o = this.#o
    const res = await withS3Retry(`creating the multipart upload of ${o.key}`, o.retry, async () =>
      o.s3.send(new CreateMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, ContentType: o.contentType, Metadata: o.metadata })))
    if (res.UploadId === undefined) throw new Error(`S3 returned no upload id for ${o.key}`)
    this.#uploadId = res.UploadId
    return res.UploadId
  }

  async write (data: Buffer): Promise<void> {
    let off = 0
    while (off < data.length) {
      const buf = await this.#room()
      const n = data.copy(buf, this.#fill, off)
      this.#fill += n
      off += n
      this.#bytes += n
      if (this.#fill === this.#o.partBytes) this.#cut()
    }
  }

  /**
   * Writes the bytes base64 text decodes to, decoded straight into the part buffer (no
   * intermediate Buffer: a 256 MiB snapshot in 512 KiB chunks would otherwise allocate 256 MiB
   * of short-lived buffers; decodeGroups' 32 KiB strings die young). The text (its bytes: a
   * chunk message's own) must be unbroken base64, checked by the caller (BulkString.base64).
   */
  async writeBase64 (text: Buffer): Promise<void> {
    const end = base64End(text)
    let pos = 0
    while (pos < end) {
      const buf = await this.#room()
      const groups = Math.min(Math.floor((end - pos) / 4), Math.floor((this.#o.partBytes - this.#fill) / 3))
      if (groups === 0) { // a group straddling two parts, or the last partial group
        const count = Math.min(4, end - pos)
        await this.write(decodeTail(text, pos, count))
        pos += count
        continue
      }
      decodeGroups(text, pos, groups, buf, this.#fill)
      const n = groups * 3
      this.#fill += n
      this.#bytes += n
      pos += groups * 4
      if (this.#fill === this.#o.partBytes) this.#cut()
    }
  }

  /** Uploads what is left as the last part, waits for every part, completes the upload: its ETag and the sha256 hex of every byte written. */
  async finish (): Promise<{ etag: string | undefined, sha256: string }> {
    const o = this.#o
    this.#check()
    if (this.#fill > 0 || this.#partNumber === 0) this.#cut() // an empty object is one empty part
    while (this.#inflight.size > 0) await Promise.race(this.#inflight)
    this.#check()
    const sha256 = await this.#hasher.digest(this.#object)
    const parts = this.#parts.slice().sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
    const res = await withS3Retry(`completing the multipart upload of ${o.key}`, o.retry, async () =>
      o.s3.send(new CompleteMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: this.#uploadId as string, MultipartUpload: { Parts: parts } })))
    this.#release()
    return { etag: res.ETag, sha256 }
  }

  /** Aborts the upload (once the parts in flight have returned, so none lands afterwards). */
  async abort (retry: RetryPolicy = this.#o.retry): Promise<void> {
    await Promise.allSettled([...this.#inflight])
    this.#release()
    this.#hasher.drop(this.#object)
    if (this.#uploadId === null) return
    const o = this.#o
    await withS3Retry(`aborting the multipart upload of ${o.key}`, retry, async () => abortUpload(o.s3, o.bucket, o.key, this.#uploadId as string))
  }

  #check (): void {
    if (this.#error !== null) throw this.#error
  }

  #release (): void {
    if (this.#current !== null) this.#pool.give(this.#current)
    this.#current = null
  }

  /**
   * The part buffer being filled; a new one only once fewer than queueSize parts are in
   * flight, so parts being filled and sent together never exceed queueSize (lib-storage's
   * bound: partBytes x queueSize).
   */
  async #room (): Promise<Buffer> {
    this.#check()
    if (this.#current !== null) return this.#current
    while (this.#inflight.size >= this.#o.queueSize) await Promise.race(this.#inflight)
    this.#check()
    this.#current = this.#pool.take()
    this.#fill = 0
    return this.#current
  }

  #cut (): void {
    const buf = this.#current ?? Buffer.alloc(0)
    const len = this.#fill
    this.#current = null
    this.#fill = 0
    const number = ++this.#partNumber
    const o = this.#o
    const body = buf.subarray(0, len)
    const hashed = this.#hasher.part(this.#object, body, this.#signed)
    // sent with its checksums (and its sha256 signed, when the client signs payloads) once they are known
    const sent = hashed.then(async (sums) => await withS3Retry(`uploading part ${number} of ${o.key}`, o.retry, async () =>
      o.s3.send(uploadPart({ Bucket: o.bucket, Key: o.key, UploadId: this.#uploadId as string, PartNumber: number, Body: body, ContentLength: len, ChecksumCRC32: sums.crc32 }, sums.sha256))))
    const p: Promise<void> = sent
      .then((res) => {
        this.#parts.push({ PartNumber: number, ETag: res.ETag })
        this.#pool.give(buf)
      }, (err: unknown) => { this.#error ??= err })
      .finally(() => { this.#inflight.delete(p) })
    this.#inflight.add(p)
  }
}

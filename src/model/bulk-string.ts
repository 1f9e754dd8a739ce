import { isBase64 } from './base64-bytes.ts'

/**
 * A long JSON string value kept as the message's own bytes instead of a JS string: the
 * decode stage makes one for a bulky member (a SNAPSHOT_CHUNK's `data`, ~700 KB of base64),
 * so that a chunk message costs no large-object-space strings (which V8 frees only on a full
 * collection, and which piled up to hundreds of MB over a 256 MiB snapshot). `bytes` is a
 * view of the Kafka message's value: the literal's content, which had no escape sequence, so
 * its UTF-8 bytes are the string's. JSON.stringify writes it as the string it stands for.
 */
export class BulkString {
  readonly #bytes: Buffer
  readonly #length: number
  #base64: boolean | undefined

  /** `base64`: whether the bytes are base64 (isBase64), when the caller already knows; else found out when asked */
  constructor (bytes: Buffer, base64?: boolean) {
    this.#bytes = bytes
    this.#length = bytes.length
    this.#base64 = base64
  }

  /** every byte before at most two trailing `=` is a base64 character (either alphabet) */
  get base64 (): boolean {
    this.#base64 ??= isBase64(this.bytes)
    return this.#base64
  }

  /** The bytes; throws once the message they belong to was freed (pipeline/release.ts). */
  get bytes (): Buffer {
    if (this.#bytes.length !== this.#length) throw new Error(`a ${this.#length}-byte string read after its Kafka message was released`)
    return this.#bytes
  }

  /** length in bytes (UTF-8) */
  get byteLength (): number {
    return this.#length
  }

  toString (): string {
    return this.bytes.toString('utf8')
  }

  toJSON (): string {
    return this.toString()
  }
}

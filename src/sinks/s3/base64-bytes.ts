/**
 * Base64 from bytes to bytes: a chunk's data arrives as the ASCII bytes of its base64 (a
 * BulkString of the Kafka message), is checked here (isBase64) and decoded into the upload's
 * part buffer. Both alphabets (standard and URL-safe) are accepted, as Buffer.from(text,
 * 'base64') does.
 */
const DECODE = new Int8Array(256).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) DECODE[c.charCodeAt(0)] = i
DECODE['-'.charCodeAt(0)] = 62
DECODE['_'.charCodeAt(0)] = 63
// two characters to their 12 bits, -1 when either is not base64: isBase64 checks a group of
// four with two lookups of one 32-bit read
const PAIR = new Int32Array(65536).fill(-1)
for (let a = 0; a < 256; a++) {
  for (let b = 0; b < 256; b++) {
    const hi = DECODE[a] as number
    const lo = DECODE[b] as number
    if (hi >= 0 && lo >= 0) PAIR[a << 8 | b] = hi << 6 | lo
  }
}

/** The end of `src`'s base64 characters once its `=` padding is left out. */
export function base64End (src: Uint8Array): number {
  let end = src.length
  if (end > 0 && src[end - 1] === 0x3d) end--
  if (end > 0 && src[end - 1] === 0x3d) end--
  return end
}

/** Every byte before the padding is a base64 character (of either alphabet). */
export function isBase64 (src: Uint8Array): boolean {
  const end = base64End(src)
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength)
  let bad = 0
  let i = 0
  // four characters per 32-bit read, two PAIR lookups (-1 for a pair with a non-base64
  // character): ~3x the rate of one DECODE lookup per byte (bench/byte-checks.ts)
  for (const last = end - 4; i <= last; i += 4) {
    const w = view.getUint32(i)
    bad |= (PAIR[w >>> 16] as number) | (PAIR[w & 0xffff] as number)
  }
  if (bad < 0) return false
  for (; i < end; i++) if (DECODE[src[i] as number] === -1) return false
  return true
}

/** How many bytes `src` decodes to (Buffer.byteLength(text, 'base64') for bytes). */
export function base64DecodedLength (src: Uint8Array): number {
  return Math.floor(base64End(src) * 3 / 4)
}

// at most this many characters per string: strings this small are young-generation objects
// that die at once; a larger one goes to V8's large-object space and the decode costs about
// three times the CPU (bench/base64-decode.ts)
const SLICE = 32 * 1024

/**
 * Decodes `groups` whole groups of 4 characters from src[at..] into dst[to..] (3 bytes each).
 * The characters must have been checked (isBase64). Node decodes base64 only from strings:
 * each slice of the text becomes a short latin1 string that Node's native decoder writes
 * straight into dst (about 4x less CPU than a decoder in JS, GC included: bench/base64-decode.ts).
 */
export function decodeGroups (src: Buffer, at: number, groups: number, dst: Buffer, to: number): void {
  for (let g = 0; g < groups;) {
    const n = Math.min(groups - g, SLICE / 4)
    const s = at + g * 4
    dst.write(src.toString('latin1', s, s + n * 4), to + g * 3, n * 3, 'base64')
    g += n
  }
}

/** The 0 to 3 bytes of one group of `count` (<= 4) characters at src[at..]: a partial last one, or one split over two parts. */
export function decodeTail (src: Uint8Array, at: number, count: number): Buffer {
  let n = 0
  for (let i = 0; i < 4; i++) n = n << 6 | (i < count ? DECODE[src[at + i] as number] as number : 0)
  const bytes = Buffer.from([n >>> 16, (n >>> 8) & 0xff, n & 0xff])
  return bytes.subarray(0, Math.floor(count * 3 / 4))
}

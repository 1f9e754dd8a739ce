/**
 * Base64 from bytes to bytes: a chunk's data arrives as the ASCII bytes of its base64 (a
 * BulkString of the Kafka message), is checked here (spanClass, which answers the JSON scan's
 * own check of the literal too, or isBase64) and decoded into the upload's part buffer.
 * Both alphabets (standard and URL-safe) are accepted, as Buffer.from(text, 'base64') does.
 */
const DECODE = new Int8Array(256).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) DECODE[c.charCodeAt(0)] = i
DECODE['-'.charCodeAt(0)] = 62
DECODE['_'.charCodeAt(0)] = 63
/** no control character (below 0x20) and no backslash: a JSON string literal's bytes are its text */
export const PLAIN = 1
/** every byte before at most two trailing `=` is a base64 character (either alphabet) */
export const BASE64 = 2
// each byte's classes, and each pair's (both bytes'): spanClass reads four bytes at a time
// and looks up two pairs
const BYTE_CLASS = new Uint8Array(256)
for (let a = 0; a < 256; a++) BYTE_CLASS[a] = (a >= 0x20 && a !== 0x5c ? PLAIN : 0) | ((DECODE[a] as number) >= 0 ? BASE64 : 0)
const PAIR_CLASS = new Uint8Array(65536)
for (let a = 0; a < 256; a++) {
  for (let b = 0; b < 256; b++) PAIR_CLASS[a << 8 | b] = (BYTE_CLASS[a] as number) & (BYTE_CLASS[b] as number)
}

// at most this many characters per string: strings this small are young-generation objects
// that die at once; a larger one goes to V8's large-object space and the decode costs about
// three times the CPU (bench/base64-decode.ts)
const SLICE = 32 * 1024

/**
 * The classes (PLAIN, BASE64) every byte of src[start..end) has. The JSON scan asks whether a
 * long string literal is PLAIN and gets whether it is base64, which a snapshot chunk's data
 * must be. The `=` padding (at most two, at the end) is PLAIN and left out of the BASE64 test.
 * A span of base64 is answered by Node's native decoder (decodesWhole: 2.7-2.9x the rate of
 * the table pass, bench/byte-checks.ts); any other span by the table pass.
 */
export function spanClass (src: Uint8Array, start: number, end: number): number {
  return decodesWhole(src, start, end) ? PLAIN | BASE64 : tableClass(src, start, end)
}

// below this many bytes a span goes straight to the table pass (a string and a native call
// per slice cost more than they save)
const TRIAL_MIN = 256
// the trial decode's output, one slice's worth (the process's only thread that decodes here)
let scratch: Buffer | null = null

/**
 * Whether src[start..end) is base64 by a trial decode of its whole 4-character groups, slice by
 * slice (decodeGroups' 32 KiB strings): Node's decoder skips a character outside both
 * alphabets and stops at an `=`, so a slice of n characters decodes to n / 4 * 3 bytes only
 * when every one of them is a base64 character; the at most 3 before the padding are looked
 * up. False for a span shorter than TRIAL_MIN, whatever it holds.
 */
export function decodesWhole (src: Uint8Array, start: number, end: number): boolean {
  if (end - start < TRIAL_MIN) return false
  const bytes = Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.byteLength)
  const padEnd = base64End(bytes, start, end)
  const whole = start + ((padEnd - start) & ~3)
  for (let i = whole; i < padEnd; i++) if (((BYTE_CLASS[bytes[i] as number] as number) & BASE64) === 0) return false
  scratch ??= Buffer.allocUnsafe(SLICE / 4 * 3)
  for (let s = start; s < whole; s += SLICE) {
    const e = Math.min(s + SLICE, whole)
    if (scratch.write(bytes.toString('latin1', s, e), 0, 'base64') !== (e - s) / 4 * 3) return false
  }
  return true
}

/**
 * spanClass by table lookups: four bytes per 32-bit read, two PAIR_CLASS lookups, no branch
 * (~3-4x the rate of a test per byte, bench/byte-checks.ts).
 */
export function tableClass (src: Uint8Array, start: number, end: number): number {
  const padEnd = base64End(src, start, end)
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength)
  let c = PLAIN | BASE64
  let i = start
  for (const last = padEnd - 4; i <= last; i += 4) {
    const w = view.getUint32(i)
    c &= (PAIR_CLASS[w >>> 16] as number) & (PAIR_CLASS[w & 0xffff] as number)
  }
  for (; i < padEnd; i++) c &= BYTE_CLASS[src[i] as number] as number
  return c
}

/** The end of the base64 characters of src[start..end) once its `=` padding (at most two) is left out. */
export function base64End (src: Uint8Array, start = 0, end = src.length): number {
  if (end > start && src[end - 1] === 0x3d) end--
  if (end > start && src[end - 1] === 0x3d) end--
  return end
}

/** Every byte before the padding is a base64 character (of either alphabet). */
export function isBase64 (src: Uint8Array): boolean {
  return (spanClass(src, 0, src.length) & BASE64) !== 0
}

/** How many bytes `src` decodes to (Buffer.byteLength(text, 'base64') for bytes). */
export function base64DecodedLength (src: Uint8Array): number {
  return Math.floor(base64End(src) * 3 / 4)
}

/**
 * Decodes `groups` whole groups of 4 characters from src[at..] into dst[to..] (3 bytes each).
 * The characters must have been checked (isBase64). Node decodes base64 only from strings:
 * each slice of the text becomes a short latin1 string that Node's native decoder writes
 * straight into dst (about a quarter of the CPU of the decoder in JS it replaced, GC included:
 * docs/benchmarks.md, "Snapshots").
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

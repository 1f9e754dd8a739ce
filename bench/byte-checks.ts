// Micro-benchmark of the two checks every byte of a snapshot chunk's data goes through before it
// is decoded: the bulk string literal has no control character and no backslash (the JSON
// scan's) and it is base64 (the snapshot sink's). spanClass (model/base64-bytes.ts) answers both
// for base64 by a trial decode with Node's native decoder (decodesWhole); beside it in the same
// run: the table pass it falls back to for other text (tableClass, both in one pass), the two
// answered one after the other by the same kind of pass, and by plain loops (one test or one
// lookup per byte).
// 64 MiB of base64 in ~700 KB chunks by default.
// Run: node bench/byte-checks.ts [MiB]
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { BASE64, PLAIN, spanClass, tableClass } from '../src/model/base64-bytes.ts'

const MiB = 1024 * 1024
const total = Number(process.argv[2] ?? 64) * MiB
const CHUNK = 512 * 1024
const chunks = Array.from({ length: total / CHUNK }, () => Buffer.from(randomBytes(CHUNK).toString('base64'), 'latin1'))

const BASE64_CHARS = new Uint8Array(256)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') BASE64_CHARS[c.charCodeAt(0)] = 1
function perByteBase64 (b: Buffer): boolean {
  let end = b.length
  while (end > 0 && b[end - 1] === 0x3d && b.length - end < 2) end--
  for (let i = 0; i < end; i++) if (BASE64_CHARS[b[i] as number] === 0) return false
  return true
}
function perBytePlain (b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const x = b[i] as number
    if (x < 0x20 || x === 0x5c) return false
  }
  return true
}

function rate (check: (b: Buffer) => boolean): number {
  const t0 = performance.now()
  for (let round = 0; round < 3; round++) for (const c of chunks) if (!check(c)) throw new Error('a valid chunk failed the check')
  return 3 * chunks.reduce((n, c) => n + c.length, 0) / MiB / ((performance.now() - t0) / 1000)
}

// the JSON scan's check as a pass of its own (two table lookups per 32-bit read)
const PLAIN_PAIR = new Uint8Array(65536)
for (let a = 0; a < 256; a++) {
  for (let b = 0; b < 256; b++) PLAIN_PAIR[a << 8 | b] = a >= 0x20 && a !== 0x5c && b >= 0x20 && b !== 0x5c ? 1 : 0
}
function plainPass (b: Buffer): boolean {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  let plain = 1
  let i = 0
  for (const last = b.length - 4; i <= last; i += 4) {
    const w = view.getUint32(i)
    plain &= (PLAIN_PAIR[w >>> 16] as number) & (PLAIN_PAIR[w & 0xffff] as number)
  }
  for (; i < b.length; i++) if ((b[i] as number) < 0x20 || b[i] === 0x5c) return false
  return plain === 1
}

process.stdout.write(`byte checks over ${total / MiB} MiB of data as base64 chunks (rates in MiB/s of base64 text), 3 rounds each; ${cpus().length} cores, Node ${process.version}\n`)
for (let round = 1; round <= 2; round++) {
  const trial = rate((b) => spanClass(b, 0, b.length) === (PLAIN | BASE64))
  const one = rate((b) => tableClass(b, 0, b.length) === (PLAIN | BASE64))
  const two = rate((b) => plainPass(b) && (tableClass(b, 0, b.length) & BASE64) !== 0)
  const perByte = rate((b) => perBytePlain(b) && perByteBase64(b))
  process.stdout.write(`round ${round}: spanClass (trial decode) ${trial.toFixed(0)} MiB/s; table pass (both) ${one.toFixed(0)} (${(trial / one).toFixed(2)}x); ` +
    `two passes ${two.toFixed(0)} (${(trial / two).toFixed(2)}x); per byte ${perByte.toFixed(0)} (${(trial / perByte).toFixed(2)}x)\n`)
}

// Micro-benchmark of the two checks every byte of a snapshot chunk's data goes through before it
// is decoded: isPlain (json-scan.ts: the bulk string literal has no control character and no
// backslash) and isBase64 (base64-bytes.ts), each beside the plain loop it replaced in the same
// run (one test, or one table lookup, per byte). 64 MiB of base64 in ~700 KB chunks by default.
// Run: node bench/byte-checks.ts [MiB]
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { isBase64 } from '../src/sinks/s3/base64-bytes.ts'
import { isPlain } from '../src/stages/json-scan.ts'

const MiB = 1024 * 1024
const total = Number(process.argv[2] ?? 64) * MiB
const CHUNK = 512 * 1024
const chunks = Array.from({ length: total / CHUNK }, () => Buffer.from(randomBytes(CHUNK).toString('base64'), 'latin1'))

const BASE64 = new Uint8Array(256)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') BASE64[c.charCodeAt(0)] = 1
function perByteBase64 (b: Buffer): boolean {
  let end = b.length
  while (end > 0 && b[end - 1] === 0x3d && b.length - end < 2) end--
  for (let i = 0; i < end; i++) if (BASE64[b[i] as number] === 0) return false
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

process.stdout.write(`byte checks over ${total / MiB} MiB of data as base64 chunks (rates in MiB/s of base64 text), 3 rounds each; ${cpus().length} cores, Node ${process.version}\n`)
for (let round = 1; round <= 2; round++) {
  const plain = rate((b) => isPlain(b, 0, b.length))
  const plainBase = rate(perBytePlain)
  const b64 = rate(isBase64)
  const b64Base = rate(perByteBase64)
  process.stdout.write(`round ${round}: isPlain ${plain.toFixed(0)} MiB/s vs per byte ${plainBase.toFixed(0)} (${(plain / plainBase).toFixed(2)}x); ` +
    `isBase64 ${b64.toFixed(0)} MiB/s vs per byte ${b64Base.toFixed(0)} (${(b64 / b64Base).toFixed(2)}x)\n`)
}

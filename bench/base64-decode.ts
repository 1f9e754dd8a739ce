// Micro-benchmark of decoding a snapshot chunk's base64 into a part buffer, four ways, in the
// same run: Buffer#write of the whole string (the chunk's data as JSON.parse gives it: the
// baseline: the old path made that string, and JSON.parse another), Buffer#write of an existing
// string, Buffer#write of 64 KiB latin1 slices of the message bytes, and the JS decoder
// over the bytes (src/sinks/s3/base64-bytes.ts, no string at all). Prints MiB/s of decoded
// bytes and the V8 young-generation collections each needed.
// Run: node --expose-gc bench/base64-decode.ts [MiB] (default 64)
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { PerformanceObserver } from 'node:perf_hooks'
import { constants } from 'node:perf_hooks'
import { base64End, decodeGroups, decodeTail } from '../src/sinks/s3/base64-bytes.ts'

const MiB = 1024 * 1024
const total = Number(process.argv[2] ?? 64) * MiB
const CHUNK = 512 * 1024
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const chunks = Array.from({ length: total / CHUNK }, () => Buffer.from(randomBytes(CHUNK).toString('base64'), 'latin1'))
const strings = chunks.map((c) => c.toString('latin1'))
const part = Buffer.allocUnsafe(CHUNK)

let minorGcs = 0
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minorGcs++
}).observe({ entryTypes: ['gc'] })

async function measure (label: string, decode: (i: number) => void): Promise<number> {
  gc?.()
  await new Promise((resolve) => setImmediate(resolve))
  minorGcs = 0
  const t0 = performance.now()
  for (let round = 0; round < 3; round++) for (let i = 0; i < chunks.length; i++) decode(i)
  const s = (performance.now() - t0) / 1000
  await new Promise((resolve) => setTimeout(resolve, 100)) // gc entries arrive asynchronously
  const rate = 3 * total / MiB / s
  process.stdout.write(`${label.padEnd(44)} ${rate.toFixed(0).padStart(5)} MiB/s, ${minorGcs} young-generation collections\n`)
  return rate
}

process.stdout.write(`base64 decode of ${total / MiB} MiB in ${CHUNK / 1024} KiB chunks, 3 rounds; ${cpus().length} cores, Node ${process.version}\n`)
const baseline = await measure('Buffer#write of a string of the bytes (baseline)', (i) => { part.write((chunks[i] as Buffer).toString('latin1'), 0, 'base64') })
await measure('Buffer#write of an existing string', (i) => { part.write(strings[i] as string, 0, 'base64') })
const sliced = await measure('Buffer#write(64 KiB latin1 slices of bytes)', (i) => {
  const c = chunks[i] as Buffer
  let to = 0
  for (let at = 0; at < c.length; at += 65536) to += part.write(c.toString('latin1', at, Math.min(c.length, at + 65536)), to, 'base64')
})
const js = await measure('decodeGroups over the bytes (sluice)', (i) => {
  const c = chunks[i] as Buffer
  const end = base64End(c)
  const groups = Math.floor(end / 4)
  decodeGroups(c, 0, groups, part, 0)
  decodeTail(c, groups * 4, end - groups * 4)
})
process.stdout.write(`ratio to the baseline: slices ${(sliced / baseline).toFixed(2)}, JS decoder ${(js / baseline).toFixed(2)}\n`)

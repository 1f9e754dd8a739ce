// Micro-benchmark of decoding a snapshot chunk's base64 into a part buffer, in the same run:
// Buffer#write of the whole chunk as one string (the baseline: what a decode from the parsed
// JSON string would cost), of an existing string (no string made), of 128 KiB latin1 slices
// of the message bytes (strings in V8's large-object space), and sluice's decodeGroups (32 KiB
// slices, src/model/base64-bytes.ts). Prints MiB/s of base64, the process's CPU per
// 256 MiB of it (the collector's threads included) and the young-generation collections.
// Run: node --expose-gc bench/base64-decode.ts [MiB] (default 64)
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { PerformanceObserver } from 'node:perf_hooks'
import { constants } from 'node:perf_hooks'
import { base64End, decodeGroups, decodeTail } from '../src/model/base64-bytes.ts'

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
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let round = 0; round < 3; round++) for (let i = 0; i < chunks.length; i++) decode(i)
  const s = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await new Promise((resolve) => setTimeout(resolve, 100)) // gc entries arrive asynchronously
  const mib = 3 * total / MiB
  const cpuMs = (cpu.user + cpu.system) / 1000 * 256 / mib
  process.stdout.write(`${label.padEnd(44)} ${(mib / s).toFixed(0).padStart(5)} MiB/s, ${cpuMs.toFixed(0).padStart(4)} ms CPU per 256 MiB, ${minorGcs} young-generation collections\n`)
  return cpuMs
}

process.stdout.write(`base64 decode of ${total / MiB} MiB in ${CHUNK / 1024} KiB chunks, 3 rounds; ${cpus().length} cores, Node ${process.version}\n`)
const baseline = await measure('Buffer#write of a string of the chunk (baseline)', (i) => { part.write((chunks[i] as Buffer).toString('latin1'), 0, 'base64') })
await measure('Buffer#write of an existing string', (i) => { part.write(strings[i] as string, 0, 'base64') })
const large = await measure('Buffer#write of 128 KiB latin1 slices', (i) => {
  const c = chunks[i] as Buffer
  let to = 0
  for (let at = 0; at < c.length; at += 131072) to += part.write(c.toString('latin1', at, Math.min(c.length, at + 131072)), to, 'base64')
})
const sluice = await measure('decodeGroups (sluice: 32 KiB slices)', (i) => {
  const c = chunks[i] as Buffer
  const end = base64End(c)
  const groups = Math.floor(end / 4)
  decodeGroups(c, 0, groups, part, 0)
  decodeTail(c, groups * 4, end - groups * 4)
})
process.stdout.write(`CPU against the baseline: 128 KiB slices ${(large / baseline).toFixed(2)}, sluice ${(sluice / baseline).toFixed(2)}\n`)

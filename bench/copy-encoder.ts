// Micro-benchmark of the COPY row encoder (the hot path's per-message work after decoding):
// time per row and heap retained per buffered row, beside the baseline of JSON.stringify of
// the same events measured in the same run. Run: node --expose-gc bench/copy-encoder.ts [rows]
import { cpus } from 'node:os'
import type { KafkaMessage } from '../src/kafka/types.ts'
import type { EntityEvent } from '../src/model/event.ts'
import { compose } from '../src/pipeline/stage.ts'
import { eventCopyRow } from '../src/sinks/timescale/event-sink.ts'
import { decodeJson } from '../src/stages/decode-json.ts'
import { validateEnvelope } from '../src/stages/validate-envelope.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'

const rows = Number(process.argv[2] ?? 50_000)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const stage = compose(decodeJson({ maxBytes: 1 << 20 }), validateEnvelope())
const origin: KafkaMessage = { topic: 't', partition: 0, offset: 0, key: null, value: null, timestamp: 0, headers: undefined, size: 0 }
const events: EntityEvent[] = [...sampleEvents({ count: rows, seed: 1 })].map((r) => stage.run(r.value, origin))

function measure (label: string, encode: (e: EntityEvent, i: number) => string): { us: number, bytes: number } {
  gc?.()
  const before = process.memoryUsage().heapUsed
  const kept = new Array<string>(events.length)
  const t0 = performance.now()
  for (let i = 0; i < events.length; i++) kept[i] = encode(events[i] as EntityEvent, i)
  const us = (performance.now() - t0) * 1000 / events.length
  gc?.()
  const bytes = (process.memoryUsage().heapUsed - before) / events.length
  process.stdout.write(`${label.padEnd(22)} ${us.toFixed(2)} us/row, ${bytes.toFixed(0)} B retained per row (${kept.length} rows)\n`)
  return { us, bytes }
}

process.stdout.write(`copy-encoder benchmark: ${rows} seed-mix events, ${cpus().length} cores, node ${process.version}\n`)
for (let round = 1; round <= 2; round++) { // the first round warms the JIT
  const base = measure('JSON.stringify', (e) => JSON.stringify(e))
  const copy = measure('encodeCopyRow (sluice)', (e, i) => eventCopyRow(e, { topic: 't', partition: 0, offset: i }))
  if (round === 2) process.stdout.write(`ratio to baseline: time ${(copy.us / base.us).toFixed(2)}, retained ${(copy.bytes / base.bytes).toFixed(2)}\n`)
}

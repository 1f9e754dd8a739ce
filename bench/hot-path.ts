// The worker's per-message work in one process, without Kafka or PostgreSQL: N seed-mix
// messages (default 300,000), each a Buffer of its own as a source hands it over, through the
// default pipeline's stages (decode, validate), the event log's buffer (COPY line), and per
// 5,000-row batch what the sink's write does (event-sink.ts): the id lines sorted and checked
// for repeats, their COPY chunks and the log's blocks (the row path for a batch with a
// repeated id), with ~50,000 messages
// held in flight as the in-flight budget allows (what the garbage collector sees). Beside it,
// in the same run, the baseline: JSON.parse of each message and JSON.stringify of it into
// the same chunks (the least a generic JSON-to-COPY tool does). Prints CPU microseconds per
// event (process.cpuUsage: the garbage collector's threads included), per round.
// Run: node --max-semi-space-size=8 bench/hot-path.ts [events] [rounds] (bin/sluice's flag).
import { availableParallelism } from 'node:os'
import type { KafkaMessage } from '../src/kafka/types.ts'
import type { EntityEvent } from '../src/model/event.ts'
import { compose } from '../src/pipeline/stage.ts'
import { distinctSortedIdLines, firstCopies, sortedIdLines } from '../src/sinks/timescale/event-ids.ts'
import type { BufferedRow } from '../src/sinks/timescale/event-ids.ts'
import { lineChunks } from '../src/sinks/timescale/copy-text.ts'
import { chunks } from '../src/sinks/timescale/event-sink.ts'
import { EventBuffer } from '../src/sinks/timescale/event-buffer.ts'
import { decodeJson } from '../src/stages/decode-json.ts'
import { validateEnvelope } from '../src/stages/validate-envelope.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'

const total = Number(process.argv[2] ?? 300_000)
const rounds = Number(process.argv[3] ?? 3)
const BATCH = 5000
const IN_FLIGHT = 10 // batches held
// the default pipeline's stages (pipelines/entity-events.ts)
const stage = compose(decodeJson({ maxBytes: 1 << 20, bulk: { key: 'data', minBytes: 64 * 1024 } }), validateEnvelope({ schemasDir: 'pipelines/schemas' }))
const values = [...sampleEvents({ count: total, seed: 7 })].map((r) => r.value)
let sent = 0 // kept, so that no work is optimised away

/** What the sink's COPY sends for lines. */
function chunk (lines: readonly string[]): Buffer[] {
  return [...chunks(lines, 0, lines.length)]
}

function message (i: number): KafkaMessage {
  const value = Buffer.from(values[i] as Buffer)
  return { topic: 'bench', partition: i % 6, offset: i, key: null, value, timestamp: 0, headers: undefined, size: value.length }
}

function sluice (): void {
  const held = new Array<unknown>(IN_FLIGHT)
  let buf = new EventBuffer()
  let batches = 0
  for (let i = 0; i < total; i++) {
    const m = message(i)
    buf.add(stage.run(m.value, m), m)
    if (buf.count === BATCH || i === total - 1) {
      const sorted = distinctSortedIdLines([buf.idLines])
      let ids: Buffer[]
      let log: Buffer[]
      if (sorted !== null) {
        ids = chunk(sorted)
        log = [...buf.text.chunks()]
      } else {
        // an id twice in the batch: the sink's row path
        const rows: BufferedRow[] = []
        buf.rows(rows)
        const { kept } = firstCopies(rows)
        ids = chunk(sortedIdLines(kept))
        log = [...lineChunks(kept)]
      }
      sent += ids.length + log.length
      // the batch leaving the in-flight window has committed: its buffer's blocks are reused
      const done = held[batches % IN_FLIGHT] as [EventBuffer] | undefined
      done?.[0].release()
      held[batches++ % IN_FLIGHT] = [buf, ids, log]
      buf = new EventBuffer()
    }
  }
}

function baseline (): void {
  const held = new Array<unknown>(IN_FLIGHT)
  let lines: string[] = []
  let origins: KafkaMessage[] = []
  let batches = 0
  for (let i = 0; i < total; i++) {
    const m = message(i)
    lines.push(JSON.stringify(JSON.parse((m.value as Buffer).toString('utf8')) as EntityEvent) + '\n')
    origins.push(m)
    if (lines.length === BATCH || i === total - 1) {
      const log = chunk(lines)
      sent += log.length
      held[batches++ % IN_FLIGHT] = [lines, origins, log]
      lines = []
      origins = []
    }
  }
}

function cpuMicros (run: () => void): number {
  const before = process.cpuUsage()
  run()
  const used = process.cpuUsage(before)
  return (used.user + used.system) / total
}

process.stdout.write(`hot-path benchmark: ${total.toLocaleString('en-US')} seed-mix events, ${availableParallelism()} cores, node ${process.version} ${process.execArgv.join(' ')}\n`)
for (let round = 1; round <= rounds; round++) {
  const base = cpuMicros(baseline)
  const own = cpuMicros(sluice)
  process.stdout.write(`round ${round}: sluice ${own.toFixed(1)} us/event, baseline (JSON.parse + JSON.stringify) ${base.toFixed(1)} us/event = ${(own / base).toFixed(2)}x\n`)
}
if (sent === 0) throw new Error('nothing was encoded')

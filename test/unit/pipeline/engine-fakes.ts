// In-memory edges for the runner and lane unit tests: a source that delivers given messages
// and records pauses and commits, a sink that records what it writes or fails on cue, and a
// database that understands the three statements the lane runs (offsets, dead letters,
// transaction control). Only the edges are fake; the runner, lanes and budget are the real ones.
import type { Pool } from 'pg'
import pino from 'pino'
import { SluiceError } from '../../../src/errors.ts'
import type { KafkaMessage, Source, SourceHandlers, TopicPartition, TopicPartitionOffset } from '../../../src/kafka/types.ts'
import { SluiceMetrics } from '../../../src/metrics/metrics.ts'
import { definePipeline } from '../../../src/pipeline/definition.ts'
import { PipelineRunner } from '../../../src/pipeline/runner.ts'
import type { RunnerOptions } from '../../../src/pipeline/runner.ts'
import type { Rejected, Sink, SinkBuffer, SinkWriteResult } from '../../../src/sinks/sink.ts'

export const TOPIC = 't'
const key = (topic: string, partition: number): string => `${topic}:${partition}`

export function message (partition: number, offset: number, value = `v${partition}-${offset}`): KafkaMessage {
  const v = Buffer.from(value)
  return { topic: TOPIC, partition, offset, key: null, value: v, timestamp: 0, headers: undefined, size: v.length }
}

/** Messages offsets [from, to) of a partition. */
export function messages (partition: number, from: number, to: number): KafkaMessage[] {
  return Array.from({ length: to - from }, (_, i) => message(partition, from + i))
}

export class FakeSource implements Source {
  readonly kind = 'rdkafka' as const
  handlers: SourceHandlers | null = null
  readonly calls: Array<[string, string[]]> = []
  readonly paused = new Set<string>()
  readonly commits: TopicPartitionOffset[][] = []
  async start (h: SourceHandlers): Promise<void> { this.handlers = h }
  pause (tps: TopicPartition[]): void {
    this.calls.push(['pause', tps.map((p) => key(p.topic, p.partition))])
    for (const p of tps) this.paused.add(key(p.topic, p.partition))
  }

  resume (tps: TopicPartition[]): void {
    this.calls.push(['resume', tps.map((p) => key(p.topic, p.partition))])
    for (const p of tps) this.paused.delete(key(p.topic, p.partition))
  }

  async commit (offsets: TopicPartitionOffset[]): Promise<void> { this.commits.push(offsets) }
  async seek (): Promise<void> {}
  assignments (): TopicPartition[] { return [] }
  isReady (): boolean { return true }
  async highWatermarks (): Promise<Map<string, number>> { return new Map() }
  async close (): Promise<void> {}

  async assign (partitions: number[]): Promise<TopicPartitionOffset[]> {
    const r = await (this.handlers as SourceHandlers).onAssign(partitions.map((partition) => ({ topic: TOPIC, partition })))
    await new Promise((resolve) => setImmediate(resolve)) // pauses are applied on the next turn
    return r
  }

  async revoke (partitions: number[]): Promise<void> {
    await (this.handlers as SourceHandlers).onRevoke(partitions.map((partition) => ({ topic: TOPIC, partition })))
  }

  deliver (msgs: KafkaMessage[]): void { (this.handlers as SourceHandlers).onBatch(msgs) }
}

interface Tx { records: string[], offsets: TopicPartitionOffset[], dlq: Array<{ offset: number, partition: number, code: string }> }

/** What the lane's transactions leave behind, committed only. */
export class FakeDb {
  readonly records: string[] = []
  readonly offsets = new Map<string, number>()
  readonly dlq: Array<{ offset: number, partition: number, code: string }> = []
  commits = 0
  /** transactions open right now (BEGIN without COMMIT or ROLLBACK yet) */
  open = 0
  /** COMMITs that fail with a connection error (transient) before one succeeds */
  failCommits = 0

  pool (): Pool {
    return {
      connect: async () => this.#client(),
      query: async (sql: string, params: unknown[]) => {
        if (!sql.includes('FROM sluice_offsets')) throw new Error(`the fake pool does not know: ${sql}`)
        const [, topics, parts] = params as [string, string[], number[]]
        const rows = topics.flatMap((topic, i) => {
          const o = this.offsets.get(key(topic, parts[i] as number))
          return o === undefined ? [] : [{ topic, partition: parts[i], next_offset: String(o) }]
        })
        return { rows }
      }
    } as unknown as Pool
  }

  /** A connection: its own transaction. */
  #client (): unknown {
    const db = this
    let tx: Tx | null = null
    return {
      tx: () => tx,
      async query (sql: string, params: unknown[] = []): Promise<{ rows: unknown[], rowCount: number }> {
        if (sql === 'BEGIN') {
          tx = { records: [], offsets: [], dlq: [] }
          db.open++
        } else if (sql === 'ROLLBACK') {
          if (tx !== null) db.open--
          tx = null
        } else if (sql === 'COMMIT') {
          if (db.failCommits > 0) {
            db.failCommits--
            throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
          }
          const t = tx as Tx
          db.records.push(...t.records)
          for (const o of t.offsets) db.offsets.set(key(o.topic, o.partition), Math.max(o.offset, db.offsets.get(key(o.topic, o.partition)) ?? -1))
          db.dlq.push(...t.dlq)
          db.commits++
          db.open--
          tx = null
        } else if (sql.includes('INTO sluice_offsets')) {
          const [, topics, parts, offs] = params as [string, string[], number[], string[]]
          topics.forEach((topic, i) => (tx as Tx).offsets.push({ topic, partition: parts[i] as number, offset: Number(offs[i]) }))
        } else if (sql.includes('INTO sluice_dlq')) {
          const p = params as [string[], string[], string[], string[], number[], string[], number[], string[]]
          p[2].forEach((code, i) => (tx as Tx).dlq.push({ code, partition: p[6][i] as number, offset: Number(p[7][i]) }))
          return { rows: [], rowCount: p[2].length }
        } else {
          throw new Error(`the fake database does not know: ${sql}`)
        }
        return { rows: [], rowCount: 0 }
      },
      release () {}
    }
  }
}

export class MemoryBuffer implements SinkBuffer<string> {
  readonly items: Array<{ record: string, origin: KafkaMessage }> = []
  bytes = 0
  #waiting: Promise<void> | null = null
  readonly #sink: MemorySink
  constructor (sink: MemorySink) { this.#sink = sink }
  get count (): number { return this.items.length }
  add (record: string, origin: KafkaMessage): void {
    this.items.push({ record, origin })
    this.bytes += origin.size
    // like a state dump started by a SNAPSHOT_TRIGGERED: work its batch's prepare waits for
    const hold = this.#sink.hold
    if (record.startsWith(this.#sink.holdPrefix) && hold !== null) {
      this.#waiting = hold
      hold.then(() => { if (this.#waiting === hold) this.#waiting = null }, () => {})
    }
  }

  waiting (): Promise<void> | null { return this.#waiting }
}

/** Records what it writes into the fake transaction; fails, rejects or waits on cue. */
export class MemorySink implements Sink<string> {
  readonly name = 'memory'
  /** writes that throw a transient error before one succeeds */
  failures = 0
  /** records starting with this are rejected by "the database" (dead-lettered) */
  rejectPrefix = 'reject'
  /** while set, writes wait for it */
  gate: Promise<void> | null = null
  /** every write's records (attempts that failed included), for batch-size checks */
  readonly writes: string[][] = []
  inFlight = 0
  maxInFlight = 0
  /** records starting with holdPrefix start work (`hold`) that prepare waits for */
  holdPrefix = 'hold'
  hold: Promise<void> | null = null

  createBuffer (): MemoryBuffer { return new MemoryBuffer(this) }

  async prepare (buffers: ReadonlyArray<SinkBuffer<string>>): Promise<void> {
    for (const b of buffers) await b.waiting?.()
  }

  async write (client: unknown, buffers: ReadonlyArray<SinkBuffer<string>>): Promise<SinkWriteResult> {
    const items = (buffers as MemoryBuffer[]).flatMap((b) => b.items)
    this.writes.push(items.map((i) => i.record))
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      if (this.gate !== null) await this.gate
      if (this.failures > 0) {
        this.failures--
        throw new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', 'the database went away')
      }
      const rejected: Rejected[] = []
      const tx = (client as { tx (): Tx }).tx()
      for (const i of items) {
        if (i.record.startsWith(this.rejectPrefix)) rejected.push({ origin: i.origin, error: new SluiceError('SLUICE_ERR_ROW_REJECTED', 'rejected') })
        else tx.records.push(i.record)
      }
      return { stored: items.length - rejected.length, duplicates: 0, rejected }
    } finally {
      this.inFlight--
    }
  }
}

/**
 * Stores its records ("snap..."), as "log:<record>", through the memory sink when the lane hands
 * them over (Sink.handOff: the S3 sink's event-log rows), else by itself.
 */
export class HandingSink implements Sink<string> {
  readonly name = 'handing'
  readonly #target: MemorySink
  readonly #handed = new WeakSet<object>()
  /** writes that stored the records themselves */
  selfWrites = 0

  constructor (target: MemorySink) { this.#target = target }
  createBuffer (): MemoryBuffer { return new MemoryBuffer(this.#target) }
  handsOffTo (): Sink<unknown> { return this.#target as Sink<unknown> }

  handOff (buffers: ReadonlyArray<SinkBuffer<string>>): SinkBuffer<unknown> | null {
    const out = new MemoryBuffer(this.#target)
    for (const b of buffers as MemoryBuffer[]) {
      for (const i of b.items) out.add(`log:${i.record}`, i.origin)
      this.#handed.add(b)
    }
    return out as SinkBuffer<unknown>
  }

  async write (client: unknown, buffers: ReadonlyArray<SinkBuffer<string>>): Promise<SinkWriteResult> {
    const bs = buffers as MemoryBuffer[]
    if (bs.every((b) => this.#handed.has(b))) return { stored: 0, duplicates: 0, rejected: [] }
    this.selfWrites++
    const tx = (client as { tx (): Tx }).tx()
    for (const b of bs) for (const i of b.items) tx.records.push(`log:${i.record}`)
    return { stored: bs.reduce((n, b) => n + b.count, 0), duplicates: 0, rejected: [] }
  }
}

export interface Engine {
  runner: PipelineRunner
  source: FakeSource
  sink: MemorySink
  /** the "snap" route's sink (engine's `handing`), else null */
  handing: HandingSink | null
  db: FakeDb
  metrics: SluiceMetrics
  fatal: SluiceError[]
}

/** A runner over the fakes: values starting with "bad" are poison for the stage. */
export function engine (over: Partial<Pick<RunnerOptions, 'batch' | 'inflight' | 'flushConcurrency' | 'retry' | 'dlq'>> & { handing?: boolean } = {}, db = new FakeDb()): Engine {
  const source = new FakeSource()
  const sink = new MemorySink()
  // with `handing`, values starting with "snap" take a second route, whose sink hands them to the first
  const handing = over.handing === true ? new HandingSink(sink) : null
  const metrics = new SluiceMetrics()
  const pipeline = definePipeline<string>({
    name: 'p',
    stage: {
      name: 'parse',
      run (v: Buffer | null): string {
        const s = String(v)
        if (s.startsWith('bad')) throw new SluiceError('SLUICE_ERR_DECODE', `cannot parse ${s}`)
        return s
      }
    },
    classify: (r: string) => handing !== null && r.startsWith('snap') ? 'snap' : 'main',
    routes: handing === null ? { main: sink } : { main: sink, snap: handing }
  })
  const runner = new PipelineRunner({
    source,
    pool: db.pool(),
    group: 'g',
    pipelines: new Map([[TOPIC, pipeline as never]]),
    dlq: over.dlq ?? null,
    metrics,
    logger: pino({ level: 'silent' }),
    batch: { maxRows: 1000, maxBytes: 1 << 30, lingerMs: 1, ...over.batch },
    inflight: { maxMessages: 100_000, maxBytes: 1 << 30, lowRatio: 0.5, ...over.inflight },
    retry: { baseMs: 1, maxMs: 5, ...over.retry },
    flushConcurrency: over.flushConcurrency ?? 3,
    revokeTimeoutMs: 1000
  })
  const fatal: SluiceError[] = []
  runner.on('fatal', (err: SluiceError) => fatal.push(err))
  return { runner, source, sink, handing, db, metrics, fatal }
}

/** Resolves when cond holds, checking after each turn of the event loop (no wall-clock budget). */
export async function until (cond: () => boolean, what: string, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error(`never happened: ${what}`)
}

/** A gate the sink waits on until opened. */
export function gate (): { promise: Promise<void>, open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

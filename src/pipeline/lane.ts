import PQueue from 'p-queue'
import type { Pool, PoolClient } from 'pg'
import type { Logger } from 'pino'
import { SluiceError } from '../errors.ts'
import type { TopicPartitionOffset } from '../kafka/types.ts'
import type { SluiceMetrics } from '../metrics/metrics.ts'
import { retry } from '../retry.ts'
import type { DlqEntry } from '../sinks/dlq/dlq-entry.ts'
import { writeDlqRows } from '../sinks/dlq/dlq-table.ts'
import type { DlqPublisher } from '../sinks/dlq/dlq-topic.ts'
import type { Sink, SinkBuffer, SinkWriteResult } from '../sinks/sink.ts'
import { classifyPgError } from '../db/pg-errors.ts'
import type { InflightBudget, PartitionLoad } from './inflight-budget.ts'
import { storeOffsets } from './offset-store.ts'
import { PartitionPending } from './partition-pending.ts'
import { release } from './release.ts'

export interface LaneOptions {
  pool: Pool
  group: string
  dlq: DlqPublisher | null
  metrics: SluiceMetrics
  budget: InflightBudget
  logger: Logger
  maxRows: number
  maxBytes: number
  lingerMs: number
  retryBaseMs: number
  retryMaxMs: number
  /** aborted when retrying must stop (shutdown past its grace period) */
  signal: AbortSignal
  /** false once the partition was revoked: its pending work is dropped, not written */
  owns (key: string): boolean
  onDurable (offsets: TopicPartitionOffset[]): void
  onFatal (err: SluiceError): void
  /** the lowest offset a sink still needs per partition (Sink.heldOffset), if any */
  heldOffset? (topic: string, partition: number): number | undefined
}

type Batch = Map<string, PartitionPending>

/**
 * A lane owns a fixed subset of partitions and writes their batches one at a time, so each
 * partition's offsets are committed in order; lanes write in parallel. A batch is one
 * transaction: every route's rows, the dead letters and the next offsets. A batch is sealed
 * at the batch limits (rows, bytes) or when the lane is idle and the linger time passed, and
 * waits in the lane's queue for the transaction before it: whatever arrives during a slow
 * write, no batch grows past the limits.
 *
 * A partition whose sink work started by a record still runs (SinkBuffer.waiting: a state
 * dump for a SNAPSHOT_TRIGGERED) stays out of the batches sealed meanwhile and goes in whole
 * once that work settles: only its own messages wait for it, not its lane's other partitions.
 */
export class Lane {
  readonly #o: LaneOptions
  /** sealed batches waiting for this lane's transaction; one runs at a time */
  readonly #queue = new PQueue({ concurrency: 1 })
  #open: Batch = new Map()
  #messages = 0
  #bytes = 0
  #timer: NodeJS.Timeout | null = null
  readonly #linger = (): void => { this.#timer = null; this.#seal() }
  /** partitions the runner gave this lane (it gives a new one to the lane with fewest) */
  partitions = 0

  constructor (opts: LaneOptions) {
    this.#o = opts
  }

  /** The open batch's work of a partition, made on first use. */
  partition (load: PartitionLoad, topic: string, partition: number): PartitionPending {
    let p = this.#open.get(load.key)
    if (p === undefined) {
      p = new PartitionPending(topic, partition, load)
      this.#open.set(load.key, p)
    }
    return p
  }

  /** Called once per consumed message after it was added to its partition's pending work. */
  added (p: PartitionPending, bytes: number): void {
    // a partition waiting for its sink work neither counts towards the limits nor lingers:
    // it is sealed when that work settles (#wait)
    if (p.awaited !== null) return
    this.#messages++
    this.#bytes += bytes
    if (this.#messages >= this.#o.maxRows || this.#bytes >= this.#o.maxBytes) {
      this.#seal()
    } else if (this.#timer === null && this.#idle()) {
      this.#timer = setTimeout(this.#linger, this.#o.lingerMs)
    }
  }

  /** Drops the open batch's work of revoked partitions (sealed batches drop it when they start). */
  drop (keys: Iterable<string>): void {
    for (const key of keys) {
      const p = this.#open.get(key)
      if (p === undefined) continue
      this.#open.delete(key)
      // a partition that waited was not counted (added), or not all of it
      this.#messages = Math.max(0, this.#messages - p.messages)
      this.#bytes = Math.max(0, this.#bytes - p.bytes)
      this.#o.budget.release(p.load, p.messages, p.bytes)
    }
  }

  /** Writes everything pending and resolves when nothing is pending or queued. */
  async drain (): Promise<void> {
    while (this.#open.size > 0 || !this.#idle()) {
      this.#seal()
      await this.#queue.onIdle()
      // what is still open waits for its sink work: sealed when that settles
      const waits = [...this.#open.values()].map((p) => p.awaited).filter((w) => w !== null)
      if (waits.length > 0) await Promise.all(waits)
    }
  }

  /** Resolves when the batch being written (if any) has settled. */
  async settled (): Promise<void> {
    await this.#queue.onPendingZero()
  }

  #idle (): boolean {
    return this.#queue.size === 0 && this.#queue.pending === 0
  }

  #seal (): void {
    if (this.#timer !== null) { clearTimeout(this.#timer); this.#timer = null }
    if (this.#open.size === 0) return
    const batch = this.#open
    this.#open = new Map()
    this.#messages = 0
    this.#bytes = 0
    for (const [key, p] of batch) {
      const w = p.waiting()
      if (w === null) continue
      batch.delete(key)
      this.#open.set(key, p)
      this.#wait(p, w)
    }
    if (batch.size === 0) return
    // #flush reports a failure that is not retried to onFatal itself
    this.#queue.add(async () => { await this.#flush(batch) }).catch((err) => this.#o.onFatal(classifyPgError(err, 'writing a batch')))
  }

  /** Seals the partition (with whatever else is open) once its sink work settles. */
  #wait (p: PartitionPending, w: Promise<void>): void {
    if (p.awaited === w) return
    p.awaited = w
    w.then(() => {
      if (p.awaited !== w) return
      p.awaited = null
      // a batch being written seals what is open when it ends (#flush)
      if (this.#idle()) this.#seal()
    }, () => {})
  }

  async #flush (batch: Batch): Promise<void> {
    const o = this.#o
    try {
      await retry(async () => {
        for (const [key, p] of batch) {
          if (!o.owns(key)) {
            batch.delete(key)
            o.budget.release(p.load, p.messages, p.bytes)
          }
        }
        if (batch.size > 0) await this.#commit(batch)
      }, {
        baseMs: o.retryBaseMs,
        maxMs: o.retryMaxMs,
        signal: o.signal,
        classify: (raw) => classifyPgError(raw, 'writing a batch'),
        onRetry: (err, attempt, delayMs) => {
          o.metrics.retries.inc({ operation: 'flush', code: err.code })
          o.logger.warn({ code: err.code, attempt, delayMs: Math.round(delayMs), reason: err.message }, 'batch failed, retrying')
        }
      })
    } catch (raw) {
      const err = classifyPgError(raw, 'writing a batch')
      if (o.signal.aborted) {
        o.logger.error({ err, code: err.code }, 'giving up a batch at shutdown; it will be read again on restart')
      } else if (err.poison) {
        // a sink's write dead-letters what it rejects: a poison error for a whole batch is a bug
        o.onFatal(new SluiceError('SLUICE_ERR_PIPELINE', `a sink failed a whole batch with a poison error: ${err.message}`, { cause: err }))
      } else {
        o.onFatal(err)
      }
    } finally {
      // what arrived meanwhile goes next (up to the batch limits), unless a sealed batch waits
      if (this.#queue.size === 0) this.#seal()
    }
  }

  /** Produces dead letters to their topics (before the batch commits: at least once). */
  async #publishDeadLetters (entries: DlqEntry[]): Promise<void> {
    if (entries.length === 0 || this.#o.dlq === null) return
    try {
      await this.#o.dlq.publish(entries)
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_DLQ_PRODUCE', `producing dead letters: ${(err as Error).message}`, { cause: err })
    }
  }

  async #commit (batch: Batch): Promise<void> {
    const o = this.#o
    const groups = new Map<string, { pipeline: string, route: string, sink: Sink<unknown>, buffers: SinkBuffer<unknown>[] }>()
    const dlq: DlqEntry[] = []
    const offsets: TopicPartitionOffset[] = []
    let messages = 0
    let bytes = 0
    for (const p of batch.values()) {
      for (const rb of p.routes.values()) {
        const k = rb.pipeline + '\u0000' + rb.route
        let g = groups.get(k)
        if (g === undefined) {
          g = { pipeline: rb.pipeline, route: rb.route, sink: rb.sink, buffers: [] }
          groups.set(k, g)
        }
        g.buffers.push(rb.buffer)
      }
      for (const e of p.dlq) dlq.push(e)
      offsets.push({ topic: p.topic, partition: p.partition, offset: p.nextOffset })
      messages += p.messages
      bytes += p.bytes
    }

    // the sinks' network I/O (S3 uploads, state dumps, their events) and the stages' dead
    // letters before the transaction: no connection idles in it waiting for S3 or Kafka
    for (const g of groups.values()) await g.sink.prepare?.(g.buffers)
    handOffs(groups.values())
    await this.#publishDeadLetters(dlq)
    const published = dlq.length
    const endTimer = o.metrics.copyDuration.startTimer()
    let client: PoolClient
    try {
      client = await o.pool.connect()
    } catch (err) {
      throw classifyPgError(err, 'connecting to PostgreSQL')
    }
    const results: Array<{ pipeline: string, route: string, r: SinkWriteResult }> = []
    let failed: unknown = null
    try {
      await client.query('BEGIN')
      for (const g of groups.values()) {
        const r = await g.sink.write(client, g.buffers)
        results.push({ pipeline: g.pipeline, route: g.route, r })
        for (const rej of r.rejected) {
          dlq.push({ pipeline: g.pipeline, stage: `sink:${g.sink.name}`, code: rej.error.code, message: rej.error.message, attempts: 1, origin: rej.origin })
        }
      }
      // rows the database rejected are known only now
      if (dlq.length > published) await this.#publishDeadLetters(dlq.slice(published))
      await writeDlqRows(client, dlq)
      // an offset hold (unfinished sink work) keeps the stored offset at the work's first message
      if (o.heldOffset !== undefined) {
        for (const off of offsets) off.offset = Math.min(off.offset, o.heldOffset(off.topic, off.partition) ?? off.offset)
      }
      await storeOffsets(client, o.group, offsets)
      await client.query('COMMIT')
    } catch (err) {
      failed = err
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      // a connection that failed mid-transaction is discarded, not reused
      client.release(failed !== null)
    }
    endTimer()
    for (const g of groups.values()) g.sink.committed?.(g.buffers)

    o.metrics.batchRows.observe(messages)
    o.metrics.batchBytes.observe(bytes)
    for (const { pipeline, route, r } of results) {
      o.metrics.stored.inc({ pipeline, route }, r.stored)
      countDuplicates(o, pipeline, route, r)
    }
    for (const e of dlq) o.metrics.deadLettered.inc({ pipeline: e.pipeline, code: e.code })
    for (const p of batch.values()) o.budget.release(p.load, p.messages, p.bytes)
    o.onDurable(offsets)
    // nothing reads a durable batch's messages any more: large values are freed now, not at the next GC
    for (const p of batch.values()) for (const v of p.large) release(v)
  }
}

/**
 * Records a sink stores through another sink of the batch (the S3 sink's event-log rows) join
 * that sink's buffers: one write of theirs per batch (Sink.handOff).
 */
function handOffs (groups: Iterable<{ sink: Sink<unknown>, buffers: Array<SinkBuffer<unknown>> }>): void {
  const all = [...groups]
  for (const g of all) {
    const to = g.sink.handsOffTo?.()
    if (to === undefined || to === g.sink) continue
    const target = all.find((x) => x.sink === to)
    if (target === undefined) continue
    const b = g.sink.handOff?.(g.buffers) ?? null
    if (b !== null) target.buffers.push(b)
  }
}

/** Per batch at most this many differing copies are logged one by one; the rest in a summary. */
const DIFFERING_LOGGED = 100

/** Duplicates by kind; each copy whose content differs from the stored one is logged with both origins. */
function countDuplicates (o: LaneOptions, pipeline: string, route: string, r: SinkWriteResult): void {
  if (r.duplicates === 0) return
  let classified = 0
  for (const [kind, n] of Object.entries(r.duplicateKinds ?? {})) {
    if (n === undefined || n === 0) continue
    o.metrics.duplicates.inc({ pipeline, route, kind }, n)
    classified += n
  }
  if (classified < r.duplicates) o.metrics.duplicates.inc({ pipeline, route, kind: 'unclassified' }, r.duplicates - classified)
  const differing = r.differing ?? []
  for (const d of differing.slice(0, DIFFERING_LOGGED)) {
    o.logger.warn({ eventId: d.eventId, stored: d.stored, dropped: d.dropped, pipeline, route },
      'event id stored before with other content: this copy is dropped (a producer reusing event ids?)')
  }
  if (differing.length > DIFFERING_LOGGED) {
    o.logger.warn({ more: differing.length - DIFFERING_LOGGED, pipeline, route }, 'more copies with other content than a stored event id dropped in this batch')
  }
}

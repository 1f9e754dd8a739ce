import { setTimeout as sleep } from 'node:timers/promises'
import type { Pool, PoolClient } from 'pg'
import type PQueue from 'p-queue'
import type { Logger } from 'pino'
import { SluiceError } from '../errors.ts'
import type { TopicPartitionOffset } from '../kafka/types.ts'
import type { SluiceMetrics } from '../metrics/metrics.ts'
import type { DlqEntry } from '../sinks/dlq/dlq-entry.ts'
import { writeDlqRows } from '../sinks/dlq/dlq-table.ts'
import type { DlqPublisher } from '../sinks/dlq/dlq-topic.ts'
import type { Sink, SinkBuffer } from '../sinks/sink.ts'
import { classifyPgError } from '../db/pg-errors.ts'
import { backoffDelay } from '../retry.ts'
import type { InflightBudget } from './inflight-budget.ts'
import { storeOffsets } from './offset-store.ts'
import { PartitionPending } from './partition-pending.ts'
import { release } from './release.ts'

export interface LaneOptions {
  pool: Pool
  group: string
  queue: PQueue
  dlq: DlqPublisher | null
  metrics: SluiceMetrics
  budget: InflightBudget
  logger: Logger
  maxRows: number
  maxBytes: number
  lingerMs: number
  retryBaseMs: number
  retryMaxMs: number
  /** false once the partition was revoked: its pending work is dropped, not written */
  owns (key: string): boolean
  /** true when retrying must stop (shutdown past its grace period) */
  abandoned (): boolean
  onDurable (offsets: TopicPartitionOffset[]): void
  onFatal (err: SluiceError): void
  /** the lowest offset a sink still needs per partition (Sink.heldOffset), if any */
  heldOffset? (topic: string, partition: number): number | undefined
}

type Batch = Map<string, PartitionPending>

/**
 * A lane owns a fixed subset of partitions and flushes them one batch at a time, so each
 * partition's offsets are committed in order; lanes flush in parallel (bounded by the queue).
 * A batch is one transaction: every route's rows, the dead letters and the next offsets.
 */
export class Lane {
  readonly #o: LaneOptions
  #pending: Batch = new Map()
  #messages = 0
  #bytes = 0
  #timer: NodeJS.Timeout | null = null
  #flushing: Promise<void> | null = null
  readonly #flushNow = (): void => { this.#timer = null; this.#start() }

  constructor (opts: LaneOptions) {
    this.#o = opts
  }

  get pendingMessages (): number { return this.#messages }
  get flushing (): boolean { return this.#flushing !== null }

  /** The pending work of a partition, made on first use. */
  partition (key: string, topic: string, partition: number): PartitionPending {
    let p = this.#pending.get(key)
    if (p === undefined) {
      p = new PartitionPending(topic, partition)
      this.#pending.set(key, p)
    }
    return p
  }

  /** Called once per consumed message after it was added to its partition's pending work. */
  added (bytes: number): void {
    this.#messages++
    this.#bytes += bytes
    if (this.#messages >= this.#o.maxRows || this.#bytes >= this.#o.maxBytes) {
      this.#start()
    } else if (this.#timer === null && this.#flushing === null) {
      this.#timer = setTimeout(this.#flushNow, this.#o.lingerMs)
    }
  }

  /** Drops the pending (not yet flushing) work of revoked partitions. */
  drop (keys: ReadonlySet<string>): void {
    for (const key of keys) {
      const p = this.#pending.get(key)
      if (p === undefined) continue
      this.#pending.delete(key)
      this.#messages -= p.messages
      this.#bytes -= p.bytes
      this.#o.budget.release(p.messages, p.bytes)
    }
  }

  /** Flushes everything pending and resolves when nothing is pending or flushing. */
  async drain (): Promise<void> {
    while (this.#pending.size > 0 || this.#flushing !== null) {
      if (this.#flushing === null) this.#start()
      await this.#flushing
    }
  }

  /** Resolves when the flush in progress (if any) has settled. */
  async settled (): Promise<void> {
    if (this.#flushing !== null) await this.#flushing
  }

  #start (): void {
    if (this.#timer !== null) { clearTimeout(this.#timer); this.#timer = null }
    if (this.#flushing !== null || this.#pending.size === 0) return
    const batch = this.#pending
    this.#pending = new Map()
    this.#messages = 0
    this.#bytes = 0
    this.#flushing = this.#o.queue.add(() => this.#flush(batch)).finally(() => {
      this.#flushing = null
      // what arrived during the flush goes next: batches grow with the database's latency
      if (this.#pending.size > 0) this.#start()
    })
  }

  async #flush (batch: Batch): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      for (const [key, p] of batch) {
        if (!this.#o.owns(key)) {
          batch.delete(key)
          this.#o.budget.release(p.messages, p.bytes)
        }
      }
      if (batch.size === 0) return
      try {
        await this.#commit(batch)
        return
      } catch (raw) {
        const err = classifyPgError(raw, 'writing a batch')
        if (err.fatal) {
          this.#o.onFatal(err)
          return
        }
        this.#o.metrics.retries.inc({ operation: 'flush', code: err.code })
        if (this.#o.abandoned()) {
          this.#o.logger.error({ err, attempt }, 'giving up a batch at shutdown; it will be read again on restart')
          return
        }
        const delay = backoffDelay(attempt, this.#o.retryBaseMs, this.#o.retryMaxMs)
        this.#o.logger.warn({ code: err.code, attempt, delayMs: Math.round(delay), reason: err.message }, 'batch failed, retrying')
        await sleep(delay)
      }
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

    const endTimer = o.metrics.copyDuration.startTimer()
    let client: PoolClient
    try {
      client = await o.pool.connect()
    } catch (err) {
      throw classifyPgError(err, 'connecting to PostgreSQL')
    }
    const results: Array<{ pipeline: string, route: string, stored: number, duplicates: number }> = []
    let failed: unknown = null
    try {
      await client.query('BEGIN')
      for (const g of groups.values()) {
        const r = await g.sink.write(client, g.buffers)
        results.push({ pipeline: g.pipeline, route: g.route, stored: r.stored, duplicates: r.duplicates })
        for (const rej of r.rejected) {
          dlq.push({ pipeline: g.pipeline, stage: `sink:${g.sink.name}`, code: rej.error.code, message: rej.error.message, attempts: 1, origin: rej.origin })
        }
      }
      if (dlq.length > 0 && o.dlq !== null) {
        try {
          await o.dlq.publish(dlq)
        } catch (err) {
          throw new SluiceError('SLUICE_ERR_DLQ_PRODUCE', `producing dead letters: ${(err as Error).message}`, { cause: err })
        }
      }
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

    o.metrics.batchRows.observe(messages)
    o.metrics.batchBytes.observe(bytes)
    for (const r of results) {
      o.metrics.stored.inc({ pipeline: r.pipeline, route: r.route }, r.stored)
      if (r.duplicates > 0) o.metrics.duplicates.inc({ pipeline: r.pipeline, route: r.route }, r.duplicates)
    }
    for (const e of dlq) o.metrics.deadLettered.inc({ pipeline: e.pipeline, code: e.code })
    o.budget.release(messages, bytes)
    o.onDurable(offsets)
    // nothing reads a durable batch's messages any more: large values are freed now, not at the next GC
    for (const p of batch.values()) for (const v of p.large) release(v)
  }
}

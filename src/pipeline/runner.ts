import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { SluiceError, errorMessage, isSluiceError } from '../errors.ts'
import type { KafkaMessage, Source, TopicPartition, TopicPartitionOffset } from '../kafka/types.ts'
import { tpKey } from '../kafka/types.ts'
import type { SluiceMetrics } from '../metrics/metrics.ts'
import type { DlqPublisher } from '../sinks/dlq/dlq-topic.ts'
import type { Sink } from '../sinks/sink.ts'
import { classifyPgError } from '../db/pg-errors.ts'
import { retry } from '../retry.ts'
import type { PipelineDefinition } from './definition.ts'
import { InflightBudget } from './inflight-budget.ts'
import { Lane } from './lane.ts'
import { loadOffsets } from './offset-store.ts'
import { PartitionStates } from './partition-states.ts'
import type { PartitionState, RunnerStatus } from './partition-states.ts'

export interface RunnerOptions {
  source: Source
  pool: Pool
  group: string
  /** the pipeline that handles each topic */
  pipelines: ReadonlyMap<string, PipelineDefinition<unknown>>
  dlq: DlqPublisher | null
  metrics: SluiceMetrics
  logger: Logger
  batch: { maxRows: number, maxBytes: number, lingerMs: number }
  inflight: { maxMessages: number, maxBytes: number, lowRatio: number }
  retry: { baseMs: number, maxMs: number }
  flushConcurrency: number
  /** how long a revocation waits for an in-flight batch before letting the partition go */
  revokeTimeoutMs?: number
}

/**
 * Runs pipelines over a source: every message is decoded, classified and buffered on the
 * consuming tick (no promise per message); lanes write batches; offsets move only with the
 * rows they cover. Emits 'fatal' (SluiceError) when the worker must stop.
 */
export class PipelineRunner extends EventEmitter {
  readonly #o: RunnerOptions
  readonly #lanes: Lane[]
  readonly #budget: InflightBudget
  readonly #parts: PartitionStates
  /** every distinct sink of the pipelines (for their optional hooks) */
  readonly #sinks: ReadonlyArray<Sink<unknown>>
  #stopping = false
  /** aborted at stop: assignment stops retrying */
  readonly #stop = new AbortController()
  /** aborted when the shutdown grace period is over: lanes stop retrying */
  readonly #abandon = new AbortController()
  #started = false
  #full = false

  constructor (opts: RunnerOptions) {
    super()
    this.#o = opts
    this.#budget = new InflightBudget({ ...opts.inflight, onChange: () => this.#budgetChanged() })
    this.#parts = new PartitionStates(opts.source, opts.metrics, this.#budget, opts.logger)
    this.#sinks = [...new Set([...opts.pipelines.values()].flatMap((p) => Object.values(p.routes)))]
    const holders = this.#sinks.filter((s) => s.heldOffset !== undefined)
    this.#lanes = []
    for (let i = 0; i < opts.flushConcurrency; i++) {
      this.#lanes.push(new Lane({
        pool: opts.pool,
        group: opts.group,
        dlq: opts.dlq,
        metrics: opts.metrics,
        budget: this.#budget,
        logger: opts.logger.child({ lane: i }),
        ...opts.batch,
        retryBaseMs: opts.retry.baseMs,
        retryMaxMs: opts.retry.maxMs,
        signal: this.#abandon.signal,
        owns: (key) => this.#parts.owns(key),
        onDurable: (offsets) => this.#durable(offsets),
        onFatal: (err) => this.#fatal(err),
        heldOffset: holders.length === 0 ? undefined : (topic, partition) => heldOffset(holders, topic, partition)
      }))
    }
  }

  get budget (): InflightBudget { return this.#budget }

  async start (): Promise<void> {
    this.#started = true
    await this.#o.source.start({
      onAssign: (tps) => this.#assign(tps),
      onRevoke: (tps) => this.#revoke(tps),
      onBatch: (messages) => this.#batch(messages),
      onError: (err) => this.#fatal(isSluiceError(err) ? err : new SluiceError('SLUICE_ERR_KAFKA_FATAL', err.message, { cause: err })),
      onRetry: (operation, err) => this.#o.metrics.retries.inc({ operation, code: err.code })
    })
  }

  ready (): boolean {
    return this.#started && !this.#stopping && this.#o.source.isReady()
  }

  pause (tps?: TopicPartition[]): void { this.#parts.adminPause(tps) }
  resume (tps?: TopicPartition[]): void { this.#parts.adminResume(tps) }
  /** The group's desired pauses (src/control/group-control.ts), now and after each rebalance. */
  setAdminPauses (all: boolean, tps: readonly TopicPartition[]): void { this.#parts.setAdminPauses(all, tps) }
  /** Partitions this worker owns right now, with their positions. */
  owned (tp: TopicPartition): { position: number, stored: number, paused: boolean } | undefined {
    return this.#parts.get(tp.topic, tp.partition)
  }

  /**
   * Moves a paused partition this worker owns to `offset` (an operator's offset move, stored
   * already): what its lane holds of it is dropped, the source seeks. false if not owned.
   */
  async seek (tp: TopicPartition, offset: number): Promise<boolean> {
    const state = this.#parts.get(tp.topic, tp.partition)
    if (state === undefined) return false
    for (const lane of this.#lanes) lane.drop(new Set([state.key]))
    await Promise.all(this.#lanes.map((l) => l.settled()))
    await this.#o.source.seek(tp, offset)
    this.#parts.moved(tp, offset)
    return true
  }

  async status (): Promise<RunnerStatus> {
    return await this.#parts.status()
  }

  /** Stops fetching, writes what was consumed, stores offsets. Resolves when done or abandoned. */
  async stop (graceMs: number): Promise<boolean> {
    if (this.#stopping) return false
    this.#stopping = true
    this.#stop.abort()
    this.#parts.setStopping()
    const drained = Promise.all(this.#lanes.map((l) => l.drain())).then(() => true)
    const timer = sleep(graceMs, false, { ref: false })
    const clean = await Promise.race([drained, timer])
    if (!clean) {
      this.#abandon.abort()
      this.#o.logger.error({ graceMs }, 'shutdown grace period exceeded; unwritten messages will be read again on restart')
    }
    await this.#o.source.close().catch((err) => this.#o.logger.warn({ err }, 'closing the source'))
    return clean
  }

  /** The lane with the fewest partitions: a partition keeps it while assigned. */
  #laneFor (): Lane {
    let best = this.#lanes[0] as Lane
    for (const l of this.#lanes) if (l.partitions < best.partitions) best = l
    best.partitions++
    return best
  }

  #budgetChanged (): void {
    const b = this.#budget
    if (b.over !== this.#full) {
      this.#full = b.over
      if (b.over) this.#o.logger.warn({ messages: b.messages, bytes: b.bytes }, 'in-flight budget full: pausing every partition')
      else this.#o.logger.info({ messages: b.messages, bytes: b.bytes }, 'in-flight budget drained: resuming partitions')
    }
    this.#parts.apply()
  }

  async #assign (tps: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    return await retry(async () => {
      const stored = await loadOffsets(this.#o.pool, this.#o.group, tps)
      await this.#sinkHook('assigned', tps)
      this.#parts.assigned(tps, stored)
      this.#o.logger.info({ partitions: tps.map((p) => tpKey(p.topic, p.partition)), stored }, 'partitions assigned')
      return stored
    }, {
      ...this.#o.retry,
      signal: this.#stop.signal,
      classify: (raw) => classifyPgError(raw, 'loading stored offsets'),
      onRetry: (err, attempt, delayMs) => {
        this.#o.metrics.retries.inc({ operation: 'load-offsets', code: err.code })
        this.#o.logger.warn({ code: err.code, attempt, delayMs: Math.round(delayMs) }, 'cannot load stored offsets, retrying')
      }
    })
  }

  async #revoke (tps: TopicPartition[]): Promise<void> {
    const gone = this.#parts.revoked(tps)
    for (const p of gone.values()) if (p.lane !== undefined) p.lane.partitions--
    const keys = [...gone.keys()]
    for (const lane of this.#lanes) lane.drop(keys)
    // a batch already being written may hold these partitions: give it a moment to land
    const wait = Promise.all(this.#lanes.map((l) => l.settled()))
    await Promise.race([wait, sleep(this.#o.revokeTimeoutMs ?? 10_000, undefined, { ref: false })])
    await this.#sinkHook('revoked', tps)
    this.#o.logger.info({ partitions: keys }, 'partitions revoked')
  }

  #batch (messages: KafkaMessage[]): void {
    const o = this.#o
    // sluice_messages_consumed_total per topic: counted over runs of one topic (a fetch
    // holds few), one label lookup per run, no closure per message
    let runTopic = ''
    let run = 0
    // a fetch holds runs of one partition: its state and pipeline are looked up once per run
    // (each lookup builds and hashes a key); nothing is revoked while this loop runs
    let lastTopic = ''
    let lastPartition = -1
    let state: PartitionState | undefined
    let pipeline: PipelineDefinition<unknown> | undefined
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as KafkaMessage
      if (m.partition !== lastPartition || m.topic !== lastTopic) {
        state = this.#parts.get(m.topic, m.partition)
        pipeline = o.pipelines.get(m.topic)
        lastTopic = m.topic
        lastPartition = m.partition
      }
      if (state === undefined) continue // revoked, or not ours: stale
      if (pipeline === undefined) continue
      const lane = state.lane ??= this.#laneFor()
      const pending = lane.partition(state, m.topic, m.partition)
      try {
        const record = pipeline.stage.run(m.value, m)
        const route = pipeline.classify(record)
        const sink = pipeline.routes[route]
        if (sink === undefined) throw new SluiceError('SLUICE_ERR_ROUTE', `no sink for route "${route}" in pipeline ${pipeline.name}`)
        pending.add(pipeline.name, route, sink, record, m)
      } catch (thrown) {
        // whatever a stage, the classifier or a sink's encoder throws for one message is that
        // message's fault: poison (SLUICE_ERR_STAGE when unclassified), never the worker's end
        const err = isSluiceError(thrown) ? thrown : new SluiceError('SLUICE_ERR_STAGE', `pipeline ${pipeline.name} threw: ${errorMessage(thrown)}`, { cause: thrown })
        if (!err.poison) {
          this.#fatal(err)
          return
        }
        pending.dlq.push({
          pipeline: pipeline.name,
          stage: (err as { stage?: string }).stage ?? 'pipeline',
          code: err.code,
          message: err.message,
          attempts: 1,
          origin: m
        })
      }
      pending.consumed(m)
      state.position = m.offset + 1
      // counted before the lane may seal the batch: what a batch releases was counted first
      this.#budget.add(state, 1, m.size)
      if (m.topic !== runTopic) {
        if (run > 0) this.#countConsumed(runTopic, run)
        runTopic = m.topic
        run = 0
      }
      run++
      lane.added(pending, m.size)
    }
    if (run > 0) this.#countConsumed(runTopic, run)
  }

  #countConsumed (topic: string, n: number): void {
    this.#o.metrics.consumed.inc({ pipeline: this.#o.pipelines.get(topic)?.name ?? 'none', topic }, n)
  }

  /** A sink's assignment hook failing is logged: it must not keep partitions from being consumed. */
  async #sinkHook (hook: 'assigned' | 'revoked', tps: TopicPartition[]): Promise<void> {
    await Promise.all(this.#sinks.map(async (s) => {
      try {
        await s[hook]?.(tps)
      } catch (err) {
        this.#o.logger.warn({ err, sink: s.name }, `sink ${hook} hook failed`)
      }
    }))
  }

  #durable (offsets: TopicPartitionOffset[]): void {
    this.#parts.stored(offsets)
    this.#o.source.commit(offsets).catch((err) => {
      this.#o.logger.debug({ err }, 'advisory Kafka commit failed (offsets are stored in PostgreSQL)')
    })
  }

  #fatal (err: SluiceError): void {
    if (this.listenerCount('fatal') === 0) throw err
    this.emit('fatal', err)
  }
}

function heldOffset (sinks: ReadonlyArray<Sink<unknown>>, topic: string, partition: number): number | undefined {
  let min: number | undefined
  for (const s of sinks) {
    const h = s.heldOffset?.(topic, partition)
    if (h !== undefined && (min === undefined || h < min)) min = h
  }
  return min
}

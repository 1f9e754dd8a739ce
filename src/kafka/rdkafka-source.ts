import { setTimeout as sleep } from 'node:timers/promises'
import Kafka from 'node-rdkafka'
import type { LibrdKafkaError, Message, TopicPartition as RdTopicPartition } from 'node-rdkafka'
import { SluiceError } from '../errors.ts'
import { brokerList } from './brokers.ts'
import { BrokersDownTimer } from './brokers-down.ts'
import { ConsumeSizer } from './consume-sizer.ts'
import { CoordinatorWatch } from './coordinator-watch.ts'
import { FetchWaker } from './fetch-waker.ts'
import { HeldMessages } from './held-messages.ts'
import { CommitWaiters, defaultOffsets, highWatermarks, isAllBrokersDown, isFatalRdkafka, newConsumer, rdkafkaDetail } from './rdkafka-client.ts'
import { SourceCore } from './source-core.ts'
import type { RdkafkaSourceOptions } from './rdkafka-client.ts'
import type { Source, SourceHandlers, TopicPartition, TopicPartitionOffset } from './types.ts'
import { tpKey } from './types.ts'

export type { RdkafkaSourceOptions }

const E = Kafka.CODES.ERRORS

/**
 * A Source over node-rdkafka, driven by a non-flowing `consume(n)` loop (one consume call in
 * flight at a time; flowing mode would hold a libuv thread and keep delivering what it
 * buffered after a pause).
 *
 * Rebalances (eager) go through our rebalance_cb. node-rdkafka calls it on the JS thread after
 * librdkafka's callback has returned, and librdkafka then waits for assign()/unassign(), so
 * the async work happens in between:
 *  - ASSIGN: no partition is fetched until assign() is called. We await onAssign, stop the
 *    loop and wait for the consume call in flight (whatever it returns for these partitions is
 *    dropped: they are not live yet), then assign() with the offsets onAssign returned
 *    (for the others the group's committed offset, else the beginning), mark them
 *    live and restart the loop. Every later consume call starts after assign(), so nothing
 *    stale from an earlier assignment can be delivered.
 *  - REVOKE: the partitions stop being live at once (messages of non-live partitions are
 *    dropped), are paused in librdkafka, then onRevoke is awaited and unassign() called.
 * The loop keeps polling while handlers run and while partitions are paused, so the group
 * stays served (rebalance callbacks and commit results are only delivered by consume).
 *
 * Pause: librdkafka stops fetching and discards what it prefetched (version barrier), but
 * the consume call in flight may already hold messages of the partition. Those are not
 * delivered: they are kept back here, in offset order, and handed over ahead of newer
 * messages once the partition is resumed (dropped if it is revoked first). At most one
 * consume batch per partition is kept; no seek, so no race between a seek and a resume.
 * A resume is followed by a wake of librdkafka's fetcher (fetch-waker.ts): without it, a
 * partition resumed while its broker had nothing else to fetch waited up to a second.
 */
export class RdkafkaSource implements Source {
  readonly kind = 'rdkafka' as const
  readonly #o: RdkafkaSourceOptions
  readonly #sizer: ConsumeSizer
  readonly #core: SourceCore
  #consumer: Kafka.KafkaConsumer | null = null
  /** partitions whose messages are delivered */
  readonly #live = new Map<string, TopicPartition>()
  /** librdkafka's current assignment */
  #assigned: TopicPartition[] = []
  /** messages fetched for a partition after it was paused, delivered on resume */
  readonly #held = new HeldMessages()
  #inflight: Promise<void> | null = null
  #holds = 0
  #running = false
  #closed: Promise<void> | null = null
  readonly #down: BrokersDownTimer
  readonly #commits = new CommitWaiters()
  #waker = this.#newWaker()
  readonly #watch: CoordinatorWatch
  /** a consumer being replaced by a new one (see #recreate) */
  #recreating: Promise<void> | null = null

  constructor (opts: RdkafkaSourceOptions) {
    if (opts.topics.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource needs at least one topic')
    const strategy = String(opts.config?.['partition.assignment.strategy'] ?? '')
    if (strategy.includes('cooperative')) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource handles eager rebalances only (not cooperative-sticky)')
    this.#o = opts
    this.#core = new SourceCore({ kind: 'rdkafka', logger: opts.logger, isFatal: isFatalRdkafka, detail: rdkafkaDetail })
    // a failure while closing is ignored by SourceCore.fail
    this.#down = new BrokersDownTimer(opts.brokerDownTimeoutMs ?? 60_000, (done) => {
      this.#consumer?.getMetadata({ topic: opts.topics[0], timeout: 5_000 }, done)
      return this.#consumer !== null
    }, (err) => this.#core.fail(err))
    this.#watch = new CoordinatorWatch(opts.coordinatorTimeoutMs ?? 30_000)
    this.#sizer = new ConsumeSizer({ fetchBatch: opts.fetchBatch ?? 250, fetchBatchBytes: opts.fetchBatchBytes ?? 8 * 1024 * 1024, idleTimeoutMs: opts.consumeTimeoutMs ?? 100 })
  }

  async start (handlers: SourceHandlers): Promise<void> {
    this.#core.started(handlers)
    await this.#connect()
    this.#running = true
    this.#loop()
  }

  /** A new consumer, connected and subscribed; its callbacks are ignored once it is replaced. */
  async #connect (): Promise<void> {
    let self: Kafka.KafkaConsumer | null = null
    const consumer = self = newConsumer(this.#o, this.#watch.statsIntervalMs, {
      rebalance: (err, assignment) => { if (self !== null) this.#rebalanced(self, err, assignment) },
      committed: (err, offsets) => { if (self === this.#consumer) this.#committed(err, offsets) },
      error: (err) => { if (self === this.#consumer) this.#eventError(err) },
      stats: (json) => { if (self === this.#consumer) this.#stats(json) }
    })
    consumer.setDefaultConsumeTimeout(this.#sizer.timeoutMs)
    this.#consumer = consumer
    try {
      await new Promise<void>((resolve, reject) => {
        consumer.connect({ timeout: 15_000 }, (err) => {
          if (err) reject(this.#core.wrap(err, `cannot connect to Kafka at ${brokerList(this.#o.brokers)}`))
          else resolve()
        })
      })
    } catch (err) {
      this.#consumer = null // node-rdkafka disconnected it
      throw err
    }
    consumer.subscribe([...this.#o.topics])
    this.#watch.reset() // counted from here: connecting may take seconds
  }

  pause (partitions: TopicPartition[]): void {
    this.#core.pause(partitions)
    // partitions not assigned yet are paused right after their assign()
    const now = this.#ofAssigned(partitions)
    if (now.length > 0) this.#core.call(() => this.#consumer?.pause(now), 'pause')
  }

  resume (partitions: TopicPartition[]): void {
    this.#core.resume(partitions)
    const now = this.#ofAssigned(partitions)
    if (now.length === 0) return
    this.#core.call(() => this.#consumer?.resume(now), 'resume')
    this.#waker.wake(now) // fetch-waker.ts: librdkafka would fetch them up to a second later
  }

  async seek (tp: TopicPartition, offset: number): Promise<void> {
    this.#held.drop(tpKey(tp.topic, tp.partition))
    const consumer = this.#consumer
    if (consumer === null || this.#ofAssigned([tp]).length === 0) return
    await new Promise<void>((resolve, reject) => {
      consumer.seek({ topic: tp.topic, partition: tp.partition, offset }, 10_000, (err) => {
        if (err) reject(this.#core.wrap(err, `kafka seek of ${tpKey(tp.topic, tp.partition)} failed`, 'SLUICE_ERR_KAFKA_TRANSIENT'))
        else resolve()
      })
    })
  }

  async commit (offsets: TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return
    const consumer = this.#consumer
    if (consumer === null || this.#core.closing) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka consumer is not running')
    const list = offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset }))
    await this.#commits.wait(list, () => consumer.commit(list), 30_000,
      () => new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka commit timed out'),
      (err) => this.#core.wrap(err, 'kafka commit failed', 'SLUICE_ERR_KAFKA_TRANSIENT'))
  }

  assignments (): TopicPartition[] {
    return [...this.#live.values()]
  }

  isReady (): boolean {
    return this.#core.isReady()
  }

  async highWatermarks (): Promise<Map<string, number>> {
    const consumer = this.#consumer
    if (consumer === null || this.#core.closing) return new Map()
    return await highWatermarks(consumer, this.assignments(), (key) => this.#core.isPaused(key))
  }

  close (): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  // ------------------------------------------------------------------ consume loop

  #loop (): void {
    const consumer = this.#consumer
    if (!this.#running || this.#holds > 0 || this.#inflight !== null || consumer === null) return
    this.#inflight = new Promise<void>((resolve) => {
      consumer.setDefaultConsumeTimeout(this.#sizer.timeoutMs) // consume-sizer.ts: why it varies
      consumer.consume(this.#sizer.count, (err, messages) => {
        this.#inflight = null
        resolve()
        this.#sizer.observe(err ? [] : messages.map((m) => m.value?.length ?? 0))
        if (err) {
          setTimeout(() => this.#loop(), this.#consumeError(err)).unref()
          return
        }
        if (messages.length === 0) {
          setImmediate(() => this.#loop())
        } else {
          // the next batch is fetched (on a libuv thread) while this one is handled
          this.#loop()
        }
        this.#deliver(messages)
      })
    })
  }

  #deliver (messages: Message[]): void {
    if (messages.length > 0) this.#down.up()
    this.#core.deliver(this.#held.sort(messages, this.#live, (key) => this.#core.isPaused(key)))
  }

  /** Returns how long to wait before the next consume call. */
  #consumeError (err: LibrdKafkaError): number {
    if (isFatalRdkafka(err)) {
      this.#core.fail(err)
      return 1000
    }
    this.#o.logger?.warn({ code: err.code, err: err.message }, 'kafka consume error')
    return 100
  }

  /** Stops the loop (holds) and waits for the consume call in flight to come back. */
  async #quiesce (): Promise<void> {
    this.#holds++
    while (this.#inflight !== null) await this.#inflight
  }

  #release (): void { this.#holds--; this.#loop() }

  // ------------------------------------------------------------------ rebalances

  #rebalanced (consumer: Kafka.KafkaConsumer, err: LibrdKafkaError, assignment: RdTopicPartition[]): void {
    const tps = (assignment ?? []).map((a) => ({ topic: a.topic, partition: a.partition }))
    if (this.#core.closing || consumer !== this.#consumer) {
      // during disconnect (of this source, or of a replaced consumer): librdkafka waits for
      // this before it leaves the group
      if (err.code === E.ERR__ASSIGN_PARTITIONS) this.#core.call(() => consumer.assign([]), 'assign')
      else this.#core.call(() => consumer.unassign(), 'unassign')
      return
    }
    if (err.code === E.ERR__ASSIGN_PARTITIONS) {
      this.#core.enqueue(() => this.#assign(tps))
    } else if (err.code === E.ERR__REVOKE_PARTITIONS) {
      // nothing of these partitions is delivered from now on
      for (const tp of tps) {
        const key = tpKey(tp.topic, tp.partition)
        this.#live.delete(key)
        this.#held.drop(key)
      }
      if (tps.length > 0) this.#core.call(() => consumer.pause(tps), 'pause')
      this.#core.enqueue(() => this.#revoke(tps))
    } else {
      this.#o.logger?.error({ code: err.code, err: err.message }, 'kafka rebalance error')
      this.#core.enqueue(() => this.#revoke(this.#assigned))
    }
  }

  async #assign (tps: TopicPartition[]): Promise<void> {
    const handlers = this.#core.handlers as SourceHandlers
    let answer: TopicPartitionOffset[] | null = []
    if (tps.length > 0) {
      try {
        answer = await handlers.onAssign(tps)
      } catch (err) {
        answer = null
        this.#core.fail(err)
      }
    }
    const start = new Map<string, number>()
    for (const a of answer ?? []) if (a.offset >= 0) start.set(tpKey(a.topic, a.partition), a.offset)
    if (answer !== null && start.size < tps.length && this.#consumer !== null) {
      await defaultOffsets(this.#consumer, tps.filter((tp) => !start.has(tpKey(tp.topic, tp.partition))), start)
    }
    await this.#quiesce()
    try {
      const consumer = this.#consumer as Kafka.KafkaConsumer
      if (answer === null) {
        // the worker is stopping: own nothing
        consumer.assign([])
        return
      }
      consumer.assign(tps.map((tp) => {
        const offset = start.get(tpKey(tp.topic, tp.partition))
        return offset === undefined ? { topic: tp.topic, partition: tp.partition } : { topic: tp.topic, partition: tp.partition, offset }
      }))
      this.#assigned = tps
      for (const tp of tps) this.#live.set(tpKey(tp.topic, tp.partition), tp)
      // librdkafka keeps a partition's pause flag across unassign/assign: set it explicitly
      const toPause = tps.filter((tp) => this.#core.isPaused(tpKey(tp.topic, tp.partition)))
      const toResume = tps.filter((tp) => !this.#core.isPaused(tpKey(tp.topic, tp.partition)))
      if (toPause.length > 0) consumer.pause(toPause)
      if (toResume.length > 0) consumer.resume(toResume)
      this.#core.ready = true
      this.#o.logger?.debug({ partitions: tps.length, explicit: start.size }, 'kafka partitions assigned')
    } catch (err) {
      this.#core.fail(err)
    } finally {
      this.#release()
    }
  }

  async #revoke (tps: TopicPartition[]): Promise<void> {
    for (const tp of tps) this.#live.delete(tpKey(tp.topic, tp.partition))
    await this.#core.revoke(tps)
    this.#core.call(() => this.#consumer?.unassign(), 'unassign')
    this.#assigned = []
    this.#core.resume(tps)
  }

  // ------------------------------------------------------------------ commits, errors, close

  #committed (err: LibrdKafkaError | undefined, offsets: RdTopicPartition[]): void {
    this.#commits.result(offsets, err ? this.#core.wrap(err, 'kafka commit failed', 'SLUICE_ERR_KAFKA_TRANSIENT') : null)
  }

  #eventError (err: LibrdKafkaError): void {
    if (isAllBrokersDown(err)) {
      this.#o.logger?.warn({ code: err.code }, 'all Kafka brokers are down')
      if (!this.#core.closing) this.#down.down()
    } else if (isFatalRdkafka(err)) {
      this.#core.fail(err)
    } else {
      this.#o.logger?.warn({ code: err.code, err: err.message }, 'kafka client error')
    }
  }

  // ------------------------------------------------------------------ a consumer left without a coordinator

  #stats (json: string): void {
    const missing = this.#watch.observe(json)
    if (missing === null || this.#recreating !== null || !this.#running || this.#core.closing) return
    this.#recreating = this.#recreate(missing).finally(() => { this.#recreating = null })
  }

  /**
   * Replaces a consumer without a group coordinator for the watch's limit by a new one, as a
   * restart would: the loop stops, partitions still assigned are revoked as in a rebalance, the
   * old consumer disconnects in the background and the new one joins from the bootstrap
   * servers (offsets live with the rows: nothing lost or doubled). Connecting is retried up to
   * the brokers-down limit, then the source fails as when every broker stays down.
   */
  async #recreate (missingMs: number): Promise<void> {
    const old = this.#consumer as Kafka.KafkaConsumer
    const since = Date.now() - missingMs
    const why = new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka consumer without a group coordinator for ${Math.round(missingMs / 1000)} s: replacing it with a new one`)
    this.#o.logger?.warn({ code: why.code, missingMs }, why.message)
    this.#core.handlers?.onRetry?.('kafka-consumer', why)
    await this.#quiesce()
    try {
      await this.#core.settle()
      await this.#detach('replaced')
      this.#consumer = null
      this.#core.ready = false
      this.#down.up() // the retries below keep the brokers-down limit meanwhile
      old.disconnect(() => {}) // its rebalance callback answers alone (#rebalanced)
      this.#waker = this.#newWaker()
      const limit = this.#o.brokerDownTimeoutMs ?? 60_000
      for (;;) {
        if (!this.#running || this.#core.closing) return
        try {
          await this.#connect()
          this.#o.logger?.info('kafka consumer replaced: joining the group again')
          return
        } catch (err) {
          if (limit > 0 && Date.now() - since >= limit) {
            this.#core.fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `no Kafka broker reachable for ${Math.round((Date.now() - since) / 1000)} s: ${(err as Error).message}`, { cause: err }))
            return
          }
          this.#o.logger?.warn({ err: (err as Error).message }, 'kafka consumer not connected yet; retrying')
          await sleep(1_000)
        }
      }
    } finally {
      this.#release()
    }
  }

  /** Ends what runs against the consumer: fetch wakes, held messages, its partitions (revoked), commits waiting. */
  async #detach (why: string): Promise<void> {
    await this.#waker.stop()
    this.#live.clear()
    this.#held.clear()
    if (this.#assigned.length > 0) await this.#revoke(this.#assigned)
    this.#commits.rejectAll(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka consumer ${why}`))
  }

  #newWaker (): FetchWaker {
    return new FetchWaker(() => this.#core.closing ? null : this.#consumer)
  }

  #ofAssigned (partitions: TopicPartition[]): TopicPartition[] {
    if (this.#assigned.length === 0) return []
    const assigned = new Set(this.#assigned.map((tp) => tpKey(tp.topic, tp.partition)))
    return partitions.filter((tp) => assigned.has(tpKey(tp.topic, tp.partition)))
  }

  async #close (): Promise<void> {
    this.#running = false
    while (this.#recreating !== null) await this.#recreating
    const consumer = this.#consumer
    this.#down.up()
    if (consumer === null) { this.#core.closing = true; return }
    // disconnecting while a consume call runs can crash librdkafka: wait for it
    while (this.#inflight !== null) await this.#inflight
    // assignments and revocations in progress finish first (bounded)
    await this.#core.settle()
    this.#core.closing = true
    this.#core.ready = false
    await this.#detach('closed')
    const done = new Promise<void>((resolve) => { consumer.disconnect(() => resolve()) })
    if (await Promise.race([done.then(() => true), sleep(30_000, false, { ref: false })]) !== true) {
      this.#o.logger?.warn('kafka consumer disconnect did not finish in 30 s')
    }
  }
}

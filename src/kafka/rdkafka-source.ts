import { setTimeout as sleep } from 'node:timers/promises'
import Kafka from 'node-rdkafka'
import type { ConsumerGlobalConfig, LibrdKafkaError, Message, TopicPartition as RdTopicPartition } from 'node-rdkafka'
import { SluiceError } from '../errors.ts'
import { brokerList } from './brokers.ts'
import { ConsumeSizer } from './consume-sizer.ts'
import { FetchWaker } from './fetch-waker.ts'
import { CommitWaiters, consumerConfig, fromRdkafka, isFatalRdkafka, rdkafkaDetail } from './rdkafka-client.ts'
import { SourceCore } from './source-core.ts'
import type { RdkafkaSourceOptions } from './rdkafka-client.ts'
import type { Source, SourceHandlers, TopicPartition, TopicPartitionOffset, KafkaMessage } from './types.ts'
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
 *    (OFFSET_STORED for the others: committed, else auto.offset.reset=earliest), mark them
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
  readonly #held = new Map<string, KafkaMessage[]>()
  #inflight: Promise<void> | null = null
  #holds = 0
  #running = false
  #closed: Promise<void> | null = null
  #downTimer: NodeJS.Timeout | null = null
  readonly #commits = new CommitWaiters()
  readonly #waker = new FetchWaker(() => this.#core.closing ? null : this.#consumer)

  constructor (opts: RdkafkaSourceOptions) {
    if (opts.topics.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource needs at least one topic')
    const strategy = String(opts.config?.['partition.assignment.strategy'] ?? '')
    if (strategy.includes('cooperative')) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource handles eager rebalances only (not cooperative-sticky)')
    this.#o = opts
    this.#core = new SourceCore({ kind: 'rdkafka', logger: opts.logger, isFatal: isFatalRdkafka, detail: rdkafkaDetail })
    this.#sizer = new ConsumeSizer({ fetchBatch: opts.fetchBatch ?? 250, fetchBatchBytes: opts.fetchBatchBytes ?? 8 * 1024 * 1024, idleTimeoutMs: opts.consumeTimeoutMs ?? 100 })
  }

  async start (handlers: SourceHandlers): Promise<void> {
    this.#core.started(handlers)
    const o = this.#o
    const config = {
      ...consumerConfig(o),
      rebalance_cb: (err: LibrdKafkaError, assignment: RdTopicPartition[]) => this.#rebalanced(err, assignment),
      offset_commit_cb: (err: LibrdKafkaError | undefined, offsets: RdTopicPartition[]) => this.#committed(err, offsets),
      // SLUICE_KAFKA_DEBUG: librdkafka's own trace (e.g. the group's join states), through the logger
      ...(o.debug !== undefined ? { debug: o.debug, event_cb: true } : {})
    } as unknown as ConsumerGlobalConfig
    // a topic-level setting: node-rdkafka's topic config replaces librdkafka's default one
    const consumer = new Kafka.KafkaConsumer(config, { 'auto.offset.reset': 'earliest' })
    consumer.setDefaultConsumeTimeout(this.#sizer.timeoutMs)
    consumer.on('event.error', (err) => this.#eventError(err))
    if (o.debug !== undefined) consumer.on('event.log', (l: { severity: number, fac: string, message: string }) => o.logger?.info({ librdkafka: l.fac, severity: l.severity }, l.message))
    this.#consumer = consumer
    await new Promise<void>((resolve, reject) => {
      consumer.connect({ timeout: 15_000 }, (err) => {
        if (err) reject(this.#core.wrap(err, `cannot connect to Kafka at ${brokerList(o.brokers)}`))
        else resolve()
      })
    })
    consumer.subscribe([...o.topics])
    this.#running = true
    this.#loop()
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
    this.#held.delete(tpKey(tp.topic, tp.partition))
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
    const out = new Map<string, number>()
    const consumer = this.#consumer
    if (consumer === null || this.#core.closing) return out
    // librdkafka caches a partition's high watermark from every fetch response (no round trip);
    // a paused partition is not fetched, so its cached value goes stale: only those, and
    // partitions not fetched yet, are asked of the broker
    const parts: TopicPartition[] = []
    for (const tp of this.assignments()) {
      const key = tpKey(tp.topic, tp.partition)
      let high = -1
      if (!this.#core.isPaused(key)) {
        try { high = consumer.getWatermarkOffsets(tp.topic, tp.partition).highOffset } catch {}
      }
      if (high >= 0) out.set(key, high)
      else parts.push(tp)
    }
    // a few at a time: each query holds a libuv thread
    for (let i = 0; i < parts.length; i += 4) {
      await Promise.all(parts.slice(i, i + 4).map((tp) => new Promise<void>((resolve) => {
        consumer.queryWatermarkOffsets(tp.topic, tp.partition, 5_000, (err, w) => {
          if (!err) out.set(tpKey(tp.topic, tp.partition), w.highOffset)
          resolve()
        })
      })))
    }
    return out
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
    let out: KafkaMessage[] = []
    for (const [key, kept] of this.#held) { // resumed partitions first: older offsets
      if (!this.#live.has(key)) this.#held.delete(key)
      else if (!this.#core.isPaused(key)) { out = out.concat(kept); this.#held.delete(key) }
    }
    if (messages.length > 0) this.#brokersUp()
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as Message
      const key = tpKey(m.topic, m.partition)
      if (!this.#live.has(key)) continue // not assigned yet, or revoked: stale
      const msg = fromRdkafka(m)
      if (this.#core.isPaused(key)) {
        const kept = this.#held.get(key)
        if (kept === undefined) this.#held.set(key, [msg])
        else kept.push(msg)
        continue
      }
      out.push(msg)
    }
    this.#core.deliver(out)
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

  #rebalanced (err: LibrdKafkaError, assignment: RdTopicPartition[]): void {
    const tps = (assignment ?? []).map((a) => ({ topic: a.topic, partition: a.partition }))
    const consumer = this.#consumer
    if (consumer === null) return
    if (this.#core.closing) {
      // during disconnect: librdkafka waits for this before it leaves the group
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
        this.#held.delete(key)
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
    await this.#quiesce()
    try {
      const consumer = this.#consumer as Kafka.KafkaConsumer
      if (answer === null) {
        // the worker is stopping: own nothing
        consumer.assign([])
        return
      }
      const start = new Map(answer.map((a) => [tpKey(a.topic, a.partition), a.offset]))
      consumer.assign(tps.map((tp) => {
        const offset = start.get(tpKey(tp.topic, tp.partition))
        return offset === undefined || offset < 0 ? { topic: tp.topic, partition: tp.partition } : { topic: tp.topic, partition: tp.partition, offset }
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
    if (err.code === E.ERR__ALL_BROKERS_DOWN) {
      this.#o.logger?.warn({ code: err.code }, 'all Kafka brokers are down')
      this.#brokersDown()
    } else if (isFatalRdkafka(err)) {
      this.#core.fail(err)
    } else {
      this.#o.logger?.warn({ code: err.code, err: err.message }, 'kafka client error')
    }
  }

  #brokersDown (): void {
    const timeout = this.#o.brokerDownTimeoutMs ?? 60_000
    if (timeout <= 0 || this.#downTimer !== null || this.#core.closing) return
    const since = Date.now()
    this.#downTimer = setTimeout(() => {
      // still down? a metadata request answers that without waiting for messages
      this.#consumer?.getMetadata({ topic: this.#o.topics[0], timeout: 5_000 }, (err) => {
        this.#downTimer = null
        if (!err || this.#core.closing) return
        this.#core.fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `all Kafka brokers unreachable for ${Math.round((Date.now() - since) / 1000)} s: ${err.message}`, { cause: err }))
      })
    }, timeout)
    this.#downTimer.unref()
  }

  #brokersUp (): void {
    if (this.#downTimer !== null) clearTimeout(this.#downTimer)
    this.#downTimer = null
  }

  #ofAssigned (partitions: TopicPartition[]): TopicPartition[] {
    if (this.#assigned.length === 0) return []
    const assigned = new Set(this.#assigned.map((tp) => tpKey(tp.topic, tp.partition)))
    return partitions.filter((tp) => assigned.has(tpKey(tp.topic, tp.partition)))
  }

  async #close (): Promise<void> {
    const consumer = this.#consumer
    this.#running = false
    this.#brokersUp()
    if (consumer === null) { this.#core.closing = true; return }
    // disconnecting while a consume call runs can crash librdkafka: wait for it
    while (this.#inflight !== null) await this.#inflight
    // assignments and revocations in progress finish first (bounded)
    await this.#core.settle()
    this.#core.closing = true
    this.#core.ready = false
    await this.#waker.stop()
    this.#live.clear()
    this.#held.clear()
    if (this.#assigned.length > 0) await this.#revoke(this.#assigned)
    this.#commits.rejectAll(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka consumer closed'))
    const done = new Promise<void>((resolve) => { consumer.disconnect(() => resolve()) })
    if (await Promise.race([done.then(() => true), sleep(30_000, false, { ref: false })]) !== true) {
      this.#o.logger?.warn('kafka consumer disconnect did not finish in 30 s')
    }
  }
}

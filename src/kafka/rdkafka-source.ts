import { setTimeout as sleep } from 'node:timers/promises'
import Kafka from 'node-rdkafka'
import type { ConsumerGlobalConfig, LibrdKafkaError, Message, TopicPartition as RdTopicPartition } from 'node-rdkafka'
import type { Logger } from 'pino'
import { SluiceError, errorMessage, isSluiceError } from '../errors.ts'
import { ConsumeSizer } from './consume-sizer.ts'
import { brokerList } from './producer.ts'
import type { KafkaMessage, Source, SourceHandlers, TopicPartition, TopicPartitionOffset } from './types.ts'
import { tpKey } from './types.ts'

export interface RdkafkaSourceOptions {
  /** comma-separated host:port list, or an array of them */
  brokers: string | readonly string[]
  groupId: string
  clientId: string
  topics: readonly string[]
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
  /** messages asked for per consume call, default 1000 */
  fetchBatch?: number
  /** bytes (keys + values) asked for per consume call, default 8 MiB: with large messages the call asks for fewer */
  fetchBatchBytes?: number
  /** how long one consume call waits for a message, default 100 ms (also bounds close) */
  consumeTimeoutMs?: number
  /** all brokers unreachable for this long is reported through onError, default 60 s; 0 = never */
  brokerDownTimeoutMs?: number
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  /** static group membership (group.instance.id) */
  groupInstanceId?: string
  /** extra librdkafka settings (security, fetch sizes...) */
  config?: Record<string, string | number | boolean>
}

const E = Kafka.CODES.ERRORS
/** errors that will not go away by waiting: the worker must stop */
const FATAL_CODES = new Set<number>([
  E.ERR__FATAL, E.ERR__AUTHENTICATION, E.ERR__SSL, E.ERR__UNKNOWN_TOPIC, E.ERR__INVALID_ARG,
  E.ERR_UNKNOWN_TOPIC_OR_PART, E.ERR_TOPIC_AUTHORIZATION_FAILED, E.ERR_GROUP_AUTHORIZATION_FAILED,
  E.ERR_CLUSTER_AUTHORIZATION_FAILED, E.ERR_SASL_AUTHENTICATION_FAILED, E.ERR_UNSUPPORTED_SASL_MECHANISM,
  E.ERR_INVALID_GROUP_ID
])

interface CommitWaiter { key: string, resolve: () => void, reject: (err: Error) => void, timer: NodeJS.Timeout }

function commitKey (tps: ReadonlyArray<{ topic: string, partition: number, offset?: number }>): string {
  return tps.map((t) => `${t.topic}:${t.partition}:${t.offset ?? -1}`).sort().join(',')
}

export function fromRdkafka (m: Message): KafkaMessage {
  const key = m.key === null || m.key === undefined ? null : typeof m.key === 'string' ? Buffer.from(m.key) : m.key
  const value = m.value ?? null
  let headers: Record<string, Buffer> | undefined
  if (m.headers !== undefined && m.headers.length > 0) {
    headers = {}
    for (const h of m.headers) {
      for (const name in h) {
        const v = h[name] as string | Buffer
        headers[name] = typeof v === 'string' ? Buffer.from(v) : v
      }
    }
  }
  const size = (key === null ? 0 : key.length) + (value === null ? 0 : value.length)
  return { topic: m.topic, partition: m.partition, offset: m.offset, key, value, timestamp: m.timestamp ?? -1, headers, size }
}

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
 */
export class RdkafkaSource implements Source {
  readonly kind = 'rdkafka' as const
  readonly #o: RdkafkaSourceOptions
  readonly #sizer: ConsumeSizer
  #consumer: Kafka.KafkaConsumer | null = null
  #handlers: SourceHandlers | null = null
  /** partitions whose messages are delivered */
  readonly #live = new Map<string, TopicPartition>()
  /** librdkafka's current assignment */
  #assigned: TopicPartition[] = []
  readonly #paused = new Set<string>()
  /** messages fetched for a partition after it was paused, delivered on resume */
  readonly #held = new Map<string, KafkaMessage[]>()
  #chain: Promise<void> = Promise.resolve()
  #inflight: Promise<void> | null = null
  #holds = 0
  #running = false
  #closing = false
  #closed: Promise<void> | null = null
  #ready = false
  #failed = false
  #downTimer: NodeJS.Timeout | null = null
  #commitWaiters: CommitWaiter[] = []

  constructor (opts: RdkafkaSourceOptions) {
    if (opts.topics.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource needs at least one topic')
    const strategy = String(opts.config?.['partition.assignment.strategy'] ?? '')
    if (strategy.includes('cooperative')) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource handles eager rebalances only (not cooperative-sticky)')
    this.#o = opts
    this.#sizer = new ConsumeSizer({ fetchBatch: opts.fetchBatch ?? 1000, fetchBatchBytes: opts.fetchBatchBytes ?? 8 * 1024 * 1024, idleTimeoutMs: opts.consumeTimeoutMs ?? 100 })
  }

  async start (handlers: SourceHandlers): Promise<void> {
    if (this.#consumer !== null) throw new SluiceError('SLUICE_ERR_CONFIG', 'RdkafkaSource started twice')
    this.#handlers = handlers
    const o = this.#o
    const config = {
      'bootstrap.servers': brokerList(o.brokers),
      'group.id': o.groupId,
      'client.id': o.clientId,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      // a batch returns as soon as a partition is drained instead of waiting for fetchBatch messages
      'enable.partition.eof': true,
      'partition.assignment.strategy': 'range,roundrobin',
      'session.timeout.ms': o.sessionTimeoutMs ?? 30_000,
      'heartbeat.interval.ms': o.heartbeatIntervalMs ?? 3_000,
      ...(o.groupInstanceId !== undefined ? { 'group.instance.id': o.groupInstanceId } : {}),
      'socket.keepalive.enable': true,
      // larger fetches per partition (~1.4x the throughput of the 1 MiB default); the prefetch
      // queue stays bounded by queued.max.messages.kbytes for the whole consumer
      'max.partition.fetch.bytes': 8 * 1024 * 1024,
      'queued.max.messages.kbytes': 64 * 1024,
      // once the prefetch queue was full, librdkafka waits this long before fetching that
      // partition again (default 1 s): a resumed partition sat idle for it (256 MiB of 700 KB
      // chunks: 44 to 47 MiB/s with 1 s, 59 to 60 MiB/s with 20 ms)
      'fetch.queue.backoff.ms': 20,
      ...o.config,
      rebalance_cb: (err: LibrdKafkaError, assignment: RdTopicPartition[]) => this.#rebalanced(err, assignment),
      offset_commit_cb: (err: LibrdKafkaError | undefined, offsets: RdTopicPartition[]) => this.#committed(err, offsets)
    } as unknown as ConsumerGlobalConfig
    // a topic-level setting: node-rdkafka's topic config replaces librdkafka's default one
    const consumer = new Kafka.KafkaConsumer(config, { 'auto.offset.reset': 'earliest' })
    consumer.setDefaultConsumeTimeout(this.#sizer.timeoutMs)
    consumer.on('event.error', (err) => this.#eventError(err))
    this.#consumer = consumer
    await new Promise<void>((resolve, reject) => {
      consumer.connect({ timeout: 15_000 }, (err) => {
        if (err) reject(this.#wrap(err, `cannot connect to Kafka at ${brokerList(o.brokers)}`))
        else resolve()
      })
    })
    consumer.subscribe([...o.topics])
    this.#running = true
    this.#loop()
  }

  pause (partitions: TopicPartition[]): void {
    for (const tp of partitions) this.#paused.add(tpKey(tp.topic, tp.partition))
    // partitions not assigned yet are paused right after their assign()
    const now = this.#ofAssigned(partitions)
    if (now.length > 0) this.#call(() => this.#consumer?.pause(now), 'pause')
  }

  resume (partitions: TopicPartition[]): void {
    for (const tp of partitions) this.#paused.delete(tpKey(tp.topic, tp.partition))
    const now = this.#ofAssigned(partitions)
    if (now.length > 0) this.#call(() => this.#consumer?.resume(now), 'resume')
  }

  async commit (offsets: TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return
    const consumer = this.#consumer
    if (consumer === null || this.#closing) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka consumer is not running')
    const list = offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset }))
    await new Promise<void>((resolve, reject) => {
      const waiter: CommitWaiter = {
        key: commitKey(list),
        resolve,
        reject,
        timer: setTimeout(() => this.#settleCommit(waiter, new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka commit timed out')), 30_000)
      }
      this.#commitWaiters.push(waiter)
      try {
        consumer.commit(list)
      } catch (err) {
        this.#settleCommit(waiter, this.#wrap(err, 'kafka commit failed', 'SLUICE_ERR_KAFKA_TRANSIENT'))
      }
    })
  }

  assignments (): TopicPartition[] {
    return [...this.#live.values()]
  }

  isReady (): boolean {
    return this.#ready && !this.#closing
  }

  async highWatermarks (): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    const consumer = this.#consumer
    if (consumer === null || this.#closing) return out
    const parts = this.assignments()
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
      else if (!this.#paused.has(key)) { out = out.concat(kept); this.#held.delete(key) }
    }
    if (messages.length > 0) this.#brokersUp()
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as Message
      const key = tpKey(m.topic, m.partition)
      if (!this.#live.has(key)) continue // not assigned yet, or revoked: stale
      const msg = fromRdkafka(m)
      if (this.#paused.has(key)) {
        const kept = this.#held.get(key)
        if (kept === undefined) this.#held.set(key, [msg])
        else kept.push(msg)
        continue
      }
      out.push(msg)
    }
    if (out.length === 0 || this.#handlers === null) return
    try {
      this.#handlers.onBatch(out)
    } catch (err) {
      this.#fail(err)
    }
  }

  /** Returns how long to wait before the next consume call. */
  #consumeError (err: LibrdKafkaError): number {
    if (FATAL_CODES.has(err.code) || err.isFatal === true) {
      this.#fail(err)
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
    if (this.#closing) {
      // during disconnect: librdkafka waits for this before it leaves the group
      if (err.code === E.ERR__ASSIGN_PARTITIONS) this.#call(() => consumer.assign([]), 'assign')
      else this.#call(() => consumer.unassign(), 'unassign')
      return
    }
    if (err.code === E.ERR__ASSIGN_PARTITIONS) {
      this.#chain = this.#chain.then(() => this.#assign(tps))
    } else if (err.code === E.ERR__REVOKE_PARTITIONS) {
      // nothing of these partitions is delivered from now on
      for (const tp of tps) {
        const key = tpKey(tp.topic, tp.partition)
        this.#live.delete(key)
        this.#held.delete(key)
      }
      if (tps.length > 0) this.#call(() => consumer.pause(tps), 'pause')
      this.#chain = this.#chain.then(() => this.#revoke(tps))
    } else {
      this.#o.logger?.error({ code: err.code, err: err.message }, 'kafka rebalance error')
      this.#chain = this.#chain.then(() => this.#revoke(this.#assigned))
    }
  }

  async #assign (tps: TopicPartition[]): Promise<void> {
    const handlers = this.#handlers as SourceHandlers
    let answer: TopicPartitionOffset[] | null = []
    if (tps.length > 0) {
      try {
        answer = await handlers.onAssign(tps)
      } catch (err) {
        answer = null
        this.#fail(err)
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
      const toPause = tps.filter((tp) => this.#paused.has(tpKey(tp.topic, tp.partition)))
      const toResume = tps.filter((tp) => !this.#paused.has(tpKey(tp.topic, tp.partition)))
      if (toPause.length > 0) consumer.pause(toPause)
      if (toResume.length > 0) consumer.resume(toResume)
      this.#ready = true
      this.#o.logger?.debug({ partitions: tps.length, explicit: start.size }, 'kafka partitions assigned')
    } catch (err) {
      this.#fail(err)
    } finally {
      this.#release()
    }
  }

  async #revoke (tps: TopicPartition[]): Promise<void> {
    for (const tp of tps) this.#live.delete(tpKey(tp.topic, tp.partition))
    if (tps.length > 0) {
      await (this.#handlers as SourceHandlers).onRevoke(tps).catch((err) => this.#o.logger?.warn({ err: errorMessage(err) }, 'onRevoke failed'))
    }
    this.#call(() => this.#consumer?.unassign(), 'unassign')
    this.#assigned = []
    for (const tp of tps) this.#paused.delete(tpKey(tp.topic, tp.partition))
  }

  // ------------------------------------------------------------------ commits, errors, close

  #committed (err: LibrdKafkaError | undefined, offsets: RdTopicPartition[]): void {
    if (this.#commitWaiters.length === 0) return
    const key = commitKey(offsets as Array<{ topic: string, partition: number, offset?: number }>)
    const waiter = this.#commitWaiters.find((w) => w.key === key) ?? this.#commitWaiters[0] as CommitWaiter
    this.#settleCommit(waiter, err ? this.#wrap(err, 'kafka commit failed', 'SLUICE_ERR_KAFKA_TRANSIENT') : null)
  }

  #settleCommit (waiter: CommitWaiter, err: Error | null): void {
    const i = this.#commitWaiters.indexOf(waiter)
    if (i < 0) return
    this.#commitWaiters.splice(i, 1)
    clearTimeout(waiter.timer)
    if (err === null) waiter.resolve()
    else waiter.reject(err)
  }

  #eventError (err: LibrdKafkaError): void {
    if (err.code === E.ERR__ALL_BROKERS_DOWN) {
      this.#o.logger?.warn({ code: err.code }, 'all Kafka brokers are down')
      this.#brokersDown()
    } else if (FATAL_CODES.has(err.code) || err.isFatal === true) {
      this.#fail(err)
    } else {
      this.#o.logger?.warn({ code: err.code, err: err.message }, 'kafka client error')
    }
  }

  #brokersDown (): void {
    const timeout = this.#o.brokerDownTimeoutMs ?? 60_000
    if (timeout <= 0 || this.#downTimer !== null || this.#closing) return
    const since = Date.now()
    this.#downTimer = setTimeout(() => {
      // still down? a metadata request answers that without waiting for messages
      this.#consumer?.getMetadata({ topic: this.#o.topics[0], timeout: 5_000 }, (err) => {
        this.#downTimer = null
        if (!err || this.#closing) return
        this.#fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `all Kafka brokers unreachable for ${Math.round((Date.now() - since) / 1000)} s: ${err.message}`, { cause: err }))
      })
    }, timeout)
    this.#downTimer.unref()
  }

  #brokersUp (): void {
    if (this.#downTimer !== null) clearTimeout(this.#downTimer)
    this.#downTimer = null
  }

  #wrap (err: unknown, what: string, code?: 'SLUICE_ERR_KAFKA_FATAL' | 'SLUICE_ERR_KAFKA_TRANSIENT'): SluiceError {
    if (isSluiceError(err)) return err
    const e = err as Partial<LibrdKafkaError>
    const fatal = typeof e.code === 'number' && (FATAL_CODES.has(e.code) || e.isFatal === true)
    return new SluiceError(code ?? (fatal ? 'SLUICE_ERR_KAFKA_FATAL' : 'SLUICE_ERR_KAFKA_TRANSIENT'), `${what}: ${errorMessage(err)}${typeof e.code === 'number' ? ` (code ${e.code})` : ''}`, { cause: err })
  }

  /** Reports a non-retriable error once; the owner stops the source. */
  #fail (err: unknown): void {
    if (this.#closing) return
    const e = this.#wrap(err, 'kafka source (rdkafka)')
    this.#o.logger?.error({ code: e.code, err: e.message }, 'kafka source failed')
    if (this.#failed) return
    this.#failed = true
    this.#handlers?.onError(e)
  }

  #call (fn: () => unknown, what: string): void {
    try { fn() } catch (err) { this.#o.logger?.warn({ err: errorMessage(err) }, `kafka ${what} failed`) }
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
    if (consumer === null) { this.#closing = true; return }
    // disconnecting while a consume call runs can crash librdkafka: wait for it
    while (this.#inflight !== null) await this.#inflight
    // assignments and revocations in progress finish first (bounded)
    const deadline = Date.now() + 30_000
    let chain: Promise<void> | null = null
    while (chain !== this.#chain && Date.now() < deadline) {
      chain = this.#chain
      await Promise.race([chain, sleep(deadline - Date.now(), undefined, { ref: false })])
    }
    this.#closing = true
    this.#ready = false
    this.#live.clear()
    this.#held.clear()
    if (this.#assigned.length > 0) await this.#revoke(this.#assigned)
    for (const w of [...this.#commitWaiters]) this.#settleCommit(w, new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka consumer closed'))
    const done = new Promise<void>((resolve) => { consumer.disconnect(() => resolve()) })
    if (await Promise.race([done.then(() => true), sleep(30_000, false, { ref: false })]) !== true) {
      this.#o.logger?.warn('kafka consumer disconnect did not finish in 30 s')
    }
  }
}

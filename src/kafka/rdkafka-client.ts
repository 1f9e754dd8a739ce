/** node-rdkafka specifics shared by the rdkafka source's parts: fatal codes, messages, commit results. */
import Kafka from 'node-rdkafka'
import type { ConsumerGlobalConfig, LibrdKafkaError, Message, TopicPartition as RdTopicPartition, TopicPartitionOffset as RdTopicPartitionOffset } from 'node-rdkafka'
import { brokerList } from './brokers.ts'
import type { SourceLogger } from './source-core.ts'
import type { KafkaMessage, TopicPartition } from './types.ts'
import { tpKey } from './types.ts'

export interface RdkafkaSourceOptions {
  /** comma-separated host:port list, or an array of them */
  brokers: string | readonly string[]
  groupId: string
  clientId: string
  topics: readonly string[]
  logger?: SourceLogger
  /** messages asked for per consume call, default 250 (SLUICE_FETCH_BATCH) */
  fetchBatch?: number
  /** bytes (keys + values) asked for per consume call, default 8 MiB: with large messages the call asks for fewer */
  fetchBatchBytes?: number
  /** how long one consume call waits for a message, default 100 ms (also bounds close) */
  consumeTimeoutMs?: number
  /** all brokers unreachable for this long is reported through onError, default 60 s; 0 = never */
  brokerDownTimeoutMs?: number
  /** no group coordinator for this long: the consumer is replaced by a new one (coordinator-watch.ts), default 30 s; 0 = never */
  coordinatorTimeoutMs?: number
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  /** static group membership (group.instance.id) */
  groupInstanceId?: string
  /** librdkafka's debug contexts (`debug`, e.g. "cgrp"): its lines logged at info */
  debug?: string
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

export function isFatalRdkafka (err: unknown): boolean {
  const e = err as Partial<LibrdKafkaError> | null
  return typeof e?.code === 'number' && (FATAL_CODES.has(e.code) || e.isFatal === true)
}

/**
 * librdkafka's ERR__ALL_BROKERS_DOWN as node-rdkafka's `event.error` delivers it: an error
 * event carries only librdkafka's text ("Local: All broker connections are down"), so its code
 * is -1 and the text is all there is to go by.
 */
export function isAllBrokersDown (err: { code?: number, message?: string }): boolean {
  return err.code === E.ERR__ALL_BROKERS_DOWN || /all broker connections are down/i.test(err.message ?? '')
}

/** librdkafka's error code, appended to a wrapped error's message */
export function rdkafkaDetail (err: unknown): string {
  const code = (err as Partial<LibrdKafkaError> | null)?.code
  return typeof code === 'number' ? ` (code ${code})` : ''
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

interface CommitWaiter { key: string, resolve: () => void, reject: (err: Error) => void, timer: NodeJS.Timeout }

function commitKey (tps: ReadonlyArray<{ topic: string, partition: number, offset?: number }>): string {
  return tps.map((t) => `${t.topic}:${t.partition}:${t.offset ?? -1}`).sort().join(',')
}

/**
 * Commits in flight, each settled by its offset_commit_cb result (matched by its offsets, else
 * the oldest), by a timeout, or at close.
 */
export class CommitWaiters {
  readonly #waiters: CommitWaiter[] = []

  /** Waits for the result of the commit `send` starts; `send` throwing rejects at once. */
  wait (offsets: ReadonlyArray<{ topic: string, partition: number, offset: number }>, send: () => void, timeoutMs: number, timedOut: () => Error, failed: (err: unknown) => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: CommitWaiter = {
        key: commitKey(offsets),
        resolve,
        reject,
        timer: setTimeout(() => this.#settle(waiter, timedOut()), timeoutMs)
      }
      this.#waiters.push(waiter)
      try {
        send()
      } catch (err) {
        this.#settle(waiter, failed(err))
      }
    })
  }

  /** offset_commit_cb */
  result (offsets: ReadonlyArray<{ topic: string, partition: number, offset?: number }>, err: Error | null): void {
    if (this.#waiters.length === 0) return
    const key = commitKey(offsets)
    this.#settle(this.#waiters.find((w) => w.key === key) ?? this.#waiters[0] as CommitWaiter, err)
  }

  rejectAll (err: Error): void {
    for (const w of [...this.#waiters]) this.#settle(w, err)
  }

  #settle (waiter: CommitWaiter, err: Error | null): void {
    const i = this.#waiters.indexOf(waiter)
    if (i < 0) return
    this.#waiters.splice(i, 1)
    clearTimeout(waiter.timer)
    if (err === null) waiter.resolve()
    else waiter.reject(err)
  }
}

/** The librdkafka consumer settings sluice runs with (the owner's `config` last, so it wins). */
export function consumerConfig (o: RdkafkaSourceOptions): Record<string, string | number | boolean> {
  return {
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
    // 1 MiB per partition per fetch (librdkafka's default, as @platformatic/kafka's): with
    // 8 MiB the partitions of a 300,000-event backlog finished 2.7 to 9 s apart, with 1 MiB
    // 1.0 to 2 s apart, at 4-7% of the rate (docs/benchmarks.md). The prefetch queue stays
    // bounded by queued.max.messages.kbytes for the whole consumer
    'max.partition.fetch.bytes': 1024 * 1024,
    'queued.max.messages.kbytes': 64 * 1024,
    // once the prefetch queue was full, librdkafka waits this long before fetching that
    // partition again (default 1 s): a resumed partition sat idle for it (256 MiB of 700 KB
    // chunks: 44 to 47 MiB/s with 1 s, 59 to 60 MiB/s with 20 ms)
    'fetch.queue.backoff.ms': 20,
    ...o.config
  }
}

/** What a consumer reports to its owner. */
export interface ConsumerCallbacks {
  rebalance: (err: LibrdKafkaError, assignment: RdTopicPartition[]) => void
  committed: (err: LibrdKafkaError | undefined, offsets: RdTopicPartition[]) => void
  error: (err: LibrdKafkaError) => void
  /** librdkafka's statistics report (JSON), every `statsIntervalMs` */
  stats: (json: string) => void
}

/** A consumer with sluice's settings, not connected yet. `statsIntervalMs` 0: no statistics. */
export function newConsumer (o: RdkafkaSourceOptions, statsIntervalMs: number, on: ConsumerCallbacks): Kafka.KafkaConsumer {
  const config = {
    ...consumerConfig(o),
    ...(statsIntervalMs > 0 ? { 'statistics.interval.ms': statsIntervalMs } : {}),
    rebalance_cb: on.rebalance,
    offset_commit_cb: on.committed,
    // SLUICE_KAFKA_DEBUG: librdkafka's own trace (e.g. the group's join states), through the logger
    ...(o.debug !== undefined ? { debug: o.debug, event_cb: true } : {})
  } as unknown as ConsumerGlobalConfig
  // a topic-level setting: node-rdkafka's topic config replaces librdkafka's default one
  const consumer = new Kafka.KafkaConsumer(config, { 'auto.offset.reset': 'earliest' })
  consumer.on('event.error', on.error)
  consumer.on('event.stats', (s: { message: string }) => on.stats(s.message))
  if (o.debug !== undefined) consumer.on('event.log', (l: { severity: number, fac: string, message: string }) => o.logger?.info({ librdkafka: l.fac, severity: l.severity }, l.message))
  return consumer
}

/**
 * The high watermark of each partition, keyed `topic:partition`. librdkafka caches a
 * partition's high watermark from every fetch response (no round trip); a paused partition is
 * not fetched, so its cached value goes stale: only those, and partitions not fetched yet, are
 * asked of the broker.
 */
export async function highWatermarks (consumer: Kafka.KafkaConsumer, partitions: readonly TopicPartition[], isPaused: (key: string) => boolean): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const ask: TopicPartition[] = []
  for (const tp of partitions) {
    const key = tpKey(tp.topic, tp.partition)
    let high = -1
    if (!isPaused(key)) {
      try { high = consumer.getWatermarkOffsets(tp.topic, tp.partition).highOffset } catch {}
    }
    if (high >= 0) out.set(key, high)
    else ask.push(tp)
  }
  // a few at a time: each query holds a libuv thread
  for (let i = 0; i < ask.length; i += 4) {
    await Promise.all(ask.slice(i, i + 4).map((tp) => new Promise<void>((resolve) => {
      consumer.queryWatermarkOffsets(tp.topic, tp.partition, 5_000, (err, w) => {
        if (!err) out.set(tpKey(tp.topic, tp.partition), w.highOffset)
        resolve()
      })
    })))
  }
  return out
}

/** librdkafka's logical offset of a partition's earliest message (RD_KAFKA_OFFSET_BEGINNING) */
const OFFSET_BEGINNING = -2

/**
 * Start offsets of partitions onAssign gave none for: the group's committed offset, else the
 * beginning (auto.offset.reset=earliest), asked before assign() (as platformatic-client.ts's
 * defaultOffsets). Left to librdkafka (no offset given), a partition without a committed
 * offset waits 100 ms before its earliest offset is even asked for: every start of a new
 * group. If the lookup fails, `into` is left as it was and librdkafka looks them up itself.
 */
export async function defaultOffsets (consumer: Kafka.KafkaConsumer, tps: TopicPartition[], into: Map<string, number>): Promise<void> {
  const committed = await new Promise<RdTopicPartitionOffset[] | null>((resolve) => {
    consumer.committed(tps, 5_000, (err, offsets) => resolve(err ? null : offsets))
  })
  if (committed === null) return
  for (const c of committed) into.set(tpKey(c.topic, c.partition), c.offset >= 0 ? c.offset : OFFSET_BEGINNING)
}

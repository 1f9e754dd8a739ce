import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, ConnectionPool, IS_CONTROL, ListOffsetTimestamps, findErrorBy } from '@platformatic/kafka'
import type { ClusterMetadata, ConnectionOptions, ConsumerOptions, GroupAssignment, KafkaRecord, RecordsBatch, fetchV17 } from '@platformatic/kafka'
import type { Logger } from 'pino'
import { SluiceError, errorMessage, isSluiceError } from '../errors.ts'
import { brokerArray } from './admin.ts'
import type { KafkaMessage, Source, SourceHandlers, TopicPartition, TopicPartitionOffset } from './types.ts'
import { tpKey } from './types.ts'

export interface PlatformaticSourceOptions {
  /** comma-separated host:port list, or an array of them */
  brokers: string | readonly string[]
  groupId: string
  clientId: string
  topics: readonly string[]
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
  /** how long a fetch waits for data on the broker, default 500 ms */
  maxWaitMs?: number
  /** bytes per fetch response, default 16 MiB; per partition, default 1 MiB */
  maxBytes?: number
  maxBytesPerPartition?: number
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  /** static group membership (group.instance.id) */
  groupInstanceId?: string
  rebalanceTimeoutMs?: number
  /** no broker reachable (or group heartbeats failing) this long is reported through onError, default 60 s */
  brokerDownTimeoutMs?: number
  /** extra @platformatic/kafka client options (tls, sasl, timeouts...) */
  client?: Partial<ConsumerOptions<Buffer, Buffer, Buffer, Buffer>>
}

/** A live partition: its next offset to fetch. */
interface PartState {
  readonly key: string
  readonly topic: string
  readonly partition: number
  position: bigint
}

type FetchResponse = fetchV17.FetchResponse

const EMPTY = Buffer.alloc(0)
/** record batch attribute bit: timestamps are the broker's append time */
const LOG_APPEND_TIME = 0x08
// Kafka protocol error codes handled per partition
const OFFSET_OUT_OF_RANGE = 1
const UNKNOWN_TOPIC_OR_PARTITION = 3
const TOPIC_AUTHORIZATION_FAILED = 29
const UNKNOWN_TOPIC_ID = 100
/** how long a topic may stay unknown to its leader before it is fatal */
const UNKNOWN_TOPIC_GRACE_MS = 10_000

/** The fetch response inside a (possibly nested) fetch error: its other partitions are usable. */
function responseOf (err: unknown): FetchResponse | null {
  const seen = new Set<unknown>()
  const stack: unknown[] = [err]
  let found: FetchResponse | null = null
  while (stack.length > 0) {
    const e = stack.pop() as { response?: FetchResponse, errors?: unknown[] } | null
    if (e === null || typeof e !== 'object' || seen.has(e)) continue
    seen.add(e)
    if (e.response !== undefined && Array.isArray(e.response.responses)) found = e.response
    if (Array.isArray(e.errors)) stack.push(...e.errors)
  }
  return found
}

function toMessage (topic: string, partition: number, batch: RecordsBatch, r: KafkaRecord, offset: bigint): KafkaMessage {
  let headers: Record<string, Buffer> | undefined
  if (r.headers.length > 0) {
    headers = {}
    for (const [k, v] of r.headers) {
      if (k !== null) headers[k.toString()] = v ?? EMPTY
    }
  }
  // LogAppendTime topics carry the broker's time in the batch header
  const timestamp = Number((batch.attributes & LOG_APPEND_TIME) !== 0 ? batch.maxTimestamp : batch.firstTimestamp + r.timestampDelta)
  const size = (r.key === null ? 0 : r.key.length) + (r.value === null ? 0 : r.value.length)
  return { topic, partition, offset: Number(offset), key: r.key, value: r.value, timestamp, headers, size }
}

/**
 * A Source over @platformatic/kafka (pure JS). It uses the Consumer for group membership
 * (classic protocol, eager round-robin), heartbeats, commits and offset lookups, and runs its
 * own fetch loop (Consumer.fetch on a dedicated connection pool) instead of a MessagesStream:
 * a stream has no per-partition pause, no hook between assignment and its first fetch and its
 * own idea of start offsets.
 *
 *  - Revoke: the Consumer calls `protocolsMetadata` before every JoinGroup (rebalance seen by
 *    a heartbeat or a commit, lost membership, first join). That hook stops delivery, awaits
 *    onRevoke for everything owned, and only then lets the JoinGroup go: the group cannot
 *    hand the partitions to another member before onRevoke resolved.
 *  - Assign: on 'consumer:group:join' onAssign is awaited, the offsets it did not give come
 *    from the group's committed offsets, else the earliest; only then are the partitions
 *    fetched. Every fetch carries the generation it was sent in; a response of an older one
 *    (or for a partition whose position moved meanwhile) is dropped.
 *  - Pause: paused partitions are left out of fetch requests; a response in flight for a
 *    partition paused meanwhile is dropped without advancing its position, so it is fetched
 *    again from the same offset after resume.
 */
export class PlatformaticSource implements Source {
  readonly kind = 'platformatic' as const
  readonly #o: PlatformaticSourceOptions
  readonly #consumer: Consumer
  readonly #pool: ConnectionPool
  #handlers: SourceHandlers | null = null
  readonly #live = new Map<string, PartState>()
  /** what onAssign was last called with and onRevoke not yet */
  #owned: TopicPartition[] = []
  readonly #paused = new Set<string>()
  #gen = 0
  #chain: Promise<void> = Promise.resolve()
  readonly #inflightNodes = new Set<number>()
  #pumping = false
  #retryTimer: NodeJS.Timeout | null = null
  #running = false
  #closing = false
  #closed: Promise<void> | null = null
  #ready = false
  #failed = false
  #failingSince = 0
  readonly #unknownSince = new Map<string, number>()

  constructor (opts: PlatformaticSourceOptions) {
    if (opts.topics.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG', 'PlatformaticSource needs at least one topic')
    this.#o = opts
    const client = opts.client ?? {}
    this.#consumer = new Consumer({
      clientId: opts.clientId,
      bootstrapBrokers: brokerArray(opts.brokers),
      groupId: opts.groupId,
      autocommit: false,
      sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
      ...(opts.groupInstanceId !== undefined ? { groupInstanceId: opts.groupInstanceId } : {}),
      heartbeatInterval: opts.heartbeatIntervalMs ?? 3_000,
      rebalanceTimeout: opts.rebalanceTimeoutMs ?? 60_000,
      heartbeatStallTimeout: opts.brokerDownTimeoutMs ?? 60_000,
      ...client,
      // runs before every JoinGroup, whoever triggers it (heartbeat, commit, first join)
      protocolsMetadata: () => this.#beforeJoin().then(() => EMPTY)
    } as ConsumerOptions<Buffer, Buffer, Buffer, Buffer>)
    // fetches get connections of their own: a long poll must not delay heartbeats and joins
    const { connectTimeout, requestTimeout, tls, ssl, tlsServerName, sasl } = client as ConnectionOptions
    this.#pool = new ConnectionPool(`${opts.clientId}-fetch`, { connectTimeout, requestTimeout, tls, ssl, tlsServerName, sasl })
    this.#consumer.on('consumer:group:join', (p) => { this.#joined(p.assignments ?? []) })
    this.#consumer.on('consumer:heartbeat:stalled', (p) => {
      this.#fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka group heartbeats failing for ${Math.round(p.stalledFor / 1000)} s${p.lastError !== undefined ? ': ' + p.lastError.message : ''}`, { cause: p.lastError }))
    })
    this.#consumer.on('error', (err: Error) => {
      this.#o.logger?.warn({ err: errorMessage(err) }, 'kafka consumer group error')
      if (this.#isFatal(err)) this.#fail(err)
    })
    this.#pool.on('failed', () => {}) // connection failures surface as fetch errors
  }

  async start (handlers: SourceHandlers): Promise<void> {
    if (this.#handlers !== null) throw new SluiceError('SLUICE_ERR_CONFIG', 'PlatformaticSource started twice')
    this.#handlers = handlers
    this.#running = true
    for (const topic of this.#o.topics) this.#consumer.topics.track(topic)
    try {
      await this.#consumer.joinGroup({})
    } catch (err) {
      this.#running = false
      throw this.#wrap(err, `cannot join consumer group ${this.#o.groupId}`)
    }
  }

  pause (partitions: TopicPartition[]): void {
    for (const tp of partitions) this.#paused.add(tpKey(tp.topic, tp.partition))
  }

  resume (partitions: TopicPartition[]): void {
    for (const tp of partitions) this.#paused.delete(tpKey(tp.topic, tp.partition))
    this.#pump()
  }

  async commit (offsets: TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return
    if (!this.#running) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka consumer is not running')
    try {
      await this.#consumer.commit({
        offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: BigInt(o.offset), leaderEpoch: -1 }))
      })
    } catch (err) {
      throw this.#wrap(err, 'kafka commit failed', 'SLUICE_ERR_KAFKA_TRANSIENT')
    }
  }

  assignments (): TopicPartition[] {
    return [...this.#live.values()].map((s) => ({ topic: s.topic, partition: s.partition }))
  }

  isReady (): boolean {
    return this.#ready && !this.#closing
  }

  async highWatermarks (): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    const parts = this.assignments()
    if (parts.length === 0 || !this.#running) return out
    const partitions: Record<string, number[]> = {}
    for (const tp of parts) (partitions[tp.topic] ??= []).push(tp.partition)
    const offsets = await this.#consumer.listOffsets({ topics: Object.keys(partitions), partitions, timestamp: ListOffsetTimestamps.LATEST })
    for (const tp of parts) {
      const high = offsets.get(tp.topic)?.[tp.partition]
      if (typeof high === 'bigint' && high >= 0n) out.set(tpKey(tp.topic, tp.partition), Number(high))
    }
    return out
  }

  close (): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  // ------------------------------------------------------------------ group

  /** Stops delivering (and drops responses in flight for) the partitions delivered so far. */
  #stopDelivery (): void {
    this.#gen++
    this.#live.clear()
  }

  #beforeJoin (): Promise<void> {
    this.#stopDelivery()
    this.#chain = this.#chain.then(() => this.#revokeOwned())
    return this.#chain
  }

  async #revokeOwned (): Promise<void> {
    this.#stopDelivery()
    const tps = this.#owned
    this.#owned = []
    for (const tp of tps) this.#paused.delete(tpKey(tp.topic, tp.partition))
    if (tps.length === 0 || this.#handlers === null) return
    await this.#handlers.onRevoke(tps).catch((err) => this.#o.logger?.warn({ err: errorMessage(err) }, 'onRevoke failed'))
  }

  #joined (assignments: GroupAssignment[]): void {
    const topics = new Set(this.#o.topics)
    const tps: TopicPartition[] = []
    for (const a of assignments) {
      if (!topics.has(a.topic)) continue
      for (const partition of a.partitions) tps.push({ topic: a.topic, partition })
    }
    this.#chain = this.#chain.then(() => this.#assign(tps))
  }

  async #assign (tps: TopicPartition[]): Promise<void> {
    if (!this.#running) return
    this.#stopDelivery()
    const gen = this.#gen
    this.#owned = tps
    const start = new Map<string, bigint>()
    try {
      if (tps.length > 0) {
        const answer = await (this.#handlers as SourceHandlers).onAssign(tps)
        for (const a of answer) if (a.offset >= 0) start.set(tpKey(a.topic, a.partition), BigInt(a.offset))
        const missing = tps.filter((tp) => !start.has(tpKey(tp.topic, tp.partition)))
        if (missing.length > 0) await this.#defaultOffsets(missing, start)
      }
    } catch (err) {
      this.#fail(err)
      return
    }
    if (gen !== this.#gen || this.#closing) return // a rebalance began meanwhile: its revoke follows
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition)
      this.#live.set(key, { key, topic: tp.topic, partition: tp.partition, position: start.get(key) as bigint })
    }
    this.#ready = true
    this.#o.logger?.debug({ partitions: tps.length, generation: this.#consumer.generationId }, 'kafka partitions assigned')
    this.#pump()
  }

  /** The group's committed offset, else the earliest one. */
  async #defaultOffsets (tps: TopicPartition[], into: Map<string, bigint>): Promise<void> {
    const byTopic = new Map<string, number[]>()
    for (const tp of tps) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition])
    const committed = await this.#consumer.listCommittedOffsets({ topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) })
    const rest: Record<string, number[]> = {}
    for (const tp of tps) {
      const c = committed.get(tp.topic)?.[tp.partition]
      if (typeof c === 'bigint' && c >= 0n) into.set(tpKey(tp.topic, tp.partition), c)
      else (rest[tp.topic] ??= []).push(tp.partition)
    }
    if (Object.keys(rest).length === 0) return
    const earliest = await this.#consumer.listOffsets({ topics: Object.keys(rest), partitions: rest, timestamp: ListOffsetTimestamps.EARLIEST })
    for (const [topic, partitions] of Object.entries(rest)) {
      for (const p of partitions) {
        const e = earliest.get(topic)?.[p]
        into.set(tpKey(topic, p), typeof e === 'bigint' && e >= 0n ? e : 0n)
      }
    }
  }

  // ------------------------------------------------------------------ fetch loop

  #pump (): void {
    if (!this.#running || this.#pumping) return
    let any = false
    for (const s of this.#live.values()) if (!this.#paused.has(s.key)) { any = true; break }
    if (!any) return
    this.#pumping = true
    this.#consumer.metadata({ topics: [...this.#o.topics] }, (err, metadata) => {
      this.#pumping = false
      if (!this.#running) return
      if (err || metadata === undefined) {
        this.#fetchFailed(err)
        return
      }
      const byNode = new Map<number, PartState[]>()
      let leaderless = false
      for (const s of this.#live.values()) {
        if (this.#paused.has(s.key)) continue
        const leader = metadata.topics.get(s.topic)?.partitions[s.partition]?.leader ?? -1
        if (leader < 0) { leaderless = true; continue }
        if (this.#inflightNodes.has(leader)) continue
        const list = byNode.get(leader)
        if (list === undefined) byNode.set(leader, [s])
        else list.push(s)
      }
      for (const [node, states] of byNode) this.#fetch(node, states, metadata)
      if (leaderless) this.#later(500)
    })
  }

  #fetch (node: number, states: PartState[], metadata: ClusterMetadata): void {
    const gen = this.#gen
    const requested = new Map<string, bigint>()
    const topics = new Map<string, { topicId: string, partitions: Array<{ partition: number, fetchOffset: bigint, partitionMaxBytes: number, currentLeaderEpoch: number, lastFetchedEpoch: number }> }>()
    const topicById = new Map<string, string>()
    for (const s of states) {
      const id = metadata.topics.get(s.topic)?.id as string
      topicById.set(id, s.topic)
      let t = topics.get(s.topic)
      if (t === undefined) topics.set(s.topic, t = { topicId: id, partitions: [] })
      t.partitions.push({ partition: s.partition, fetchOffset: s.position, partitionMaxBytes: this.#o.maxBytesPerPartition ?? 1_048_576, currentLeaderEpoch: -1, lastFetchedEpoch: -1 })
      requested.set(s.key, s.position)
    }
    this.#inflightNodes.add(node)
    this.#consumer.fetch({
      node,
      topics: [...topics.values()],
      maxWaitTime: this.#o.maxWaitMs ?? 500,
      minBytes: 1,
      maxBytes: this.#o.maxBytes ?? 16 * 1_048_576,
      connectionPool: this.#pool
    }, (err, response) => {
      this.#inflightNodes.delete(node)
      if (!this.#running) return
      const res = err ? responseOf(err) : response ?? null
      if (res !== null && gen === this.#gen) this.#deliver(res, requested, topicById)
      if (err && res === null) {
        this.#fetchFailed(err)
        return
      }
      this.#failingSince = 0
      if (err) this.#later(200) // partition errors: handled in #deliver, fetch again shortly
      else setImmediate(() => this.#pump())
    })
  }

  #deliver (res: FetchResponse, requested: Map<string, bigint>, topicById: Map<string, string>): void {
    const out: KafkaMessage[] = []
    for (const tr of res.responses) {
      const topic = topicById.get(tr.topicId)
      if (topic === undefined) continue
      for (const p of tr.partitions) {
        const key = tpKey(topic, p.partitionIndex)
        const from = requested.get(key)
        const state = this.#live.get(key)
        // not requested (fetch session leftovers), revoked, moved, or paused meanwhile
        if (from === undefined || state === undefined || state.position !== from || this.#paused.has(key)) continue
        if (p.errorCode !== 0) {
          this.#partitionError(state, p.errorCode)
          continue
        }
        this.#unknownSince.delete(key)
        if (p.records === null || p.records === undefined) continue
        let next = from
        for (const batch of p.records) {
          if ((batch.attributes & IS_CONTROL) === 0) {
            for (const r of batch.records) {
              const offset = batch.firstOffset + BigInt(r.offsetDelta)
              if (offset >= from) out.push(toMessage(topic, p.partitionIndex, batch, r, offset))
            }
          }
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta)
          if (last >= next) next = last + 1n
        }
        state.position = next
      }
    }
    if (out.length === 0 || this.#handlers === null) return
    try {
      this.#handlers.onBatch(out)
    } catch (err) {
      this.#fail(err)
    }
  }

  #partitionError (state: PartState, code: number): void {
    if (code === OFFSET_OUT_OF_RANGE) {
      const gen = this.#gen
      const from = state.position
      this.#o.logger?.warn({ topic: state.topic, partition: state.partition, offset: String(from) }, 'offset out of range: restarting from the earliest offset')
      this.#consumer.listOffsets({ topics: [state.topic], partitions: { [state.topic]: [state.partition] }, timestamp: ListOffsetTimestamps.EARLIEST }, (err, offsets) => {
        const e = offsets?.get(state.topic)?.[state.partition]
        if (!err && gen === this.#gen && state.position === from && typeof e === 'bigint') state.position = e
      })
    } else if (code === TOPIC_AUTHORIZATION_FAILED) {
      this.#fail(new SluiceError('SLUICE_ERR_KAFKA_FATAL', `not authorized to read topic ${state.topic}`))
    } else if (code === UNKNOWN_TOPIC_OR_PARTITION || code === UNKNOWN_TOPIC_ID) {
      const since = this.#unknownSince.get(state.key) ?? Date.now()
      this.#unknownSince.set(state.key, since)
      this.#consumer.clearMetadata()
      if (Date.now() - since > UNKNOWN_TOPIC_GRACE_MS) this.#fail(new SluiceError('SLUICE_ERR_KAFKA_FATAL', `topic ${state.topic} partition ${state.partition} is unknown to the cluster`))
    } else {
      // leadership moved, storage error...: fresh metadata, then again
      this.#consumer.clearMetadata()
    }
  }

  #fetchFailed (err: unknown): void {
    if (this.#isFatal(err)) {
      this.#fail(err)
      return
    }
    const now = Date.now()
    if (this.#failingSince === 0) this.#failingSince = now
    const limit = this.#o.brokerDownTimeoutMs ?? 60_000
    this.#o.logger?.warn({ err: errorMessage(err) }, 'kafka fetch failed')
    if (limit > 0 && now - this.#failingSince > limit) {
      this.#fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka fetches failing for ${Math.round((now - this.#failingSince) / 1000)} s: ${errorMessage(err)}`, { cause: err }))
    }
    this.#later(500)
  }

  #later (ms: number): void {
    if (this.#retryTimer !== null || !this.#running) return
    this.#retryTimer = setTimeout(() => { this.#retryTimer = null; this.#pump() }, ms)
  }

  // ------------------------------------------------------------------ errors, close

  #isFatal (err: unknown): boolean {
    const e = err as Error
    return findErrorBy(e, 'code', 'PLT_KFK_AUTHENTICATION') !== null ||
      findErrorBy(e, 'apiId', 'SASL_AUTHENTICATION_FAILED') !== null ||
      findErrorBy(e, 'apiId', 'GROUP_AUTHORIZATION_FAILED') !== null ||
      findErrorBy(e, 'apiId', 'TOPIC_AUTHORIZATION_FAILED') !== null ||
      findErrorBy(e, 'apiId', 'INVALID_GROUP_ID') !== null ||
      /Unknown topic/i.test(e.message ?? '')
  }

  #wrap (err: unknown, what: string, code?: 'SLUICE_ERR_KAFKA_FATAL' | 'SLUICE_ERR_KAFKA_TRANSIENT'): SluiceError {
    if (isSluiceError(err)) return err
    return new SluiceError(code ?? (this.#isFatal(err) ? 'SLUICE_ERR_KAFKA_FATAL' : 'SLUICE_ERR_KAFKA_TRANSIENT'), `${what}: ${errorMessage(err)}`, { cause: err })
  }

  /** Reports a non-retriable error once; the owner stops the source. */
  #fail (err: unknown): void {
    if (this.#closing) return
    const e = this.#wrap(err, 'kafka source (platformatic)')
    this.#o.logger?.error({ code: e.code, err: e.message }, 'kafka source failed')
    if (this.#failed) return
    this.#failed = true
    this.#handlers?.onError(e)
  }

  async #close (): Promise<void> {
    this.#running = false
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    // assignments and revocations in progress finish first (bounded)
    const deadline = Date.now() + 30_000
    let chain: Promise<void> | null = null
    while (chain !== this.#chain && Date.now() < deadline) {
      chain = this.#chain
      await Promise.race([chain, sleep(deadline - Date.now(), undefined, { ref: false })])
    }
    await this.#revokeOwned()
    this.#closing = true
    this.#ready = false
    try {
      await this.#consumer.close(true)
    } catch (err) {
      this.#o.logger?.warn({ err: errorMessage(err) }, 'closing the kafka consumer')
    }
    await this.#pool.close().catch(() => {})
  }
}

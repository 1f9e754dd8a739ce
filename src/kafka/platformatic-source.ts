import { Consumer, ConnectionPool, IS_CONTROL, ListOffsetTimestamps } from '@platformatic/kafka'
import type { ClusterMetadata, ConnectionOptions, ConsumerOptions, GroupAssignment } from '@platformatic/kafka'
import { SluiceError, errorMessage } from '../errors.ts'
import { parseBrokers } from './brokers.ts'
import {
  EMPTY, OFFSET_OUT_OF_RANGE, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_GRACE_MS, UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION,
  defaultOffsets, fetchRequest, isFatalPlatformatic, responseOf, toMessage
} from './platformatic-client.ts'
import type { FetchResponse, PartState } from './platformatic-client.ts'
import { SourceCore } from './source-core.ts'
import type { SourceLogger } from './source-core.ts'
import type { KafkaMessage, Source, SourceHandlers, TopicPartition, TopicPartitionOffset } from './types.ts'
import { tpKey } from './types.ts'

export interface PlatformaticSourceOptions {
  /** comma-separated host:port list, or an array of them */
  brokers: string | readonly string[]
  groupId: string
  clientId: string
  topics: readonly string[]
  logger?: SourceLogger
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
  readonly #core: SourceCore
  readonly #live = new Map<string, PartState>()
  /** what onAssign was last called with and onRevoke not yet */
  #owned: TopicPartition[] = []
  #gen = 0
  readonly #inflightNodes = new Set<number>()
  #pumping = false
  #retryTimer: NodeJS.Timeout | null = null
  #running = false
  #closed: Promise<void> | null = null
  #failingSince = 0
  readonly #unknownSince = new Map<string, number>()

  constructor (opts: PlatformaticSourceOptions) {
    if (opts.topics.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG', 'PlatformaticSource needs at least one topic')
    this.#o = opts
    this.#core = new SourceCore({ kind: 'platformatic', logger: opts.logger, isFatal: isFatalPlatformatic })
    const client = opts.client ?? {}
    this.#consumer = new Consumer({
      clientId: opts.clientId,
      bootstrapBrokers: parseBrokers(opts.brokers),
      groupId: opts.groupId,
      autocommit: false,
      sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
      ...(opts.groupInstanceId !== undefined ? { groupInstanceId: opts.groupInstanceId } : {}),
      heartbeatInterval: opts.heartbeatIntervalMs ?? 3_000,
      rebalanceTimeout: opts.rebalanceTimeoutMs ?? 60_000,
      heartbeatStallTimeout: stallLimit(opts.brokerDownTimeoutMs ?? 60_000),
      ...client,
      // runs before every JoinGroup, whoever triggers it (heartbeat, commit, first join)
      protocolsMetadata: () => this.#beforeJoin().then(() => EMPTY)
    } as ConsumerOptions<Buffer, Buffer, Buffer, Buffer>)
    // fetches get connections of their own: a long poll must not delay heartbeats and joins
    const { connectTimeout, requestTimeout, tls, ssl, tlsServerName, sasl } = client as ConnectionOptions
    this.#pool = new ConnectionPool(`${opts.clientId}-fetch`, { connectTimeout, requestTimeout, tls, ssl, tlsServerName, sasl })
    this.#consumer.on('consumer:group:join', (p) => { this.#joined(p.assignments ?? []) })
    this.#consumer.on('consumer:heartbeat:stalled', (p) => {
      this.#core.fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka group heartbeats failing for ${Math.round(p.stalledFor / 1000)} s${p.lastError !== undefined ? ': ' + p.lastError.message : ''}`, { cause: p.lastError }))
    })
    this.#consumer.on('error', (err: Error) => {
      this.#o.logger?.warn({ err: errorMessage(err) }, 'kafka consumer group error')
      if (isFatalPlatformatic(err)) this.#core.fail(err)
    })
    // connection failures also surface as fetch errors (retried, then reported by #fetchFailed)
    this.#pool.on('failed', (p: { broker?: { host: string, port: number }, error?: Error }) => {
      this.#o.logger?.warn({ broker: p?.broker === undefined ? undefined : `${p.broker.host}:${p.broker.port}`, err: errorMessage(p?.error) }, 'kafka fetch connection failed')
    })
  }

  async start (handlers: SourceHandlers): Promise<void> {
    this.#core.started(handlers)
    this.#running = true
    for (const topic of this.#o.topics) this.#consumer.topics.track(topic)
    try {
      await this.#consumer.joinGroup({})
    } catch (err) {
      this.#running = false
      throw this.#core.wrap(err, `cannot join consumer group ${this.#o.groupId}`)
    }
  }

  pause (partitions: TopicPartition[]): void {
    this.#core.pause(partitions)
  }

  resume (partitions: TopicPartition[]): void {
    this.#core.resume(partitions)
    this.#pump()
  }

  async seek (tp: TopicPartition, offset: number): Promise<void> {
    // a response in flight for the old position is dropped (its position no longer matches)
    const s = this.#live.get(tpKey(tp.topic, tp.partition))
    if (s !== undefined) s.position = BigInt(offset)
  }

  async commit (offsets: TopicPartitionOffset[]): Promise<void> {
    if (!this.#running) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka consumer is not running')
    // The group commit is advisory (the stored offsets live in PostgreSQL), so it is skipped
    // for partitions not delivering now (a rebalance is under way) and while the member has no
    // id: an OffsetCommit with a null member id makes the broker close the coordinator
    // connection, which fails the JoinGroup in flight on it; a commit refused for a rebalance
    // makes the client join again, so commits during one would keep restarting it.
    const owned = offsets.filter((o) => this.#live.has(tpKey(o.topic, o.partition)))
    if (owned.length === 0 || this.#consumer.memberId === null || this.#consumer.memberId === '') return
    try {
      await this.#consumer.commit({
        offsets: owned.map((o) => ({ topic: o.topic, partition: o.partition, offset: BigInt(o.offset), leaderEpoch: -1 }))
      })
    } catch (err) {
      throw this.#core.wrap(err, 'kafka commit failed', 'SLUICE_ERR_KAFKA_TRANSIENT')
    }
  }

  assignments (): TopicPartition[] {
    return [...this.#live.values()].map((s) => ({ topic: s.topic, partition: s.partition }))
  }

  isReady (): boolean {
    return this.#core.isReady()
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
    return this.#core.enqueue(() => this.#revokeOwned())
  }

  async #revokeOwned (): Promise<void> {
    this.#stopDelivery()
    const tps = this.#owned
    this.#owned = []
    this.#core.resume(tps)
    await this.#core.revoke(tps)
  }

  #joined (assignments: GroupAssignment[]): void {
    const topics = new Set(this.#o.topics)
    const tps: TopicPartition[] = []
    for (const a of assignments) {
      if (!topics.has(a.topic)) continue
      for (const partition of a.partitions) tps.push({ topic: a.topic, partition })
    }
    this.#core.enqueue(() => this.#assign(tps)).catch((err) => this.#core.fail(err))
  }

  async #assign (tps: TopicPartition[]): Promise<void> {
    if (!this.#running) return
    this.#stopDelivery()
    const gen = this.#gen
    this.#owned = tps
    const start = new Map<string, bigint>()
    try {
      if (tps.length > 0) {
        const answer = await (this.#core.handlers as SourceHandlers).onAssign(tps)
        for (const a of answer) if (a.offset >= 0) start.set(tpKey(a.topic, a.partition), BigInt(a.offset))
        const missing = tps.filter((tp) => !start.has(tpKey(tp.topic, tp.partition)))
        if (missing.length > 0) await defaultOffsets(this.#consumer, missing, start)
      }
    } catch (err) {
      this.#core.fail(err)
      return
    }
    if (gen !== this.#gen || this.#core.closing) return // a rebalance began meanwhile: its revoke follows
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition)
      this.#live.set(key, { key, topic: tp.topic, partition: tp.partition, position: start.get(key) as bigint })
    }
    this.#core.ready = true
    this.#o.logger?.debug({ partitions: tps.length, generation: this.#consumer.generationId }, 'kafka partitions assigned')
    this.#pump()
  }

  // ------------------------------------------------------------------ fetch loop

  #pump (): void {
    if (!this.#running || this.#pumping) return
    let any = false
    for (const s of this.#live.values()) if (!this.#core.isPaused(s.key)) { any = true; break }
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
        if (this.#core.isPaused(s.key)) continue
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
    const { topics, requested, topicById } = fetchRequest(states, metadata, this.#o.maxBytesPerPartition ?? 1_048_576)
    this.#inflightNodes.add(node)
    this.#consumer.fetch({
      node,
      topics,
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
        if (from === undefined || state === undefined || state.position !== from || this.#core.isPaused(key)) continue
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
    this.#core.deliver(out)
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
      this.#core.fail(new SluiceError('SLUICE_ERR_KAFKA_FATAL', `not authorized to read topic ${state.topic}`))
    } else if (code === UNKNOWN_TOPIC_OR_PARTITION || code === UNKNOWN_TOPIC_ID) {
      const since = this.#unknownSince.get(state.key) ?? Date.now()
      this.#unknownSince.set(state.key, since)
      this.#consumer.clearMetadata()
      if (Date.now() - since > UNKNOWN_TOPIC_GRACE_MS) this.#core.fail(new SluiceError('SLUICE_ERR_KAFKA_FATAL', `topic ${state.topic} partition ${state.partition} is unknown to the cluster`))
    } else {
      // leadership moved, storage error...: fresh metadata, then again
      this.#consumer.clearMetadata()
    }
  }

  #fetchFailed (err: unknown): void {
    if (isFatalPlatformatic(err)) {
      this.#core.fail(err)
      return
    }
    const now = Date.now()
    if (this.#failingSince === 0) this.#failingSince = now
    const limit = this.#o.brokerDownTimeoutMs ?? 60_000
    this.#o.logger?.warn({ err: errorMessage(err) }, 'kafka fetch failed')
    if (limit > 0 && now - this.#failingSince > limit) {
      this.#core.fail(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka fetches failing for ${Math.round((now - this.#failingSince) / 1000)} s: ${errorMessage(err)}`, { cause: err }))
    }
    this.#later(500)
  }

  #later (ms: number): void {
    if (this.#retryTimer !== null || !this.#running) return
    this.#retryTimer = setTimeout(() => { this.#retryTimer = null; this.#pump() }, ms)
  }

  // ------------------------------------------------------------------ errors, close

  async #close (): Promise<void> {
    this.#running = false
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    // assignments and revocations in progress finish first (bounded)
    await this.#core.settle()
    await this.#revokeOwned()
    this.#core.closing = true
    this.#core.ready = false
    try {
      await this.#consumer.close(true)
    } catch (err) {
      this.#o.logger?.warn({ err: errorMessage(err) }, 'closing the kafka consumer')
    }
    await this.#pool.close().catch((err) => this.#o.logger?.warn({ err: errorMessage(err) }, 'closing the kafka fetch connections'))
  }
}

/** The heartbeat stall timeout for a brokers-down limit: 0 (never) is the longest timer Node has. */
function stallLimit (limitMs: number): number {
  return limitMs > 0 ? limitMs : 2_147_483_647
}

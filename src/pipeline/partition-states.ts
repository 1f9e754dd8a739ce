import type { Source, TopicPartition, TopicPartitionOffset } from '../kafka/types.ts'
import { tpKey } from '../kafka/types.ts'
import type { SluiceMetrics } from '../metrics/metrics.ts'
import type { InflightBudget } from './inflight-budget.ts'
import type { Lane } from './lane.ts'

export interface PartitionState {
  readonly key: string
  readonly topic: string
  readonly partition: number
  /** next offset consumed (handed to the pipeline) */
  position: number
  /** next offset durable in PostgreSQL */
  stored: number
  /** whether the source has it paused right now */
  paused: boolean
  lane: Lane | undefined
}

export interface PartitionStatus {
  topic: string
  partition: number
  position: number | null
  storedOffset: number | null
  highWatermark: number | null
  lag: number | null
  paused: boolean
  pausedBy: string[]
}

export interface RunnerStatus {
  ready: boolean
  inflight: { messages: number, bytes: number, overBudget: boolean }
  pausedAll: boolean
  partitions: PartitionStatus[]
}

/**
 * The partitions this worker owns and why each is paused: backpressure (in-flight budget),
 * an operator (admin API; remembered across rebalances of this worker) or shutdown.
 */
export class PartitionStates {
  readonly #source: Source
  readonly #metrics: SluiceMetrics
  readonly #parts = new Map<string, PartitionState>()
  readonly #adminPaused = new Set<string>()
  #adminPausedAll = false
  #backpressure = false
  #stopping = false

  constructor (source: Source, metrics: SluiceMetrics) {
    this.#source = source
    this.#metrics = metrics
  }

  get (topic: string, partition: number): PartitionState | undefined {
    return this.#parts.get(tpKey(topic, partition))
  }

  owns (key: string): boolean {
    return this.#parts.has(key)
  }

  assigned (tps: readonly TopicPartition[], stored: readonly TopicPartitionOffset[]): void {
    const storedBy = new Map(stored.map((s) => [tpKey(s.topic, s.partition), s.offset]))
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition)
      const offset = storedBy.get(key) ?? -1
      this.#parts.set(key, { key, topic: tp.topic, partition: tp.partition, position: offset, stored: offset, paused: false, lane: undefined })
    }
    this.#metrics.assignedPartitions.set(this.#parts.size)
    // the source assigns after onAssign resolves: apply pauses once it has
    setImmediate(() => this.apply())
  }

  revoked (tps: readonly TopicPartition[]): Set<string> {
    const keys = new Set<string>()
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition)
      keys.add(key)
      this.#parts.delete(key)
    }
    this.#metrics.assignedPartitions.set(this.#parts.size)
    this.#updatePausedGauge()
    return keys
  }

  stored (offsets: readonly TopicPartitionOffset[]): void {
    for (const o of offsets) {
      const p = this.#parts.get(tpKey(o.topic, o.partition))
      if (p !== undefined && o.offset > p.stored) p.stored = o.offset
    }
  }

  setBackpressure (on: boolean): void { this.#backpressure = on; this.apply() }
  setStopping (): void { this.#stopping = true; this.apply() }

  adminPause (tps?: TopicPartition[]): void {
    if (tps === undefined) this.#adminPausedAll = true
    else for (const tp of tps) this.#adminPaused.add(tpKey(tp.topic, tp.partition))
    this.apply()
  }

  adminResume (tps?: TopicPartition[]): void {
    if (tps === undefined) {
      this.#adminPausedAll = false
      this.#adminPaused.clear()
    } else {
      for (const tp of tps) this.#adminPaused.delete(tpKey(tp.topic, tp.partition))
    }
    this.apply()
  }

  /** Replaces the operator's pauses with the group's desired state (src/control/), applied at once. */
  setAdminPauses (all: boolean, tps: readonly TopicPartition[]): void {
    this.#adminPausedAll = all
    this.#adminPaused.clear()
    for (const tp of tps) this.#adminPaused.add(tpKey(tp.topic, tp.partition))
    this.apply()
  }

  /** After a seek of the source: the partition reads (and stores) from `offset` again. */
  moved (tp: TopicPartition, offset: number): void {
    const p = this.#parts.get(tpKey(tp.topic, tp.partition))
    if (p === undefined) return
    p.position = offset
    p.stored = offset
  }

  #reasons (key: string): string[] {
    const r: string[] = []
    if (this.#stopping) r.push('shutdown')
    if (this.#backpressure) r.push('backpressure')
    if (this.#adminPausedAll || this.#adminPaused.has(key)) r.push('admin')
    return r
  }

  /** Pauses and resumes partitions in the source so that it matches the reasons. */
  apply (): void {
    const pause: TopicPartition[] = []
    const resume: TopicPartition[] = []
    for (const p of this.#parts.values()) {
      const want = this.#reasons(p.key).length > 0
      if (want === p.paused) continue
      p.paused = want
      ;(want ? pause : resume).push({ topic: p.topic, partition: p.partition })
    }
    if (pause.length > 0) this.#source.pause(pause)
    if (resume.length > 0) this.#source.resume(resume)
    this.#updatePausedGauge()
  }

  #updatePausedGauge (): void {
    let backpressure = 0
    let admin = 0
    for (const p of this.#parts.values()) {
      if (!p.paused) continue
      const r = this.#reasons(p.key)
      if (r.includes('admin')) admin++
      else if (r.includes('backpressure')) backpressure++
    }
    this.#metrics.pausedPartitions.set({ reason: 'backpressure' }, backpressure)
    this.#metrics.pausedPartitions.set({ reason: 'admin' }, admin)
  }

  async status (budget: InflightBudget): Promise<RunnerStatus> {
    let hw = new Map<string, number>()
    try {
      hw = await this.#source.highWatermarks()
    } catch {
      // watermarks are informative; status still answers without them
    }
    const partitions: PartitionStatus[] = []
    for (const p of [...this.#parts.values()].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)) {
      const high = hw.get(p.key)
      const lag = high !== undefined && p.stored >= 0 ? Math.max(0, high - p.stored) : null
      if (lag !== null) this.#metrics.lag.set({ topic: p.topic, partition: String(p.partition) }, lag)
      partitions.push({
        topic: p.topic,
        partition: p.partition,
        position: p.position >= 0 ? p.position : null,
        storedOffset: p.stored >= 0 ? p.stored : null,
        highWatermark: high ?? null,
        lag,
        paused: p.paused,
        pausedBy: this.#reasons(p.key)
      })
    }
    this.#metrics.inflightMessages.set(budget.messages)
    this.#metrics.inflightBytes.set(budget.bytes)
    return {
      ready: this.#source.isReady() && !this.#stopping,
      inflight: { messages: budget.messages, bytes: budget.bytes, overBudget: budget.over },
      pausedAll: this.#adminPausedAll,
      partitions
    }
  }
}

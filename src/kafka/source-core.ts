/**
 * What both sources do alike, in one place: the handlers they were started with, the pause
 * set, readiness, delivery of a batch, error wrapping and the one-time failure report, the
 * chain that serialises assignments and revocations, and the bounded wait on that chain at
 * close. Each source keeps what is its own: the client, its fetch loop, its rebalance hooks.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { SluiceError, errorMessage, isSluiceError } from '../errors.ts'
import type { KafkaMessage, SourceHandlers, TopicPartition } from './types.ts'
import { tpKey } from './types.ts'

export type SourceLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>

export interface SourceCoreOptions {
  /** 'rdkafka' | 'platformatic': named in failure messages */
  kind: string
  logger?: SourceLogger | undefined
  /** the client's errors that waiting will not cure (authentication, unknown topic...) */
  isFatal (err: unknown): boolean
  /** extra text after a wrapped error's message (the client's error code) */
  detail? (err: unknown): string
}

/** How long close waits for assignments and revocations in progress. */
const SETTLE_MS = 30_000

export class SourceCore {
  readonly #o: SourceCoreOptions
  #handlers: SourceHandlers | null = null
  /** partitions paused by the owner, keyed `topic:partition` (kept across reassignments) */
  readonly paused = new Set<string>()
  /** true once partitions were assigned */
  ready = false
  /** true once close stopped delivery */
  closing = false
  #failed = false
  #chain: Promise<void> = Promise.resolve()

  constructor (o: SourceCoreOptions) {
    this.#o = o
  }

  get logger (): SourceLogger | undefined { return this.#o.logger }
  get handlers (): SourceHandlers | null { return this.#handlers }

  /** Records the handlers; a second start is a programming error. */
  started (handlers: SourceHandlers): void {
    if (this.#handlers !== null) throw new SluiceError('SLUICE_ERR_CONFIG', `the ${this.#o.kind} source was started twice`)
    this.#handlers = handlers
  }

  isReady (): boolean {
    return this.ready && !this.closing
  }

  /** Marks partitions paused (the source also tells its client, if it has such a call). */
  pause (partitions: TopicPartition[]): void {
    for (const tp of partitions) this.paused.add(tpKey(tp.topic, tp.partition))
  }

  resume (partitions: TopicPartition[]): void {
    for (const tp of partitions) this.paused.delete(tpKey(tp.topic, tp.partition))
  }

  isPaused (key: string): boolean {
    return this.paused.has(key)
  }

  /** Hands a batch to the owner; a throw there is a failure of the source. */
  deliver (messages: KafkaMessage[]): void {
    if (messages.length === 0 || this.#handlers === null) return
    try {
      this.#handlers.onBatch(messages)
    } catch (err) {
      this.fail(err)
    }
  }

  /** Awaits onRevoke; its failure is logged (the partitions are gone either way). */
  async revoke (tps: TopicPartition[]): Promise<void> {
    if (tps.length === 0 || this.#handlers === null) return
    await this.#handlers.onRevoke(tps).catch((err) => this.#o.logger?.warn({ err: errorMessage(err) }, 'onRevoke failed'))
  }

  /** Runs `step` after the assignments and revocations queued before it. */
  enqueue (step: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(step)
    return this.#chain
  }

  /** Waits until the queued steps are done, including steps queued meanwhile (bounded). */
  async settle (): Promise<void> {
    const deadline = Date.now() + SETTLE_MS
    let chain: Promise<void> | null = null
    while (chain !== this.#chain && Date.now() < deadline) {
      chain = this.#chain
      await Promise.race([chain, sleep(deadline - Date.now(), undefined, { ref: false })])
    }
    if (chain !== this.#chain) this.#o.logger?.warn(`kafka assignments still in progress after ${SETTLE_MS / 1000} s; closing anyway`)
  }

  /** A client error as a SluiceError: fatal when waiting will not cure it, else transient. */
  wrap (err: unknown, what: string, code?: 'SLUICE_ERR_KAFKA_FATAL' | 'SLUICE_ERR_KAFKA_TRANSIENT'): SluiceError {
    if (isSluiceError(err)) return err
    const kind = code ?? (this.#o.isFatal(err) ? 'SLUICE_ERR_KAFKA_FATAL' : 'SLUICE_ERR_KAFKA_TRANSIENT')
    return new SluiceError(kind, `${what}: ${errorMessage(err)}${this.#o.detail?.(err) ?? ''}`, { cause: err })
  }

  /** Reports a non-retriable error once (logged every time); the owner stops the source. */
  fail (err: unknown): void {
    if (this.closing) return
    const e = this.wrap(err, `kafka source (${this.#o.kind})`)
    this.#o.logger?.error({ code: e.code, err: e.message }, 'kafka source failed')
    if (this.#failed) return
    this.#failed = true
    this.#handlers?.onError(e)
  }

  /** Runs a synchronous client call whose failure is logged, not thrown. */
  call (fn: () => unknown, what: string): void {
    try { fn() } catch (err) { this.#o.logger?.warn({ err: errorMessage(err) }, `kafka ${what} failed`) }
  }
}

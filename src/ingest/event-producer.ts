import Kafka from 'node-rdkafka'
import type { DeliveryReport, LibrdKafkaError, ProducerGlobalConfig } from 'node-rdkafka'
import type { Logger } from 'pino'
import { SluiceError, errorMessage } from '../errors.ts'
import { brokerList } from '../kafka/brokers.ts'

export interface IngestProducerOptions {
  brokers: string
  clientId: string
  topic: string
  /** events handed to librdkafka and not yet acknowledged; more is refused (queue full) */
  maxQueued: number
  /** librdkafka's message.timeout.ms: an unacknowledged delivery fails after it */
  ackTimeoutMs: number
  logger: Pick<Logger, 'info' | 'warn'>
}

export interface ProduceItem {
  key: Buffer
  value: Buffer
}

/** Where an event landed, or why it did not. */
export type Delivery = { partition: number, offset: number } | { error: SluiceError }

/** Why nothing of a request was produced (answered 503 with Retry-After). */
export class IngestUnavailable extends SluiceError {
  readonly retryAfterS: number
  constructor (message: string, retryAfterS: number) {
    super('SLUICE_ERR_INGEST_UNAVAILABLE', message)
    this.retryAfterS = retryAfterS
  }
}

interface Pending {
  out: Delivery[]
  remaining: number
  /** false once the request was answered (its deadline passed) */
  open: boolean
  done: () => void
}

const ALL_BROKERS_DOWN = Kafka.CODES.ERRORS.ERR__ALL_BROKERS_DOWN
const PROBE_MS = 1000

/**
 * The producer of POST /events: idempotent, acks=all, per-event delivery reports (partition
 * and offset), and admission control so that a request is refused whole (503) rather than
 * queued without bound: when more than `maxQueued` events wait for acknowledgement, or while
 * the brokers are known to be down (librdkafka reported all brokers down, cleared by a
 * metadata probe once a second or by the next acknowledgement), or a request's events were
 * not acknowledged within `ackTimeoutMs`.
 */
export class IngestProducer {
  readonly #o: IngestProducerOptions
  readonly #producer: Kafka.Producer
  #queued = 0
  #down: string | null = null
  #probe: NodeJS.Timeout | null = null
  #connected = false

  constructor (opts: IngestProducerOptions) {
    this.#o = opts
    this.#producer = new Kafka.Producer({
      'bootstrap.servers': brokerList(opts.brokers),
      'client.id': opts.clientId,
      dr_cb: true,
      acks: 'all',
      'enable.idempotence': true,
      'linger.ms': 2,
      'compression.type': 'lz4',
      'message.max.bytes': 16 * 1024 * 1024,
      // admission control below keeps the queue under maxQueued; librdkafka's bound is a backstop
      'queue.buffering.max.messages': Math.max(opts.maxQueued * 2, 1000),
      'queue.buffering.max.kbytes': 1024 * 1024,
      'message.timeout.ms': opts.ackTimeoutMs,
      'socket.keepalive.enable': true
    } as unknown as ProducerGlobalConfig)
    this.#producer.on('delivery-report', (err, report) => this.#delivered(err, report))
    this.#producer.on('event.error', (err: LibrdKafkaError) => {
      // node-rdkafka reports client errors with code -1: the message says which
      if (err.code === ALL_BROKERS_DOWN || /all broker/i.test(err.message)) this.#markDown(`all brokers down: ${err.message}`)
      else opts.logger.warn({ code: err.code, err: err.message }, 'ingest producer error')
    })
  }

  /** events waiting for acknowledgement */
  get queued (): number { return this.#queued }
  /** why the brokers are considered down, or null */
  get down (): string | null { return this.#down }

  async connect (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#producer.connect({ timeout: 15_000 }, (err) => {
        if (err) reject(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `ingest producer cannot connect to ${this.#o.brokers}: ${errorMessage(err)}`, { cause: err }))
        else resolve()
      })
    })
    this.#producer.setPollInterval(5)
    this.#connected = true
  }

  /**
   * Produces the items to the topic, keyed; resolves with one delivery per item once every one
   * is acknowledged or failed. Throws IngestUnavailable, having produced nothing, when the
   * brokers are down or the queue has no room for all of them.
   */
  async produce (items: readonly ProduceItem[]): Promise<Delivery[]> {
    if (!this.#connected) throw new IngestUnavailable('the ingest producer is not connected', 5)
    if (this.#down !== null) throw new IngestUnavailable(`Kafka is unavailable (${this.#down}); nothing was produced`, 5)
    if (this.#queued + items.length > this.#o.maxQueued) {
      throw new IngestUnavailable(`the producer queue is full (${this.#queued} events waiting for acknowledgement, SLUICE_INGEST_MAX_QUEUED ${this.#o.maxQueued}); nothing was produced`, 1)
    }
    const out: Delivery[] = new Array(items.length)
    let pending!: Pending
    const settled = new Promise<void>((resolve) => { pending = { out, remaining: items.length, open: true, done: resolve } })
    for (let i = 0; i < items.length; i++) {
      const it = items[i] as ProduceItem
      try {
        this.#producer.produce(this.#o.topic, null, it.value, it.key, null, { pending, index: i })
        this.#queued++
      } catch (err) {
        out[i] = { error: new SluiceError('SLUICE_ERR_INGEST_UNAVAILABLE', `not produced: ${errorMessage(err)}`, { cause: err }) }
        if (--pending.remaining === 0) pending.done()
      }
    }
    // librdkafka does not time out messages of a partition whose broker is down (2.12): the
    // request's own deadline answers. Its events may still be delivered when the broker is
    // back; the client's retry then makes a second copy, which the sink drops by event id.
    const deadline = setTimeout(() => {
      pending.open = false
      for (let i = 0; i < out.length; i++) {
        out[i] ??= { error: new SluiceError('SLUICE_ERR_INGEST_UNAVAILABLE', `not acknowledged by Kafka within ${this.#o.ackTimeoutMs} ms (SLUICE_INGEST_ACK_TIMEOUT_MS)`) }
      }
      this.#markDown(`no acknowledgement within ${this.#o.ackTimeoutMs} ms`)
      pending.done()
    }, this.#o.ackTimeoutMs)
    await settled
    clearTimeout(deadline)
    return out
  }

  async close (): Promise<void> {
    if (this.#probe !== null) clearInterval(this.#probe)
    this.#probe = null
    if (!this.#connected) return
    this.#connected = false
    await new Promise<void>((resolve) => this.#producer.flush(5_000, () => resolve()))
    this.#producer.setPollInterval(0)
    await new Promise<void>((resolve) => this.#producer.disconnect(5_000, () => resolve()))
  }

  #delivered (err: LibrdKafkaError | null | undefined, report: DeliveryReport): void {
    this.#queued--
    const o = report.opaque as { pending: Pending, index: number } | undefined
    if (o === undefined) return
    if (!o.pending.open) {
      if (!err) this.#markUp()
      return
    }
    if (err) {
      o.pending.out[o.index] = { error: new SluiceError('SLUICE_ERR_INGEST_UNAVAILABLE', `not acknowledged by Kafka: ${err.message}`, { cause: err }) }
      this.#markDown(`delivery failed: ${err.message}`)
    } else {
      o.pending.out[o.index] = { partition: report.partition, offset: report.offset }
      this.#markUp()
    }
    if (--o.pending.remaining === 0) o.pending.done()
  }

  #markDown (why: string): void {
    if (this.#down === null) this.#o.logger.warn({ reason: why }, 'ingest: Kafka unavailable, POST /events answers 503 until it is back')
    this.#down = why
    if (this.#probe !== null || !this.#connected) return
    this.#probe = setInterval(() => {
      this.#producer.getMetadata({ topic: this.#o.topic, timeout: PROBE_MS }, (err) => { if (!err) this.#markUp() })
    }, PROBE_MS)
    this.#probe.unref()
  }

  #markUp (): void {
    if (this.#down === null) return
    this.#down = null
    if (this.#probe !== null) clearInterval(this.#probe)
    this.#probe = null
    this.#o.logger.info('ingest: Kafka is back')
  }
}

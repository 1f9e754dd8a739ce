import { setTimeout as sleep } from 'node:timers/promises'
import Kafka from 'node-rdkafka'
import type { DeliveryReport, LibrdKafkaError, MessageHeader, ProducerGlobalConfig } from 'node-rdkafka'
import type { Logger } from 'pino'
import { SluiceError, errorMessage } from '../errors.ts'
import { brokerList } from './brokers.ts'

/** One record to publish. Strings are sent as UTF-8. */
export interface ProduceRecord {
  topic: string
  key: Buffer | string | null
  value: Buffer | string | null
  headers?: Record<string, string | Buffer>
  /** explicit partition; the key decides otherwise */
  partition?: number
}

export interface RdkafkaProducerOptions {
  /** comma-separated host:port list, or an array of them */
  brokers: string | readonly string[]
  clientId: string
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
  /** extra librdkafka settings; they override the defaults below */
  config?: Record<string, string | number | boolean>
  /** how often delivery reports are polled, default 10 ms */
  pollIntervalMs?: number
  connectTimeoutMs?: number
}

const ERR_QUEUE_FULL = Kafka.CODES.ERRORS.ERR__QUEUE_FULL

/** The delivery reports of one produceBatch call are counted, not awaited one by one. */
interface PendingBatch {
  remaining: number
  /** every record has been handed to librdkafka */
  sealed: boolean
  settled: boolean
  error: LibrdKafkaError | null
  resolve: () => void
  reject: (err: Error) => void
}

function toBuffer (v: Buffer | string | null): Buffer | null {
  return v === null || Buffer.isBuffer(v) ? v : Buffer.from(v)
}

/**
 * A promise-based producer over node-rdkafka: acks=all, idempotent, lz4, linger 5 ms.
 * produceBatch resolves once every record of the batch is acknowledged by the broker and
 * rejects (SLUICE_ERR_KAFKA_TRANSIENT) if any delivery failed. One promise per batch: the
 * delivery reports carry the batch as their opaque and count it down.
 */
export class RdkafkaProducer {
  readonly #producer: Kafka.Producer
  readonly #opts: RdkafkaProducerOptions
  #connected = false
  #closed = false
  #inFlight = 0

  constructor (opts: RdkafkaProducerOptions) {
    this.#opts = opts
    const config = {
      'bootstrap.servers': brokerList(opts.brokers),
      'client.id': opts.clientId,
      dr_cb: true,
      acks: 'all',
      'enable.idempotence': true,
      'linger.ms': 5,
      'compression.type': 'lz4',
      'batch.num.messages': 10_000,
      'batch.size': 1_000_000,
      // the broker enforces its own limit; librdkafka's 1 MB default would refuse a dead letter
      // of a message the broker itself accepted
      'message.max.bytes': 16 * 1024 * 1024,
      'queue.buffering.max.messages': 500_000,
      'queue.buffering.max.kbytes': 512 * 1024,
      'message.timeout.ms': 60_000,
      'socket.keepalive.enable': true,
      ...opts.config
    } as unknown as ProducerGlobalConfig
    this.#producer = new Kafka.Producer(config)
    this.#producer.on('delivery-report', (err, report) => this.#delivered(err, report))
    this.#producer.on('event.error', (err) => {
      opts.logger?.warn({ code: err.code, err: err.message }, 'kafka producer error')
    })
  }

  /** records handed to librdkafka and not yet acknowledged */
  get inFlight (): number { return this.#inFlight }

  async connect (): Promise<void> {
    if (this.#connected) return
    await new Promise<void>((resolve, reject) => {
      this.#producer.connect({ timeout: this.#opts.connectTimeoutMs ?? 15_000 }, (err) => {
        if (err) reject(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka producer cannot connect to ${brokerList(this.#opts.brokers)}: ${errorMessage(err)}`, { cause: err }))
        else resolve()
      })
    })
    this.#producer.setPollInterval(this.#opts.pollIntervalMs ?? 10)
    this.#connected = true
  }

  /**
   * Which of `names` the cluster's metadata shows with a leader for every partition (topics
   * that do not exist are left out). Reads the metadata of all topics: asking for one topic by
   * name would let a broker with auto.create.topics.enable create it with its defaults.
   */
  async readyTopics (names: readonly string[], timeoutMs = 10_000): Promise<Set<string>> {
    if (!this.#connected || this.#closed) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka producer is not connected')
    const md = await new Promise<Kafka.Metadata>((resolve, reject) => {
      this.#producer.getMetadata({ allTopics: true, timeout: timeoutMs }, (err, data) => {
        if (err) reject(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `reading Kafka metadata: ${errorMessage(err)}`, { cause: err }))
        else resolve(data)
      })
    })
    const wanted = new Set(names)
    const out = new Set<string>()
    for (const t of md.topics) {
      if (wanted.has(t.name) && t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)) out.add(t.name)
    }
    return out
  }

  async produceBatch (records: readonly ProduceRecord[]): Promise<void> {
    if (!this.#connected || this.#closed) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', 'kafka producer is not connected')
    if (records.length === 0) return
    let batch!: PendingBatch
    const done = new Promise<void>((resolve, reject) => {
      batch = { remaining: 0, sealed: false, settled: false, error: null, resolve, reject }
    })
    const producer = this.#producer
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as ProduceRecord
      const value = toBuffer(r.value)
      const key = toBuffer(r.key)
      let headers: MessageHeader[] | undefined
      if (r.headers !== undefined) {
        headers = []
        for (const name in r.headers) headers.push({ [name]: r.headers[name] as string | Buffer })
      }
      for (;;) {
        try {
          producer.produce(r.topic, r.partition ?? null, value, key, null, batch, headers)
          batch.remaining++
          this.#inFlight++
          break
        } catch (err) {
          if ((err as LibrdKafkaError).code === ERR_QUEUE_FULL) {
            // librdkafka's queue is full: let delivery reports drain it
            producer.poll()
            await sleep(2)
            continue
          }
          batch.error ??= err as LibrdKafkaError
          break
        }
      }
      if (batch.error !== null) break
    }
    batch.sealed = true
    this.#settle(batch)
    return done
  }

  async flush (timeoutMs = 30_000): Promise<void> {
    if (!this.#connected) return
    await new Promise<void>((resolve, reject) => {
      this.#producer.flush(timeoutMs, (err) => {
        if (err) reject(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka producer flush failed: ${errorMessage(err)}`, { cause: err }))
        else resolve()
      })
    })
  }

  /** Flushes what is queued (bounded), then disconnects. */
  async close (timeoutMs = 30_000): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (!this.#connected) return
    try {
      await this.flush(timeoutMs)
    } catch (err) {
      this.#opts.logger?.warn({ err: errorMessage(err), inFlight: this.#inFlight }, 'kafka producer flush on close failed')
    }
    this.#producer.setPollInterval(0)
    await new Promise<void>((resolve) => {
      this.#producer.disconnect(timeoutMs, () => resolve())
    })
    this.#connected = false
  }

  #delivered (err: LibrdKafkaError | null | undefined, report: DeliveryReport): void {
    this.#inFlight--
    const batch = report.opaque as PendingBatch | undefined
    if (batch === undefined) return
    if (err) batch.error ??= err
    batch.remaining--
    this.#settle(batch)
  }

  #settle (batch: PendingBatch): void {
    if (!batch.sealed || batch.remaining > 0 || batch.settled) return
    batch.settled = true
    if (batch.error === null) {
      batch.resolve()
    } else {
      const e = batch.error
      batch.reject(new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `kafka delivery failed: ${e.message} (code ${e.code})`, { cause: e }))
    }
  }
}

// An S3 snapshot sink opened on its own schema, topic and S3 prefix, driven batch by batch as
// a lane drives it (prepare before the transaction, write in it, committed after).
import pg from 'pg'
import { pino } from 'pino'
import type { Logger } from 'pino'
import type { Test } from 'tap'
import type { S3Config } from '../../src/config/config.ts'
import { quoteIdent } from '../../src/db/quote-ident.ts'
import { deleteTopics } from '../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../src/kafka/producer.ts'
import type { KafkaMessage } from '../../src/kafka/types.ts'
import { SluiceMetrics } from '../../src/metrics/metrics.ts'
import type { EntityEvent } from '../../src/model/event.ts'
import { S3SnapshotSink } from '../../src/sinks/s3/s3-snapshot-sink.ts'
import type { SinkWriteResult } from '../../src/sinks/sink.ts'
import { TimescaleEventSink } from '../../src/sinks/timescale/event-sink.ts'
import { migrate } from '../../src/sinks/timescale/migrate.ts'
import { validateEnvelope } from '../../src/stages/validate-envelope.ts'
import { inTransaction } from './pg-transaction.ts'
import { s3Client, s3Config, testPrefix } from './s3.ts'
import { brokers, pgUrl, uniqueName } from './worker-harness.ts'

const validate = validateEnvelope({})

/** A snapshot event in design.md's envelope. */
export function envelope (type: string, payload: Record<string, unknown>, eventId = uniqueName('evt')): Record<string, unknown> {
  return {
    eventId,
    eventType: type,
    timestamp: '2025-02-25T10:55:00Z',
    aggregateType: 'Snapshot',
    aggregateId: String(payload.snapshotId ?? 'none'),
    version: 1,
    payload: { entity: 'Snapshot', user: 'system', workspace: 'default', ...payload },
    metadata: { schemaVersion: '1', correlationId: 'corr-1', source: 'snapshot-service' }
  }
}

export interface SinkFixture {
  sink: S3SnapshotSink
  pool: pg.Pool
  prefix: string
  topic: string
  s3: ReturnType<typeof s3Client>
  /** one batch in one transaction, like a lane: [event, origin offset] */
  write (events: Array<Record<string, unknown>>, firstOffset: number, partition?: number): Promise<SinkWriteResult>
  /** the same in two steps: the events taken in now, written later */
  take (events: Array<Record<string, unknown>>, firstOffset: number, partition?: number): () => Promise<SinkWriteResult>
  /** a sink buffer holding these events (origin offsets from firstOffset), for a test that drives prepare/write itself */
  buffer (events: Array<Record<string, unknown>>, firstOffset: number, partition?: number): ReturnType<S3SnapshotSink['createBuffer']>
}

/** `stateDumps: false`: the sink and event log of a worker with SLUICE_PROJECTION=off. */
export async function sinkFixture (t: Test, label: string, over: Partial<S3Config> = {}, opts: { pgUrl?: string, logger?: Logger, stateDumps?: boolean } = {}): Promise<SinkFixture> {
  const schema = uniqueName(`s3sink_${label}`).toLowerCase()
  const topic = uniqueName('snapshots')
  const prefix = testPrefix(t, label)
  const pool = new pg.Pool({ connectionString: opts.pgUrl ?? pgUrl, max: 3, options: `-c search_path=${quoteIdent(schema)}` })
  pool.on('error', () => {}) // an idle connection cut by a stopped PostgreSQL (the next query reconnects)
  await migrate(pool, schema, 'sql')
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('s3sink-test') })
  await producer.connect()
  const sink = new S3SnapshotSink({ s3: s3Config(prefix, over), topic, retry: { baseMs: 20, maxMs: 200 }, eventLog: new TimescaleEventSink(opts.stateDumps === false ? { stateTable: null } : {}), stateDumps: opts.stateDumps })
  await sink.open({ group: 'g1', pool, brokers, producer, metrics: new SluiceMetrics(), logger: opts.logger ?? pino({ level: 'silent' }) })
  const s3 = s3Client(over.endpoint ?? undefined)
  t.teardown(async () => {
    await sink.close()
    await producer.close()
    s3.destroy()
    await pool.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`).catch(() => {})
    await pool.end()
    await deleteTopics(brokers, [topic]).catch(() => {})
  })
  const buffer = (events: Array<Record<string, unknown>>, firstOffset: number, partition = 0): ReturnType<S3SnapshotSink['createBuffer']> => {
    const b = sink.createBuffer()
    events.forEach((raw, i) => {
      const value = Buffer.from(JSON.stringify(raw))
      const origin: KafkaMessage = { topic: 'events', partition, offset: firstOffset + i, key: null, value, timestamp: Date.now(), headers: undefined, size: value.length }
      b.add(validate.run(JSON.parse(value.toString()), origin) as EntityEvent, origin)
    })
    return b
  }
  const take = (events: Array<Record<string, unknown>>, firstOffset: number, partition = 0): () => Promise<SinkWriteResult> => {
    const b = buffer(events, firstOffset, partition)
    return async () => commit(b)
  }
  // like a lane: the S3 work before the transaction, the rows in it
  const commit = async (buffer: ReturnType<S3SnapshotSink['createBuffer']>): Promise<SinkWriteResult> => {
    await sink.prepare([buffer])
    const r = await inTransaction(pool, async (client) => sink.write(client, [buffer]))
    sink.committed([buffer])
    return r
  }
  const write = async (events: Array<Record<string, unknown>>, firstOffset: number, partition = 0): Promise<SinkWriteResult> => take(events, firstOffset, partition)()
  return { sink, pool, prefix, topic, s3, write, take, buffer }
}

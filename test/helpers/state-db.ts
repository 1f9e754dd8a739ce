// A migrated schema of its own and the event sink's transaction, for the state tests that
// write events directly (no Kafka): each test gets a schema, dropped when it ends.
import pg from 'pg'
import type { PoolClient } from 'pg'
import type { Test } from 'tap'
import type { KafkaMessage } from '../../src/kafka/types.ts'
import type { EntityEvent } from '../../src/model/event.ts'
import { storeOffsets } from '../../src/pipeline/offset-store.ts'
import { TimescaleEventSink } from '../../src/sinks/timescale/event-sink.ts'
import type { SinkWriteResult } from '../../src/sinks/sink.ts'
import { migrate } from '../../src/sinks/timescale/migrate.ts'
import { quoteIdent } from '../../src/db/quote-ident.ts'
import { pgUrl, uniqueName } from './worker-harness.ts'
import { dropSchemaAtEnd } from './pg-schema.ts'
import { inTransaction } from './pg-transaction.ts'

export const GROUP = 'sluice-state-test'

export interface StateDb {
  schema: string
  pool: pg.Pool
}

export async function stateDb (t: Test, prefix = 't_state'): Promise<StateDb> {
  const schema = uniqueName(prefix).toLowerCase()
  const pool = new pg.Pool({ connectionString: pgUrl, max: 6, options: `-c search_path=${quoteIdent(schema)}` })
  pool.on('error', () => {})
  dropSchemaAtEnd(t, pgUrl, schema, async () => { await pool.end().catch(() => {}) })
  await migrate(pool, schema, 'sql')
  return { schema, pool }
}

/** One event of a test, with its Kafka origin. */
export interface PlacedEvent {
  event: EntityEvent
  topic: string
  partition: number
  offset: number
}

export function origin (p: Omit<PlacedEvent, 'event'>): KafkaMessage {
  return { topic: p.topic, partition: p.partition, offset: p.offset, key: null, value: null, timestamp: 0, headers: {}, size: 0 }
}

/** Writes events as the lane does: one transaction, the sink's write, the next offsets. */
export async function writeBatch (client: PoolClient, events: readonly PlacedEvent[], sink = new TimescaleEventSink()): Promise<SinkWriteResult> {
  const b = sink.createBuffer()
  const next = new Map<string, { topic: string, partition: number, offset: number }>()
  for (const p of events) {
    b.add(p.event, origin(p))
    const k = `${p.topic}\u0000${p.partition}`
    if ((next.get(k)?.offset ?? -1) < p.offset + 1) next.set(k, { topic: p.topic, partition: p.partition, offset: p.offset + 1 })
  }
  const r = await sink.write(client, [b])
  await storeOffsets(client, GROUP, [...next.values()])
  return r
}

export async function commitEvents (pool: pg.Pool, events: readonly PlacedEvent[]): Promise<SinkWriteResult> {
  return inTransaction(pool, async (client) => writeBatch(client, events))
}

/** An EntityEvent of the normalised shape the validate stage gives. */
export function entityEvent (e: { id: string, type: string, entity: string | null, entityId: string | null, timestamp: string, version?: number | null, payload?: Record<string, unknown> }): EntityEvent {
  return {
    eventId: e.id,
    eventType: e.type,
    timestamp: e.timestamp,
    aggregateType: e.entity,
    entity: e.entity,
    entityId: e.entityId,
    version: e.version == null ? null : BigInt(e.version),
    userName: 'tester',
    workspace: 'default',
    payload: e.payload ?? {},
    metadata: null,
    correlationId: null,
    causationId: null
  }
}

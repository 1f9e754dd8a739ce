// Hand-made entity events for the state tests: the design's envelope, keyed by entity id.
import { RdkafkaProducer } from '../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../src/kafka/producer.ts'
import { brokers, uniqueName } from './worker-harness.ts'

export interface EventSpec {
  id: string
  type: string
  entity?: string | null
  entityId?: string | null
  version?: number | null
  timestamp: string
  /** payload fields besides entity/entityId/user/workspace */
  fields?: Record<string, unknown>
  /** payload.changes */
  changes?: unknown
}

/** The envelope of design.md for one spec. */
export function envelope (s: EventSpec): Record<string, unknown> {
  const payload: Record<string, unknown> = { user: 'john.doe', workspace: 'default', ...s.fields }
  if (s.entity != null) payload.entity = s.entity
  if (s.entityId != null) payload.entityId = s.entityId
  if (s.changes !== undefined) payload.changes = s.changes
  const e: Record<string, unknown> = { eventId: s.id, eventType: s.type, timestamp: s.timestamp, payload, metadata: { schemaVersion: '1', source: 'test' } }
  if (s.entity != null) e.aggregateType = s.entity
  if (s.entityId != null) e.aggregateId = s.entityId
  if (s.version != null) e.version = s.version
  return e
}

/** Produces specs in order (each to its partition, key = entity id), acknowledged. */
export async function produceSpecs (topic: string, specs: ReadonlyArray<EventSpec & { partition: number }>): Promise<void> {
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('state-producer') })
  await producer.connect()
  try {
    const records: ProduceRecord[] = specs.map((s) => ({ topic, partition: s.partition, key: s.entityId ?? s.id, value: JSON.stringify(envelope(s)) }))
    await producer.produceBatch(records)
  } finally {
    await producer.close()
  }
}

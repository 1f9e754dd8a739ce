import type { EntityEvent } from '../model/event.ts'

type Obj = Record<string, unknown>

function isObj (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The first field present (not undefined) among the names, else undefined. */
function pick (o: Obj | undefined, names: readonly string[]): unknown {
  if (o === undefined) return undefined
  for (const n of names) if (o[n] !== undefined) return o[n]
  return undefined
}

/**
 * The seeds' field-name variants, mapped onto EntityEvent's fields. The result is not yet
 * validated: wrong types stay as they are so that the schema reports them.
 *  eventId: eventId | event_id | id
 *  eventType: eventType | event_type | type
 *  timestamp: timestamp | time | occurredAt | occurred_at
 *  payload: payload | data
 *  aggregateType / entity: aggregateType | aggregate_type | payload.entity
 *  entityId: aggregateId | aggregate_id | payload.entityId | payload.entity_id
 *  userName: payload.user | payload.userName | payload.user_name | user | userId
 *  workspace: payload.workspace | workspace
 *  correlationId / causationId: metadata.x | metadata.x_id | top-level variants
 */
export function normalizeEnvelope (raw: Obj): Record<keyof EntityEvent, unknown> {
  const payload = pick(raw, ['payload', 'data'])
  const p = isObj(payload) ? payload : undefined
  const metadata = raw.metadata
  const m = isObj(metadata) ? metadata : undefined
  const aggregateType = pick(raw, ['aggregateType', 'aggregate_type']) ?? pick(p, ['entity', 'entityType', 'entity_type'])
  return {
    eventId: pick(raw, ['eventId', 'event_id', 'id']),
    eventType: pick(raw, ['eventType', 'event_type', 'type']),
    timestamp: pick(raw, ['timestamp', 'time', 'occurredAt', 'occurred_at']),
    aggregateType: aggregateType ?? null,
    entity: pick(p, ['entity', 'entityType', 'entity_type']) ?? aggregateType ?? null,
    entityId: pick(raw, ['aggregateId', 'aggregate_id']) ?? pick(p, ['entityId', 'entity_id']) ?? null,
    version: pick(raw, ['version']) ?? null,
    userName: pick(p, ['user', 'userName', 'user_name']) ?? pick(raw, ['user', 'userName', 'userId', 'user_id']) ?? null,
    workspace: pick(p, ['workspace']) ?? pick(raw, ['workspace']) ?? null,
    payload,
    metadata: metadata ?? null,
    correlationId: pick(m, ['correlationId', 'correlation_id']) ?? pick(raw, ['correlationId', 'correlation_id']) ?? null,
    causationId: pick(m, ['causationId', 'causation_id']) ?? pick(raw, ['causationId', 'causation_id']) ?? null
  }
}

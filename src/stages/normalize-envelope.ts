import type { EntityEvent } from '../model/event.ts'

type Obj = Record<string, unknown>

function isObj (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The first field present (not undefined) among the names, else undefined; its name is added
 * to `used` unless it is null (a null that another variant overrides is then kept in `extra`).
 */
function pick (o: Obj | undefined, names: readonly string[], used?: Set<string>): unknown {
  if (o === undefined) return undefined
  for (const n of names) {
    if (o[n] !== undefined) {
      if (o[n] !== null) used?.add(n)
      return o[n]
    }
  }
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
 * `used` receives the names of the top-level members whose values reach a column; the others
 * (a `data` beside `payload`, an `aggregateType` that differs from payload.entity, unknown
 * members) are stored in the `extra` column by the validate stage.
 */
export function normalizeEnvelope (raw: Obj, used?: Set<string>): Omit<Record<keyof EntityEvent, unknown>, 'source'> {
  const payload = pick(raw, ['payload', 'data'], used)
  const p = isObj(payload) ? payload : undefined
  const metadata = raw.metadata
  if (metadata !== undefined) used?.add('metadata')
  if (raw.version !== undefined) used?.add('version')
  const m = isObj(metadata) ? metadata : undefined
  const entity = pick(p, ['entity', 'entityType', 'entity_type'])
  // the aggregate type is stored as the entity when the payload names none, or when they agree
  const aggregateType = pick(raw, ['aggregateType', 'aggregate_type'], entity === undefined || entity === (raw.aggregateType ?? raw.aggregate_type) ? used : undefined) ?? entity
  return {
    eventId: pick(raw, ['eventId', 'event_id', 'id'], used),
    eventType: pick(raw, ['eventType', 'event_type', 'type'], used),
    timestamp: pick(raw, ['timestamp', 'time', 'occurredAt', 'occurred_at'], used),
    aggregateType: aggregateType ?? null,
    entity: entity ?? aggregateType ?? null,
    entityId: pick(raw, ['aggregateId', 'aggregate_id'], used) ?? pick(p, ['entityId', 'entity_id']) ?? null,
    version: pick(raw, ['version'], used) ?? null,
    userName: pick(p, ['user', 'userName', 'user_name']) ?? pick(raw, ['user', 'userName', 'userId', 'user_id'], used) ?? null,
    workspace: pick(p, ['workspace']) ?? pick(raw, ['workspace'], used) ?? null,
    payload,
    metadata: metadata ?? null,
    correlationId: pick(m, ['correlationId', 'correlation_id']) ?? pick(raw, ['correlationId', 'correlation_id'], used) ?? null,
    causationId: pick(m, ['causationId', 'causation_id']) ?? pick(raw, ['causationId', 'causation_id'], used) ?? null
  }
}

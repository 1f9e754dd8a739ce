/**
 * The fold of an entity's events into its state, in JavaScript: the reference the tests hold
 * the SQL fold to (the aggregate `sluice_fold` of sql/004_entity_state.sql over the step of
 * sql/010_fold_step.sql, which is what sluice runs). Keep the two identical; README "Entity
 * state" documents them.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

/** Payload fields that describe the envelope, not the entity: never part of the state. */
export const ENVELOPE_FIELDS: readonly string[] = ['entity', 'entityId', 'entity_id', 'entityType', 'entity_type', 'user', 'userName', 'user_name', 'workspace']

export interface EntityFold {
  state: JsonObject
  deleted: boolean
  /** events folded */
  events: number
}

export function isJsonObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export type EventKind = 'created' | 'deleted' | 'merged'

/** `*_CREATED` sets the state, `*_DELETED` leaves a tombstone, anything else merges. */
export function eventKind (eventType: string): EventKind {
  const t = eventType.toUpperCase()
  if (t.endsWith('_DELETED')) return 'deleted'
  if (t.endsWith('_CREATED')) return 'created'
  return 'merged'
}

/** payload.changes when it is an object, else the payload without its envelope fields. */
export function eventChanges (payload: unknown): JsonObject {
  if (!isJsonObject(payload)) return {}
  const changes = payload.changes
  if (isJsonObject(changes)) return changes
  const out: JsonObject = {}
  for (const [k, v] of Object.entries(payload)) if (!ENVELOPE_FIELDS.includes(k)) out[k] = v
  return out
}

/** The state after one event (SQL: sluice_fold_step's state). */
export function applyEvent (state: JsonObject, eventType: string, payload: unknown): JsonObject {
  switch (eventKind(eventType)) {
    case 'deleted': return state
    case 'created': return eventChanges(payload)
    default: return { ...state, ...eventChanges(payload) }
  }
}

export function emptyFold (): EntityFold {
  return { state: {}, deleted: false, events: 0 }
}

/** One step of the fold (SQL: sluice_fold_step). */
export function foldStep (acc: EntityFold, eventType: string, payload: unknown): EntityFold {
  const kind = eventKind(eventType)
  return {
    state: applyEvent(acc.state, eventType, payload),
    deleted: kind === 'deleted' ? true : kind === 'created' ? false : acc.deleted,
    events: acc.events + 1
  }
}

export interface FoldableEvent {
  eventType: string
  payload: unknown
  partition: number
  offset: number
  topic?: string
}

/** Fold order: (partition, offset, topic). */
export function compareFoldOrder (a: FoldableEvent, b: FoldableEvent): number {
  return a.partition - b.partition || a.offset - b.offset || (a.topic ?? '').localeCompare(b.topic ?? '')
}

/** The fold of events (any order given; folded in fold order) from `base` or the empty state. */
export function foldEvents (events: readonly FoldableEvent[], base: EntityFold = emptyFold()): EntityFold {
  let acc = base
  for (const e of [...events].sort(compareFoldOrder)) acc = foldStep(acc, e.eventType, e.payload)
  return acc
}

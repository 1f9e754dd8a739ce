/** SQL shared by the projection, the entity queries and restores (identifiers are trusted). */

/**
 * sluice_fold over entity_event_logs' columns, in fold order; `withBase`: the relation also
 * has an `ord` column, 0 for a 'sluice:base' pseudo event that must come first.
 */
export function foldCall (alias = '', withBase = false): string {
  const a = alias === '' ? '' : alias + '.'
  return `sluice_fold(${a}event_type, ${a}event_data, ${a}version, ${a}"timestamp", ${a}event_id, ${a}source_topic, ${a}source_partition, ${a}source_offset ORDER BY ${withBase ? `${a}ord, ` : ''}${a}source_partition, ${a}source_offset, ${a}source_topic)`
}

/** The columns of an event relation a fold reads (entity_event_logs' names). */
export const FOLD_EVENT_COLUMNS = 'entity, entity_id, event_type, event_data, version, "timestamp", event_id, source_topic, source_partition, source_offset'

/** Columns of entity_state, in the order stateValues() gives them. */
export const STATE_COLUMNS = 'entity, entity_id, version, state, deleted, updated_at, last_event_id, source_topic, source_partition, source_offset'

/** entity_state's values from a fold result column `f` of a relation `alias` with entity, entity_id. */
export function stateValues (alias: string, f = 'f'): string {
  const x = `(${alias}.${f})`
  return `${alias}.entity, ${alias}.entity_id, ${x}.version, ${x}.state, ${x}.deleted, ${x}.updated_at, ${x}.last_event_id, ${x}.source_topic, ${x}.source_partition, ${x}.source_offset`
}

/** SET list of an UPDATE of entity_state from a fold result column `f` of `alias`. */
export function stateAssignments (alias: string, f = 'f'): string {
  return STATE_FIELDS.map((c) => `${c} = (${alias}.${f}).${c}`).join(', ')
}

const STATE_FIELDS = ['version', 'state', 'deleted', 'updated_at', 'last_event_id', 'source_topic', 'source_partition', 'source_offset']

/** SET list of an upsert into entity_state from EXCLUDED. */
export const STATE_UPSERT_SET = STATE_FIELDS
  .map((c) => `${c} = EXCLUDED.${c}`).join(', ')

/** A 'sluice:base' pseudo event from an entity_state row `s` (its state, tombstone and last event). */
export function basePseudoEvent (s: string, ord = '0'): string {
  return `${s}.entity, ${s}.entity_id, 'sluice:base'::text AS event_type, jsonb_build_object('state', ${s}.state, 'deleted', ${s}.deleted) AS event_data, ${s}.version, ${s}.updated_at AS "timestamp", ${s}.last_event_id AS event_id, ${s}.source_topic, ${s}.source_partition, ${s}.source_offset, ${ord} AS ord`
}

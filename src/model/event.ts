/**
 * The envelope of design.md as sluice stores it: the seeds' field-name variants
 * (eventType/event_type, payload/data, aggregateId/payload.entityId, ...) normalised to one
 * shape by the validate stage.
 */
export interface EntityEvent {
  eventId: string
  eventType: string
  /** ISO-8601 as the producer sent it; PostgreSQL parses it (and rejects impossible dates) */
  timestamp: string
  aggregateType: string | null
  entity: string | null
  entityId: string | null
  version: number | null
  userName: string | null
  workspace: string | null
  payload: Record<string, unknown>
  metadata: Record<string, unknown> | null
  correlationId: string | null
  causationId: string | null
}

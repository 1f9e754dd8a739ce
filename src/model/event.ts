/**
 * The envelope of design.md as sluice stores it: the seeds' field-name variants
 * (eventType/event_type, payload/data, aggregateId/payload.entityId, ...) normalised to one
 * shape by the validate stage.
 */
export interface EntityEvent {
  eventId: string
  eventType: string
  /** ISO-8601 as the producer sent it, a time timestamptz holds exactly (src/iso-time.ts) */
  timestamp: string
  aggregateType: string | null
  entity: string | null
  entityId: string | null
  /** parsed exactly from the producer's text (0 .. 2^63-1) */
  version: bigint | null
  userName: string | null
  workspace: string | null
  payload: Record<string, unknown>
  metadata: Record<string, unknown> | null
  correlationId: string | null
  causationId: string | null
  /** the producer's own JSON text of what is stored as JSON (absent for events a sink makes) */
  source?: EventSource
}

/**
 * The JSON columns as the producer wrote them: jsonb keeps numbers exactly when it is given
 * this text rather than a re-serialisation of JavaScript values. `payload` and `metadata` are
 * the objects the texts were read with: a sink that replaces an event's payload (the S3 sink
 * slims snapshot events) gets no text for the new one.
 */
export interface EventSource {
  readonly payload: object
  readonly payloadJson: string
  readonly metadata: object | null
  readonly metadataJson: string | null
  /** `{...}` of the top-level members that no column holds, as produced; null when there are none */
  readonly extraJson: string | null
  /**
   * Where payloadJson and metadataJson are in the message, when none of its bytes needs COPY
   * escaping (a sink copies them from there rather than decoding and encoding them); null
   * otherwise
   */
  readonly spans: SourceSpans | null
}

/** The message's bytes and the [start, end) of the payload's and metadata's JSON text in them. */
export interface SourceSpans {
  readonly buf: Buffer
  readonly payloadStart: number
  readonly payloadEnd: number
  /** -1 when metadataJson is null */
  readonly metadataStart: number
  readonly metadataEnd: number
}

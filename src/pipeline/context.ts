import type { S3Config } from '../config/config.ts'

/** What the engine hands a pipeline factory in pipelines/ (from the validated configuration). */
export interface PipelineContext {
  /** larger message values are poison */
  maxEventBytes: number
  /** deeper JSON nesting is poison (SLUICE_MAX_JSON_DEPTH; decodeJson's default when absent) */
  maxJsonDepth?: number
  /** maintain the entity-state projection with each batch (SLUICE_PROJECTION; on when absent) */
  projection?: boolean
  /** per-event-type JSON Schemas (pipelines/schemas by default) */
  schemasDir: string
  /** S3 for snapshot sinks; null or absent when SLUICE_S3_BUCKET is unset */
  s3?: S3Config | null
  /** the topic of SNAPSHOT_UPLOADED / SNAPSHOT_FAILED (SLUICE_SNAPSHOTS_TOPIC) */
  snapshotsTopic?: string
  /** transient-failure backoff (SLUICE_RETRY_BASE_MS / SLUICE_RETRY_MAX_MS) */
  retry?: { baseMs: number, maxMs: number }
}

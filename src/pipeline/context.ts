/** What the engine hands a pipeline factory in pipelines/ (from the validated configuration). */
export interface PipelineContext {
  /** larger message values are poison */
  maxEventBytes: number
  /** per-event-type JSON Schemas (pipelines/schemas by default) */
  schemasDir: string
}

import { SluiceError } from '../errors.ts'
import type { Sink } from '../sinks/sink.ts'
import type { Stage } from './stage.ts'

/**
 * A pipeline is data: a composed stage turning a Kafka value into a record, a classifier
 * naming the record's route, and the sink of each route. Pipelines live in pipelines/.
 */
export interface PipelineDefinition<T = unknown> {
  readonly name: string
  readonly stage: Stage<Buffer | null, T>
  classify (record: T): string
  readonly routes: Readonly<Record<string, Sink<T>>>
}

export function definePipeline<T> (def: PipelineDefinition<T>): PipelineDefinition<T> {
  if (!/^[a-z][a-z0-9-]*$/.test(def.name)) {
    throw new SluiceError('SLUICE_ERR_PIPELINE', `pipeline name "${def.name}" must be lowercase letters, digits and dashes`)
  }
  if (Object.keys(def.routes).length === 0) {
    throw new SluiceError('SLUICE_ERR_PIPELINE', `pipeline ${def.name} has no routes`)
  }
  return Object.freeze({ ...def, routes: Object.freeze({ ...def.routes }) })
}

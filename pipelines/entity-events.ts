// The default pipeline: decode JSON -> validate the envelope (seed variants normalised,
// per-type schemas) -> classify SNAPSHOT_* as `snapshot`, the rest as `regular` -> store.
// Until the S3 snapshot sink exists, the snapshot route also stores into the event log.
import type { PipelineContext } from '../src/pipeline/context.ts'
import { definePipeline } from '../src/pipeline/definition.ts'
import type { PipelineDefinition } from '../src/pipeline/definition.ts'
import type { EntityEvent } from '../src/pipeline/event.ts'
import { compose } from '../src/pipeline/stage.ts'
import { TimescaleEventSink } from '../src/sinks/timescale/event-sink.ts'
import { classifyByEventType } from '../src/stages/classify-event-type.ts'
import { decodeJson } from '../src/stages/decode-json.ts'
import { validateEnvelope } from '../src/stages/validate-envelope.ts'

export default function entityEvents (ctx: PipelineContext): PipelineDefinition<EntityEvent> {
  const eventLog = new TimescaleEventSink({ name: 'timescale' })
  return definePipeline<EntityEvent>({
    name: 'entity-events',
    stage: compose(decodeJson({ maxBytes: ctx.maxEventBytes }), validateEnvelope({ schemasDir: ctx.schemasDir })),
    classify: classifyByEventType({ routes: { snapshot: ['SNAPSHOT_'] }, otherwise: 'regular' }),
    routes: { regular: eventLog, snapshot: eventLog }
  })
}

// The default pipeline: decode JSON -> validate the envelope (seed variants normalised,
// per-type schemas) -> classify -> store. The events that make a snapshot (SNAPSHOT_CREATED
// carrying one, SNAPSHOT_CHUNK, SNAPSHOT_TRIGGERED) take the `snapshot` route to the S3 sink,
// which also records them, slimmed, in the event log; everything else (SNAPSHOT_UPLOADED and
// SNAPSHOT_FAILED included) is `regular`. Without S3 (SLUICE_S3_BUCKET unset) the snapshot
// route stores into the event log like any event.
import type { PipelineContext } from '../src/pipeline/context.ts'
import { definePipeline } from '../src/pipeline/definition.ts'
import type { PipelineDefinition } from '../src/pipeline/definition.ts'
import type { EntityEvent } from '../src/model/event.ts'
import { compose } from '../src/pipeline/stage.ts'
import { S3SnapshotSink } from '../src/sinks/s3/s3-snapshot-sink.ts'
import { TimescaleEventSink } from '../src/sinks/timescale/event-sink.ts'
import { classifyByEventType } from '../src/stages/classify-event-type.ts'
import { decodeJson } from '../src/stages/decode-json.ts'
import { validateEnvelope } from '../src/stages/validate-envelope.ts'

const SNAPSHOT_MAKERS = ['SNAPSHOT_CREATED', 'SNAPSHOT_CHUNK', 'SNAPSHOT_TRIGGERED']

export default function entityEvents (ctx: PipelineContext): PipelineDefinition<EntityEvent> {
  // SLUICE_PROJECTION=off: the log only, entity_state is left as it is (rebuilt by POST /restore)
  const eventLog = new TimescaleEventSink({ name: 'timescale', ...(ctx.projection === false ? { stateTable: null } : {}) })
  const snapshots = ctx.s3 == null
    ? eventLog
    : new S3SnapshotSink({ s3: ctx.s3, topic: ctx.snapshotsTopic ?? 'todo-snapshots', retry: ctx.retry ?? { baseMs: 100, maxMs: 10_000 }, eventLog, stateDumps: ctx.projection !== false })
  return definePipeline<EntityEvent>({
    name: 'entity-events',
    // a SNAPSHOT_CHUNK's data (and any other `data` string of 64 KiB or more below the top
    // level) stays bytes: a BulkString, decoded by the S3 sink straight into its part buffer
    stage: compose(decodeJson({ maxBytes: ctx.maxEventBytes, maxDepth: ctx.maxJsonDepth, bulk: { key: 'data', minBytes: 64 * 1024 } }), validateEnvelope({ schemasDir: ctx.schemasDir })),
    classify: classifyByEventType({ routes: { snapshot: SNAPSHOT_MAKERS }, otherwise: 'regular' }),
    routes: { regular: eventLog, snapshot: snapshots }
  })
}

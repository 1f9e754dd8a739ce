import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { compose } from '../../../src/pipeline/stage.ts'
import { decodeJson } from '../../../src/stages/decode-json.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'

const stage = compose(decodeJson({ maxBytes: 4096 }), validateEnvelope({ schemasDir: 'pipelines/schemas' }))
const origin = { topic: 't', partition: 0, offset: 0, key: null, value: null, timestamp: 0, headers: undefined, size: 0 } satisfies KafkaMessage

function run (v: unknown): ReturnType<typeof stage.run> {
  return stage.run(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), origin)
}

function rejects (v: unknown): { code: string, stage: string, message: string } {
  try {
    run(v)
  } catch (err) {
    return err as { code: string, stage: string, message: string }
  }
  throw new Error('expected a rejection')
}

const design = {
  eventId: 'e-1',
  eventType: 'TASK_CREATED',
  timestamp: '2025-02-25T10:45:00Z',
  aggregateType: 'Task',
  aggregateId: 'task_123',
  version: 3,
  payload: { entity: 'Task', entityId: 'task_123', user: 'john.doe', workspace: 'default', changes: 'x' },
  metadata: { schemaVersion: '1', correlationId: 'c-1', causationId: 'k-1', source: 'core-entity-engine' }
}

test('the design.md envelope is normalised', async (t) => {
  const e = run(design)
  t.same(e, {
    eventId: 'e-1',
    eventType: 'TASK_CREATED',
    timestamp: '2025-02-25T10:45:00Z',
    aggregateType: 'Task',
    entity: 'Task',
    entityId: 'task_123',
    version: 3,
    userName: 'john.doe',
    workspace: 'default',
    payload: design.payload,
    metadata: design.metadata,
    correlationId: 'c-1',
    causationId: 'k-1'
  })
})

test('the seeds\' snake_case / data variants are stored the same way', async (t) => {
  const e = run({
    event_id: 'e-2',
    event_type: 'STATUS_CHANGED',
    timestamp: '2025-02-25T10:45:00.123+01:00',
    data: { entity: 'Task', entity_id: 'task_9', user: 'ann', workspace: 'w' },
    metadata: { correlation_id: 'c', causation_id: 'k' }
  })
  t.equal(e.eventId, 'e-2')
  t.equal(e.eventType, 'STATUS_CHANGED')
  t.equal(e.entity, 'Task')
  t.equal(e.aggregateType, 'Task')
  t.equal(e.entityId, 'task_9')
  t.equal(e.userName, 'ann')
  t.equal(e.correlationId, 'c')
  t.equal(e.causationId, 'k')
  t.equal(e.version, null)
  t.same(e.payload, { entity: 'Task', entity_id: 'task_9', user: 'ann', workspace: 'w' })
})

test('poison is rejected with a code, the stage and a reason', async (t) => {
  let err = rejects('{"eventId": "x", ')
  t.equal(err.code, 'SLUICE_ERR_DECODE')
  t.equal(err.stage, 'decode')
  err = rejects({ ...design, eventType: undefined })
  t.equal(err.code, 'SLUICE_ERR_ENVELOPE')
  t.equal(err.stage, 'validate')
  t.match(err.message, /eventType/)
  err = rejects({ ...design, version: 'three' })
  t.equal(err.code, 'SLUICE_ERR_ENVELOPE')
  t.match(err.message, /version/)
  err = rejects({ ...design, timestamp: 'yesterday' })
  t.match(err.message, /timestamp/)
  err = rejects({ ...design, payload: 'text' })
  t.match(err.message, /payload/)
  t.equal(rejects([1, 2]).code, 'SLUICE_ERR_ENVELOPE')
  t.equal(rejects({ ...design, payload: { blob: 'y'.repeat(5000) } }).code, 'SLUICE_ERR_TOO_LARGE')
  t.throws(() => stage.run(null, origin), { code: 'SLUICE_ERR_DECODE' })
})

test('per-event-type schemas from pipelines/schemas apply to their type only', async (t) => {
  const { user: _u, ...noUser } = design.payload
  const err = rejects({ ...design, payload: noUser })
  t.equal(err.code, 'SLUICE_ERR_SCHEMA')
  t.match(err.message, /TASK_CREATED/)
  t.equal(run({ ...design, eventType: 'TASK_UPDATED', payload: noUser }).eventType, 'TASK_UPDATED')
})

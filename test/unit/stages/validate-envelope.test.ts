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
  const { source, ...e } = run(design)
  t.same(e, {
    eventId: 'e-1',
    eventType: 'TASK_CREATED',
    timestamp: '2025-02-25T10:45:00Z',
    aggregateType: 'Task',
    entity: 'Task',
    entityId: 'task_123',
    version: 3n,
    userName: 'john.doe',
    workspace: 'default',
    payload: design.payload,
    metadata: design.metadata,
    correlationId: 'c-1',
    causationId: 'k-1'
  })
  t.same(source, {
    payload: design.payload,
    payloadJson: JSON.stringify(design.payload),
    metadata: design.metadata,
    metadataJson: JSON.stringify(design.metadata),
    extraJson: null
  }, 'the producer\'s text of the JSON columns; no member left over')
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

test('what is stored is the producer\'s own text: numbers as sent, members outside the envelope kept', async (t) => {
  const payload = '{ "entity":"Task","n":1e400,"small":1e-400,"big":123456789012345678901234567890,"f":0.10000000000000000000001, "user":"ann" }'
  const text = `{"eventId":"e-3","eventType":"TASK_UPDATED","timestamp":"2025-02-25T10:45:00.123456Z","version":9223372036854775807,"payload":${payload},"data":{"x":1.50},"source":"crm","aggregateType":"Other","metadata":{"v":1.0}}`
  const e = run(text)
  t.equal(e.version, 9223372036854775807n, 'the largest bigint, exactly')
  t.equal(e.source?.payloadJson, payload, 'payload text byte for byte, whitespace included')
  t.equal(e.source?.metadataJson, '{"v":1.0}')
  t.equal(e.source?.extraJson, '{"data":{"x":1.50},"source":"crm","aggregateType":"Other"}', 'a data beside payload, unknown members, an aggregateType the entity does not come from')
  t.equal(e.entity, 'Task')
})

test('versions: exact or poison quoting the producer\'s text', async (t) => {
  const v = (text: string): string => `{"eventId":"e","eventType":"TASK_UPDATED","timestamp":"2025-02-25T10:45:00Z","version":${text},"payload":{}}`
  t.equal(run(v('0')).version, 0n)
  t.equal(run(v('null')).version, null)
  for (const bad of ['1e400', '9223372036854775808', '3.0', '1e2', '-1', '12345678901234567890123']) {
    const err = rejects(v(bad))
    t.equal(err.code, 'SLUICE_ERR_VERSION', bad)
    t.ok(err.message.includes(bad), `quotes ${bad}`)
  }
  t.equal(rejects(v('"3"')).code, 'SLUICE_ERR_ENVELOPE')
})

test('timestamps timestamptz cannot hold exactly are poison naming the problem', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['2016-12-31T23:59:60Z', /leap second/],
    ['2025-02-25T10:45:00.123456789Z', /9 fractional digits/],
    ['2025-02-25T24:00:00Z', /hour 24/],
    ['0000-01-01T00:00:00Z', /year 0000/],
    ['2025-02-25T10:45:00+23:59', /offset/],
    ['2024-02-30T10:45:00Z', /day 30/],
    ['2025-13-01T10:45:00Z', /month 13/]
  ]
  for (const [ts, why] of cases) {
    const err = rejects({ ...design, timestamp: ts })
    t.equal(err.code, 'SLUICE_ERR_TIMESTAMP', ts)
    t.match(err.message, why)
  }
  for (const ts of ['2024-02-29T23:59:59.999999+15:59', '2025-02-25 10:45Z', '2025-02-25T10:45:00.1234560000Z', '0001-01-01T00:00:00-05']) {
    t.equal(run({ ...design, timestamp: ts }).timestamp, ts, `${ts} is accepted`)
  }
})

test('a top-level member given twice is poison (JSON.parse would drop the first)', async (t) => {
  const err = rejects('{"eventId":"e","eventType":"T","timestamp":"2025-02-25T10:45:00Z","payload":{"a":1},"payload":{"b":2}}')
  t.equal(err.code, 'SLUICE_ERR_ENVELOPE')
  t.match(err.message, /"payload" appears twice/)
  // few members are compared pairwise, many through a Set: both find it, first or last
  const many = Array.from({ length: 40 }, (_, i) => `"m${i}":${i}`)
  for (const extra of [many.slice(0, 3), many]) {
    for (const at of [0, extra.length]) {
      const members = [...extra]
      members.splice(at, 0, '"m1":"again"')
      const e = rejects(`{"eventId":"e","eventType":"T","timestamp":"2025-02-25T10:45:00Z","payload":{},${members.join(',')}}`)
      t.match(e.message, /"m1" appears twice/, `${extra.length + 5} members, the second "m1" at ${at}`)
    }
    t.ok(run(`{"eventId":"e","eventType":"T","timestamp":"2025-02-25T10:45:00Z","payload":{},${extra.join(',')}}`), `${extra.length + 4} distinct members are accepted`)
  }
})

test('a stage that throws something unclassified makes the message poison, not the worker fatal', async (t) => {
  const boom = compose({ name: 'boom', run: () => { throw new RangeError('Maximum call stack size exceeded') } })
  t.throws(() => boom.run(null, origin), { code: 'SLUICE_ERR_STAGE', stage: 'boom', kind: 'poison' })
})

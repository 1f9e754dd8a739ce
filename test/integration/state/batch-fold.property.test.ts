import fc from 'fast-check'
import { test } from 'tap'
import type { PoolClient } from 'pg'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import type { EntityEvent } from '../../../src/model/event.ts'
import { compose } from '../../../src/pipeline/stage.ts'
import { TimescaleEventSink } from '../../../src/sinks/timescale/event-sink.ts'
import { decodeJson } from '../../../src/stages/decode-json.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'
import { foldCall } from '../../../src/state/sql.ts'
import { entityEvent, origin, stateDb } from '../../helpers/state-db.ts'
import { inTransaction } from '../../helpers/pg-transaction.ts'

// Property: whatever the events and however they are cut into batches, partitions and topics,
// entity_state after the sink's transactions equals the SQL fold (sluice_fold) of the log from
// the empty state: every field, jsonb compared both as values and as text (numbers exact).
// The batch fold (src/sinks/timescale/batch-fold.ts) takes one-topic batches; the rest go through the
// per-event fold. Payloads are raw producer JSON: numbers past 2^53, 1.0, duplicate keys,
// escapes, `changes` objects and strings, envelope fields. SLUICE_PROPERTY_SEED reproduces a run.
const SEED = Number(process.env.SLUICE_PROPERTY_SEED ?? Date.now() % 2 ** 31)
const RUNS = Number(process.env.SLUICE_PROPERTY_RUNS ?? 40)

const stage = compose(decodeJson({ maxBytes: 1 << 20 }), validateEnvelope())

const TYPES = ['TASK_CREATED', 'TASK_UPDATED', 'TASK_DELETED', 'task_created', 'Task_Deleted', 'STATUS_CHANGED', 'X_CREATED_LATER', 'DELETED']
const KEYS = ['"a"', '"b"', '"n"', '"\\u0061"', '"é"', '"with\\ttab"', '"changes"']
// envelope fields in a payload (never part of the state): strings, as the envelope requires
const ENVELOPE_KEYS = ['"entity"', '"user"', '"workspace"', '"entityId"', '"userName"']
const scalar = fc.constantFrom('12345678901234567890', '1.0', '-0', '1e2', '0.1', 'null', 'true', '"x"', '"tab\\there"', '"\\ud83d\\ude00"', '"é"', '""')
const value: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }).map((a) => `[${a.join(',')}]`) },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.constantFrom(...KEYS), scalar), { maxLength: 3 }).map((m) => `{${m.map(([k, v]) => `${k}:${v}`).join(',')}}`) }
)
// members may repeat a key: the last one counts, as in jsonb
const member = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...KEYS), value) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ENVELOPE_KEYS), fc.constantFrom('"x"', '"é"')) }
)
const payload = fc.array(member, { maxLength: 5 }).map((m) => `{${m.map(([k, v]) => `${k} : ${v}`).join(', ')}}`)

interface Gen {
  type: string
  entity: number
  payload: string
  partition: number
  /** a second topic for this event (such a batch takes the per-event fold) */
  otherTopic: boolean
  /** ends a batch */
  cut: boolean
}

const gen: fc.Arbitrary<Gen> = fc.record({
  type: fc.constantFrom(...TYPES),
  entity: fc.nat({ max: 3 }),
  payload,
  partition: fc.nat({ max: 2 }),
  otherTopic: fc.nat({ max: 9 }).map((n) => n === 0),
  cut: fc.boolean()
})

function message (g: Gen, i: number): { event: EntityEvent, origin: KafkaMessage } {
  const text = `{"eventId":"e${i}","eventType":"${g.type}","timestamp":"2025-05-01T00:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(3, '0').slice(-3)}Z",` +
    `"aggregateType":"${g.entity % 2 === 0 ? 'Task' : 'User'}","aggregateId":"id-${g.entity}","version":${i},"payload":${g.payload}}`
  const value = Buffer.from(text)
  return { event: stage.run(value, placeholder) as EntityEvent, origin: { ...placeholder, value } }
}
const placeholder: KafkaMessage = origin({ topic: 't', partition: 0, offset: 0 })

async function writeAll (client: PoolClient, events: Array<{ event: EntityEvent, origin: KafkaMessage }>): Promise<void> {
  const sink = new TimescaleEventSink()
  const buffer = sink.createBuffer()
  for (const e of events) buffer.add(e.event, e.origin)
  const r = await sink.write(client, [buffer])
  if (r.stored !== events.length || r.rejected.length > 0) throw new Error(`stored ${r.stored} of ${events.length}, ${r.rejected.length} rejected`)
}

test(`entity_state equals the SQL fold of the log for any batches (seed ${SEED}, ${RUNS} runs)`, { timeout: 300_000 }, async (t) => {
  const { pool } = await stateDb(t, 't_batch_fold')
  const differing = async (): Promise<string[]> => {
    const r = await pool.query<{ entity: string, entity_id: string }>(`
      WITH f AS (SELECT entity, entity_id, ${foldCall()} AS f FROM entity_event_logs WHERE entity IS NOT NULL AND entity_id IS NOT NULL GROUP BY 1, 2)
      SELECT coalesce(s.entity, f.entity) AS entity, coalesce(s.entity_id, f.entity_id) AS entity_id
      FROM entity_state s FULL JOIN f ON s.entity = f.entity AND s.entity_id = f.entity_id
      WHERE s.entity IS NULL OR f.entity IS NULL OR s.state IS DISTINCT FROM (f.f).state OR s.state::text IS DISTINCT FROM ((f.f).state)::text
         OR s.deleted IS DISTINCT FROM (f.f).deleted OR s.version IS DISTINCT FROM (f.f).version OR s.updated_at IS DISTINCT FROM (f.f).updated_at
         OR s.last_event_id IS DISTINCT FROM (f.f).last_event_id OR s.source_topic IS DISTINCT FROM (f.f).source_topic
         OR s.source_partition IS DISTINCT FROM (f.f).source_partition OR s.source_offset IS DISTINCT FROM (f.f).source_offset`)
    return r.rows.map((x) => `${x.entity}/${x.entity_id}`)
  }
  let batches = 0
  let failure: string | null = null
  await fc.assert(fc.asyncProperty(fc.array(gen, { minLength: 1, maxLength: 40 }), async (gens) => {
    await pool.query('TRUNCATE entity_state, entity_event_logs, sluice_event_ids')
    const offsets = [0, 0, 0]
    let batch: Array<{ event: EntityEvent, origin: KafkaMessage }> = []
    for (const [i, g] of gens.entries()) {
      const m = message(g, i)
      const offset = offsets[g.partition] ?? 0
      offsets[g.partition] = offset + 1
      m.origin = { ...m.origin, topic: g.otherTopic ? 't2' : 't', partition: g.partition, offset }
      batch.push(m)
      if (g.cut || i === gens.length - 1) {
        const these = batch
        await inTransaction(pool, async (client) => { await writeAll(client, these) })
        batches++
        batch = []
      }
    }
    const bad = await differing()
    if (bad.length > 0 && failure === null) failure = `${bad.join(', ')} differ after ${gens.map((g) => `${g.type}:${g.entity}@${g.partition}${g.cut ? '|' : ''} ${g.payload}`).join('; ')}`
    return bad.length === 0
  }), { seed: SEED, numRuns: RUNS, endOnFailure: true })
    .catch((err: unknown) => { t.fail(`${failure ?? String((err as Error).cause ?? (err as Error).message)} (seed ${SEED})`) })
  t.ok(batches >= RUNS, `${batches} batches written (seed ${SEED})`)
  t.equal(failure, null, `entity_state is the fold of the log after every run (seed ${SEED})`)
})

test('a type with a non-ASCII character takes the per-event fold, with the same result', async (t) => {
  const { pool } = await stateDb(t, 't_batch_fold')
  const at = (s: number): string => new Date(Date.parse('2025-05-01T00:00:00Z') + s * 1000).toISOString()
  const events = [
    { type: 'TASK_CREATED', payload: { changes: { a: 1 } } },
    { type: 'TÂCHE_UPDATED', payload: { changes: { b: 2 } } },
    { type: 'TASK_DELETED', payload: {} }
  ].map((e, i) => ({ event: entityEvent({ id: `n${i}`, type: e.type, entity: 'Task', entityId: 'x', timestamp: at(i), payload: e.payload }), origin: { ...placeholder, offset: i } }))
  await inTransaction(pool, async (client) => { await writeAll(client, events) })
  const row = (await pool.query('SELECT state, deleted, last_event_id FROM entity_state')).rows[0]
  t.same(row, { state: { a: 1, b: 2 }, deleted: true, last_event_id: 'n2' })
})

// the S3 sink logs snapshot events through the event sink in the batch's own transaction
test('two writes in one transaction end as the fold of the log', async (t) => {
  const { pool } = await stateDb(t, 't_batch_fold')
  const at = (s: number): string => new Date(Date.parse('2025-05-01T00:00:00Z') + s * 1000).toISOString()
  const ev = (i: number, type: string, changes: Record<string, unknown>): { event: EntityEvent, origin: KafkaMessage } =>
    ({ event: entityEvent({ id: `w${i}`, type, entity: 'Task', entityId: 'x', timestamp: at(i), payload: { changes } }), origin: { ...placeholder, offset: i } })
  await inTransaction(pool, async (client) => {
    await writeAll(client, [ev(0, 'TASK_CREATED', { a: 1 }), ev(1, 'TASK_UPDATED', { b: 1 })])
    await writeAll(client, [ev(2, 'TASK_CREATED', { c: 1 })])
  })
  const row = (await pool.query('SELECT state, last_event_id FROM entity_state')).rows[0]
  t.same(row, { state: { c: 1 }, last_event_id: 'w2' }, 'the second write\'s create last')
})

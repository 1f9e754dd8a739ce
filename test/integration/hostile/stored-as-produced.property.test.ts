import fc from 'fast-check'
import { test } from 'tap'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { envelopes, faultCode } from '../../helpers/hostile-envelopes.ts'
import type { Generated } from '../../helpers/hostile-envelopes.ts'
import { brokers, fixture, startWorker, storedOffsetSum, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

// Property (design principle 6, issue 8): through the real worker process into PostgreSQL,
// every generated message is either stored as produced (event_data = <produced payload>::jsonb,
// with exact numerics; every text column equal to the produced string; the version exact;
// the members outside the envelope in extra) or exactly one dead letter with the expected code.
// SLUICE_PROPERTY_SEED / SLUICE_PROPERTY_MESSAGES reproduce or resize a run.
const SEED = Number(process.env.SLUICE_PROPERTY_SEED ?? Date.now() % 2 ** 31)
const COUNT = Number(process.env.SLUICE_PROPERTY_MESSAGES ?? 3000)
const MAX_DEPTH = 16
const source = (process.env.SLUICE_PROPERTY_SOURCE ?? 'rdkafka') as 'rdkafka' | 'platformatic'

test(`generated envelopes are stored as produced or dead-lettered with their code (seed ${SEED}, ${COUNT} messages, ${source})`, { timeout: 600_000 }, async (t) => {
  const messages: Generated[] = fc.sample(envelopes(MAX_DEPTH), { seed: SEED, numRuns: COUNT }).map((g, i) => g.make(i))
  const byFault = new Map<string, number>()
  for (const m of messages) byFault.set(m.fault, (byFault.get(m.fault) ?? 0) + 1)
  t.comment(`seed ${SEED}: ${[...byFault].map(([f, n]) => `${f} ${n}`).join(', ')}`)

  const fx = await fixture(t, source, { partitions: 3 })
  const w = await startWorker(t, fx, { SLUICE_MAX_JSON_DEPTH: String(MAX_DEPTH) })
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('property-producer') })
  await producer.connect()
  for (let i = 0; i < messages.length; i += 500) {
    await producer.produceBatch(messages.slice(i, i + 500).map((m, k) => ({ topic: fx.topic, partition: (i + k) % 3, key: Buffer.from(`m${i + k}`), value: m.value })))
  }
  await producer.close()
  await waitFor(`${COUNT} messages durable (seed ${SEED})`, async () => (await storedOffsetSum(fx)) >= COUNT, 480_000, 500)
  t.equal(w.proc.exitCode, null, `the worker is still running (seed ${SEED})`)

  const dlq = await fx.pool.query<{ key: string, code: string, message: string }>("SELECT convert_from(message_key, 'UTF8') AS key, error_code AS code, error_message AS message FROM sluice_dlq")
  const letters = new Map<string, Array<{ code: string, message: string }>>()
  for (const r of dlq.rows) letters.set(r.key, [...(letters.get(r.key) ?? []), r])

  // the stored rows, compared with what was produced: jsonb equality in PostgreSQL (numbers
  // exact), text columns in JavaScript (node-postgres decodes UTF-8 exactly)
  const expected = messages.map((m, i) => ({ i, m })).filter(({ m }) => m.fault === 'none')
  const rows = await fx.pool.query(`
    SELECT l.event_id, l.event_type, l.entity, l.entity_id, l.user_name, l.workspace, l.correlation_id, l.causation_id, l.version::text AS version,
           l.event_data = (x->>'payload')::jsonb AND l.event_data::text = (x->>'payload')::jsonb::text AS payload_same,
           l.extra IS NOT DISTINCT FROM (x->>'extra')::jsonb AS extra_same
      FROM entity_event_logs l JOIN jsonb_array_elements($1::jsonb) x ON x->>'id' = l.event_id`,
  [JSON.stringify(expected.map(({ m }) => ({ id: m.eventId, payload: m.payloadText, extra: m.extraText })))])
  const stored = new Map(rows.rows.map((r) => [r.event_id as string, r]))
  const total = await fx.pool.query('SELECT count(*)::int AS n FROM entity_event_logs')

  let wrong = 0
  const report = (what: string): void => {
    if (wrong++ < 10) t.fail(`${what} (seed ${SEED})`)
  }
  for (const [i, m] of messages.entries()) {
    const got = letters.get(`m${i}`) ?? []
    if (m.fault === 'none') {
      const r = stored.get(m.eventId)
      if (got.length > 0) report(`message ${i} dead-lettered: ${got[0]?.code} ${got[0]?.message.slice(0, 200)}\n${m.value.toString().slice(0, 400)}`)
      else if (r === undefined) report(`message ${i} neither stored nor dead-lettered`)
      else if (!r.payload_same) report(`message ${i}: event_data differs from the produced payload ${m.payloadText.slice(0, 300)}`)
      else if (!r.extra_same) report(`message ${i}: extra differs from ${m.extraText ?? 'NULL'}`)
      else {
        for (const [col, want] of Object.entries(m.columns)) {
          if (r[col] !== want) report(`message ${i}: ${col} is ${JSON.stringify(r[col])}, produced ${JSON.stringify(want)}`)
        }
      }
    } else {
      const want = faultCode[m.fault]
      if (got.length !== 1 || got[0]?.code !== want) report(`message ${i} (${m.fault}): ${got.length} dead letter(s) ${got.map((g) => `${g.code}: ${g.message.slice(0, 120)}`).join('; ')}, expected one ${want}`)
    }
  }
  t.equal(wrong, 0, `every one of ${COUNT} messages stored as produced or dead-lettered with its code (seed ${SEED})`)
  t.equal(total.rows[0].n, expected.length, `${expected.length} rows stored, no other (seed ${SEED})`)
  t.equal(dlq.rowCount, COUNT - expected.length, `${COUNT - expected.length} dead letters, no other (seed ${SEED})`)
})

import { test } from 'tap'
import { sampleEvents } from '../../../src/workload/seed-mix.ts'
import { startWorker, waitFor } from '../../helpers/worker-harness.ts'
import { privateFixture, privateKafka } from '../../helpers/private-kafka.ts'
import { postEvents } from './ingest-helpers.ts'

// The broker stops: POST /events answers 503 with Retry-After (nothing queued without bound);
// it starts again: the same request, retried, is accepted, and every event is stored once,
// including those of the refused request that Kafka may have taken before it went away.
test('broker down: 503 with Retry-After, then recovery; the retried request stores nothing twice', { timeout: 300_000 }, async (t) => {
  const kafka = await privateKafka(t)
  const fx = await privateFixture(t, kafka, 'ingest_down')
  const pool = fx.pool
  // librdkafka's group and broker traces in the worker's log: now and then (one run in 44 in a
  // loop of this test) librdkafka is left without any broker after the restart and the source
  // replaces its consumer after SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS (README Limits): the
  // traces show which way a run went
  const w = await startWorker(t, fx, { SLUICE_KAFKA_BROKERS: kafka.brokers, SLUICE_INGEST_ACK_TIMEOUT_MS: '3000', SLUICE_KAFKA_DEBUG: 'cgrp,broker' })

  const events = [...sampleEvents({ count: 300, seed: 1400 })]
  const body = (from: number, to: number): string => events.slice(from, to).map((r) => r.value.toString('utf8')).join('\n')
  const before = await postEvents(w, body(0, 100), 'application/x-ndjson')
  t.equal(before.status, 202, 'broker up: 202')

  await kafka.stop()
  const t0 = Date.now()
  const down = await postEvents(w, body(100, 200), 'application/x-ndjson')
  t.equal(down.status, 503, `broker stopped: 503 after ${Date.now() - t0} ms`)
  t.match(down.body, { statusCode: 503, code: 'SLUICE_ERR_INGEST_UNAVAILABLE', error: 'Service Unavailable', message: /Kafka|acknowledged/ })
  t.ok(Number(down.headers.get('retry-after')) >= 1, `Retry-After: ${down.headers.get('retry-after')}`)
  const t1 = Date.now()
  const again = await postEvents(w, body(100, 200), 'application/x-ndjson')
  t.equal(again.status, 503, `still down: 503 again, after ${Date.now() - t1} ms (known down: answered at once)`)
  t.equal(w.proc.exitCode, null, 'the worker keeps running')

  await kafka.start()
  let attempts = 0
  await waitFor('the retried request to be accepted', async () => {
    attempts++
    const r = await postEvents(w, body(100, 200), 'application/x-ndjson')
    return r.status === 202 && r.body.accepted === 100
  }, 120_000, 1000)
  t.pass(`the same request accepted after the broker came back (${attempts} attempts)`)
  const after = await postEvents(w, body(200, 300), 'application/x-ndjson')
  t.equal(after.status, 202, 'and new requests too')

  const ids = new Set(events.map((r) => r.eventId as string))
  try {
    await waitFor('all 300 events stored', async () => (await pool.query('SELECT count(DISTINCT event_id)::int AS n FROM entity_event_logs')).rows[0].n === 300, 120_000, 500)
  } catch (err) {
    t.comment(`the worker's log (${w.logFile}), lines that differ only in numbers collapsed:\n${collapsed(w.log(), 400)}`)
    throw err
  }
  const c = await pool.query<{ n: number, d: number }>('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs')
  t.same(c.rows[0], { n: 300, d: 300 }, 'one row per event: 300')
  const stored = await pool.query<{ event_id: string }>('SELECT event_id FROM entity_event_logs')
  t.equal(stored.rows.filter((r) => !ids.has(r.event_id)).length, 0, 'only the events sent')
})

/**
 * The last `max` lines of a log, each run of lines that differ only in their numbers (times,
 * counters) shown once with its count: a stuck client repeats one line for minutes.
 */
function collapsed (log: string, max: number): string {
  const out: string[] = []
  let last = ''
  let repeats = 0
  const flush = (): void => { if (repeats > 0) out.push(`  (${repeats} more like it)`) }
  for (const line of log.trimEnd().split('\n')) {
    const key = line.replace(/\d+/g, '#')
    if (key === last) { repeats++; continue }
    flush()
    out.push(line)
    last = key
    repeats = 0
  }
  flush()
  return out.slice(-max).join('\n')
}

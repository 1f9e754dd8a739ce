import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { sampleEvents } from '../../../src/workload/seed-mix.ts'
import { privateFixture, privateKafka } from '../../helpers/private-kafka.ts'
import { startWorker, waitFor, waitForProgress } from '../../helpers/worker-harness.ts'
import { postEvents } from '../ingest/ingest-helpers.ts'

// The rdkafka source replaces a consumer that has had no group coordinator for
// SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS (librdkafka 2.12 now and then stays without a broker
// after a broker restart: README Limits). Here the broker is stopped for longer than that
// limit: the consumer is replaced while it is down, the new one joins once it is back, and
// every event, before and after, is stored once by the same worker process.
test('rdkafka: a consumer without a group coordinator is replaced; nothing lost or doubled', { timeout: 300_000 }, async (t) => {
  const kafka = await privateKafka(t)
  const fx = await privateFixture(t, kafka, 'coord_lost')
  const pool = fx.pool
  const w = await startWorker(t, fx, { SLUICE_KAFKA_BROKERS: kafka.brokers, SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS: '3000', SLUICE_INGEST_ACK_TIMEOUT_MS: '3000' })
  const stored = async (): Promise<number> => (await pool.query('SELECT count(DISTINCT event_id)::int AS n FROM entity_event_logs')).rows[0].n
  const replaced = (): number => w.log().split('\n').filter((l) => l.includes('without a group coordinator')).length
  const rejoined = (): number => w.log().split('\n').filter((l) => l.includes('kafka consumer replaced: joining the group again')).length

  const events = [...sampleEvents({ count: 200, seed: 1500 })]
  const body = (from: number, to: number): string => events.slice(from, to).map((r) => r.value.toString('utf8')).join('\n')
  t.equal((await postEvents(w, body(0, 100), 'application/x-ndjson')).status, 202, 'first half accepted')
  await waitForProgress('the first half stored', async () => await stored() === 100, stored)
  // the group is up: the statistics reports of twice the limit (one a second) replace nothing
  // (a slow first join may have been replaced already: that is the watch doing its job)
  const settled = { replaced: replaced(), rejoined: rejoined() }
  await sleep(6_000)
  t.equal(replaced(), settled.replaced, 'a consumer in its group is left alone')

  await kafka.stop()
  // the log grows with the source's and the producer's warnings while the broker is down
  await waitForProgress('the consumer to be replaced', () => replaced() > settled.replaced, () => w.log().length, 200)
  t.pass('replaced while the broker was down')
  await kafka.start()
  await waitForProgress('the new consumer to join', () => rejoined() > settled.rejoined, () => w.log().length, 200)
  await waitFor('the second half to be accepted', async () => (await postEvents(w, body(100, 200), 'application/x-ndjson')).status === 202, 120_000, 1000)
  await waitForProgress('all 200 events stored', async () => await stored() === 200, stored)
  t.equal(w.proc.exitCode, null, 'the same worker process throughout')
  const metrics = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text()
  const counted = Number(/^sluice_retries_total\{operation="kafka-consumer",code="SLUICE_ERR_KAFKA_TRANSIENT"\} (\d+)$/m.exec(metrics)?.[1] ?? 0)
  t.equal(counted, replaced(), `each replacement counted in sluice_retries_total{operation="kafka-consumer"} (${counted})`)

  const c = await pool.query<{ n: number, d: number }>('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs')
  t.same(c.rows[0], { n: 200, d: 200 }, 'one row per event: 200')
  const ids = new Set(events.map((r) => r.eventId as string))
  const rows = await pool.query<{ event_id: string }>('SELECT event_id FROM entity_event_logs')
  t.equal(rows.rows.filter((r) => !ids.has(r.event_id)).length, 0, 'only the events sent')
})

import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../../src/kafka/producer.ts'
import { sampleEvents } from '../../../src/workload/seed-mix.ts'
import { privatePostgres } from '../../helpers/private-postgres.ts'
import { metricSum, scrape } from '../../helpers/prom.ts'
import { brokers, fixture, sources, stallMs, startWorker, storedOffsetSum, uniqueName, waitFor, waitForCount, waitForProgress } from '../../helpers/worker-harness.ts'
import type { Fixture, Worker } from '../../helpers/worker-harness.ts'

// Principle 2 (bounded memory): PostgreSQL stops for 20 s under a steady produce rate. The
// worker must fill its in-flight budget, pause its partitions, retry, report not-ready, keep a
// flat RSS, then resume and store every event exactly once when the database is back.
const MiB = 1024 * 1024
const OUTAGE_MS = 20_000
// A full budget costs several times its bytes in RSS (each message is held as its Kafka
// buffers, a KafkaMessage and its encoded COPY line, and V8's heap grows with them): measured
// +28..49 MiB with an 8 MiB budget, +17..39 MiB with 4 MiB; V8 may also grow its heap once by
// ~16 MiB at any moment. 4 MiB keeps the bound below clear of both.
const INFLIGHT_MAX_BYTES = 4 * MiB
const INFLIGHT_MAX_MESSAGES = 20_000
/** RSS during the outage may exceed the pre-outage baseline by at most this much... */
const RSS_GROWTH_MAX = 64 * MiB
/** ...and never this absolute cap */
const RSS_CAP = 400 * MiB
/** once the budget is full memory is flat: the outage's second half adds at most this (a one-off heap growth) */
const RSS_PLATEAU_MAX = 32 * MiB
/** produced every PRODUCE_EVERY_MS: ~4000 events/s of ~500 bytes, ~2 MB/s */
const PRODUCE_BATCH = 400
const PRODUCE_EVERY_MS = 100

const mib = (n: number): string => (n / MiB).toFixed(1) + ' MiB'

interface Background { messages: number, ids: Set<string>, stop (): Promise<void> }

/** Produces the seed mix (1% producer duplicates) in the background until stopped. */
async function produceInBackground (topic: string, seed: number): Promise<Background> {
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('bp-producer') })
  await producer.connect()
  const events = sampleEvents({ count: Number.MAX_SAFE_INTEGER, seed, duplicateRatio: 0.01 })
  const state = { stopping: false }
  const bg: Background = {
    messages: 0,
    ids: new Set(),
    stop: async () => { state.stopping = true; await loop.finally(() => producer.close()) }
  }
  const loop = (async () => {
    while (!state.stopping) {
      const batch: ProduceRecord[] = []
      for (let i = 0; i < PRODUCE_BATCH; i++) {
        const r = events.next().value as NonNullable<ReturnType<typeof events.next>['value']>
        batch.push({ topic, key: r.key, value: r.value })
        if (r.eventId !== null) bg.ids.add(r.eventId)
      }
      await producer.produceBatch(batch)
      bg.messages += batch.length
      await sleep(PRODUCE_EVERY_MS) // pacing, not synchronisation
    }
  })()
  loop.catch(() => {}) // surfaced by stop()
  return bg
}

async function rowCount (fx: Fixture): Promise<number> {
  return Number((await fx.pool.query('SELECT count(*) AS n FROM entity_event_logs')).rows[0].n)
}

async function readiness (w: Worker): Promise<{ status: number, body: any }> {
  const res = await fetch(`http://127.0.0.1:${w.port}/health/ready`)
  return { status: res.status, body: await res.json() }
}

test('a stopped PostgreSQL pauses the worker with flat memory, and nothing is lost or doubled', async (t) => {
  const pg = await privatePostgres(t)
  t.comment(`private PostgreSQL on port ${pg.port} (${pg.dir})`)

  for (const [i, source] of sources.entries()) {
    await t.test(source, async (t) => {
      const fx = await fixture(t, source, { pgUrl: pg.url })
      const w = await startWorker(t, fx, {
        SLUICE_INFLIGHT_MAX_BYTES: String(INFLIGHT_MAX_BYTES),
        SLUICE_INFLIGHT_MAX_MESSAGES: String(INFLIGHT_MAX_MESSAGES),
        SLUICE_RETRY_MAX_MS: '1000'
      })
      const bg = await produceInBackground(fx.topic, 1000 + i)
      t.teardown(() => bg.stop().catch(() => {}))

      // the baseline: the highest RSS over 2 s of steady flow, once a few seconds' rows are stored
      await waitForCount('rows to flow', async () => await rowCount(fx), 16_000)
      let baseline = 0
      for (let k = 0; k < 8; k++) { baseline = Math.max(baseline, w.rss()); await sleep(250) }
      const before = await scrape(w)
      const retriesBefore = metricSum(before, 'sluice_retries_total')
      // not asserted: on a busy machine the worker may already be behind the produce rate and
      // pausing now and then (that is backpressure working, not the outage)
      t.comment(`${source}: partitions paused for backpressure before the outage: ${metricSum(before, 'sluice_paused_partitions', { reason: 'backpressure' })}`)

      await pg.stop()
      const outageStart = Date.now()
      const rss: number[] = []
      const sampler = setInterval(() => { try { rss.push(w.rss()) } catch {} }, 500)
      try {
        // the budget fills as fast as the producer and the worker go on this machine: the wait
        // fails only when the in-flight count stops moving without a pause
        await waitForProgress('partitions paused for backpressure', async () =>
          metricSum(await scrape(w), 'sluice_paused_partitions', { reason: 'backpressure' }) > 0,
        async () => metricSum(await scrape(w), 'sluice_inflight_messages'), 250)
        const status = await w.get('/admin/status')
        t.ok(status.inflight.overBudget, 'the in-flight budget is full')
        t.equal(status.group.available, false, '/admin/status answers during the outage and says the group view is unavailable')
        t.ok(status.partitions.length > 0 && status.partitions.every((p: any) => p.paused && p.pausedBy.includes('backpressure')),
          'every partition is paused by backpressure in /admin/status')
        await waitFor('retries to be counted', async () => metricSum(await scrape(w), 'sluice_retries_total') > retriesBefore, stallMs, 250)
        t.pass('sluice_retries_total increases')
        const ready = await readiness(w)
        t.equal(ready.status, 503, '/health/ready answers 503')
        t.equal(ready.body.database, false, 'and says the database is unreachable')
        t.equal(ready.body.consumer, true, 'while the consumer stays in its group')
        await sleep(Math.max(0, outageStart + OUTAGE_MS - Date.now())) // the deliberate outage
      } catch (err) {
        // the next source's subtest needs the database: never leave it stopped
        await pg.start()
        throw err
      } finally {
        clearInterval(sampler)
      }
      const peak = Math.max(...rss)
      const half = Math.floor(rss.length / 2)
      const firstHalf = Math.max(...rss.slice(0, half))
      const secondHalf = Math.max(...rss.slice(half))
      t.comment(`${source}: RSS baseline ${mib(baseline)}, peak during the ${OUTAGE_MS / 1000} s outage ${mib(peak)} (+${mib(peak - baseline)}); ` +
        `peak of the outage's first half ${mib(firstHalf)}, second half ${mib(secondHalf)}; in-flight budget ${mib(INFLIGHT_MAX_BYTES)} / ${INFLIGHT_MAX_MESSAGES} messages`)
      t.comment(`${source}: RSS every 500 ms (MiB): ${rss.map((x) => (x / MiB).toFixed(0)).join(' ')}`)
      t.ok(rss.length >= OUTAGE_MS / 500 - 4, 'RSS sampled every ~500 ms through the outage')
      t.ok(peak < baseline + RSS_GROWTH_MAX, `RSS stays under the baseline + ${mib(RSS_GROWTH_MAX)} (peak ${mib(peak)})`)
      t.ok(peak < RSS_CAP, `RSS stays under ${mib(RSS_CAP)}`)
      t.ok(secondHalf - firstHalf < RSS_PLATEAU_MAX, `RSS is flat once paused: the second half of the outage adds under ${mib(RSS_PLATEAU_MAX)}`)
      t.equal(w.proc.exitCode, null, 'the worker is still running')

      await pg.start()
      await waitFor('partitions resumed', async () =>
        metricSum(await scrape(w), 'sluice_paused_partitions', { reason: 'backpressure' }) === 0, stallMs, 250)
      t.pass('sluice_paused_partitions{reason="backpressure"} back to 0')
      await waitFor('the worker to be ready again', async () => (await readiness(w)).status === 200, stallMs, 250)
      // a little more traffic after the recovery, then everything must land
      const target = bg.messages + 4 * PRODUCE_BATCH
      await waitForCount('more events produced', () => bg.messages, target)
      await bg.stop()
      t.comment(`${source}: ${bg.messages} messages produced, ${bg.ids.size} distinct events`)
      await waitForCount('every produced message stored', async () => await storedOffsetSum(fx), bg.messages, 250)

      const r = await fx.pool.query('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids, count(*) FILTER (WHERE event_id = ANY($1))::int AS known FROM entity_event_logs', [[...bg.ids]])
      t.same(r.rows[0], { rows: bg.ids.size, ids: bg.ids.size, known: bg.ids.size }, 'one row per distinct produced event, no duplicate, nothing else')
      const after = await scrape(w)
      t.equal(metricSum(after, 'sluice_dead_lettered_total'), 0, 'nothing dead-lettered')
      t.equal(metricSum(after, 'sluice_inflight_messages'), 0, 'nothing left in flight')
    })
  }
})

import { test } from 'tap'
import { sampleEvents } from '../../../src/workload/seed-mix.ts'
import { fixture, startWorker, waitFor } from '../../helpers/worker-harness.ts'
import { dataOf, openStream, postEvents } from './ingest-helpers.ts'

// GET /events/stream reads the log, after per-partition positions: only committed rows are
// ever sent, and a Last-Event-ID resumes exactly after what the client had.
test('only durable events; filters; Last-Event-ID resumes without gap or repeat', { timeout: 240_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 3 })
  const w = await startWorker(t, fx, { SLUICE_STREAM_HEARTBEAT_MS: '300' })
  const all = await openStream(w)
  t.equal(all.status, 200, 'a stream from now')
  t.teardown(() => all.abort())

  // a batch in an open transaction (rows and stored offset, as the sink writes them) is not
  // sent, whatever wakes the stream (a heartbeat every 300 ms polls); rolled back, never
  const manual = fx.topic + '-manual'
  const write = async (offset: number, commit: boolean): Promise<void> => {
    const c = await fx.pool.connect()
    try {
      await c.query('BEGIN')
      await c.query(`INSERT INTO entity_event_logs ("timestamp", event_id, event_type, entity, entity_id, event_data, source_topic, source_partition, source_offset)
        VALUES (now(), $1, 'TASK_CREATED', 'Task', 'manual', '{}', $2, 0, $3)`, [`manual-${offset}`, manual, offset])
      await c.query(`INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, 0, $3)
        ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset`, [fx.group, manual, offset + 1])
      await new Promise((resolve) => setTimeout(resolve, 1500))
      t.equal(dataOf(all).filter((e) => e.eventId === `manual-${offset}`).length, 0, `manual-${offset}: not sent while its transaction is open`)
      await c.query(commit ? 'COMMIT' : 'ROLLBACK')
    } finally {
      c.release()
    }
  }
  await write(0, false)
  await write(1, true)
  await waitFor('the committed row on the stream', () => dataOf(all).some((e) => e.eventId === 'manual-1'), 30_000)
  t.equal(dataOf(all).filter((e) => e.eventId === 'manual-0').length, 0, 'the rolled-back row never')

  // 300 events through POST /events; a second client stops after 100 and resumes
  const records = [...sampleEvents({ count: 600, seed: 1500 })]
  const ids = records.map((r) => r.eventId as string)
  const part = await openStream(w)
  t.teardown(() => part.abort())
  const typed = await openStream(w, '?eventType=TASK_CREATED')
  t.teardown(() => typed.abort())
  const post = async (from: number, to: number): Promise<void> => {
    const res = await postEvents(w, records.slice(from, to).map((r) => r.value.toString()).join('\n'), 'application/x-ndjson')
    t.equal(res.status, 202, `events ${from}..${to - 1} accepted`)
  }
  await post(0, 300)
  await waitFor('100 events on the second stream', () => dataOf(part).length >= 100, 60_000, 20)
  part.abort()
  await part.closed
  const seen = dataOf(part)
  const resumeFrom = part.lastId as string
  t.ok(resumeFrom !== null, `resuming from ${resumeFrom}`)
  await post(300, 600)
  const resumed = await openStream(w, '', resumeFrom)
  t.teardown(() => resumed.abort())
  t.equal(resumed.status, 200)
  await waitFor('all 600 events on the first stream', () => dataOf(all).filter((e) => e.topic === fx.topic).length >= 600, 120_000)
  await waitFor('the resumed stream to catch up', () => seen.length + dataOf(resumed).length >= 600, 60_000)
  await new Promise((resolve) => setTimeout(resolve, 1000)) // anything extra would show up now

  const onAll = dataOf(all).filter((e) => e.topic === fx.topic).map((e) => e.eventId as string)
  t.equal(onAll.length, 600, 'the live stream: 600 events')
  t.same(new Set(onAll), new Set(ids), 'exactly the events sent')
  const joined = [...seen.map((e) => e.eventId as string), ...dataOf(resumed).map((e) => e.eventId as string)]
  t.equal(joined.length, 600, `${seen.length} before the disconnect + ${joined.length - seen.length} after: 600, no repeat`)
  t.same(new Set(joined), new Set(ids), 'no gap')
  for (const s of [dataOf(all), [...seen, ...dataOf(resumed)]]) {
    const byPartition = new Map<number, number[]>()
    for (const e of s.filter((x) => x.topic === fx.topic)) byPartition.set(e.partition, [...(byPartition.get(e.partition) ?? []), e.offset])
    t.ok([...byPartition.values()].every((os) => os.every((o, i) => i === 0 || o > (os[i - 1] as number))), 'each partition in offset order')
  }

  const stored = await fx.pool.query<{ event_id: string }>("SELECT event_id FROM entity_event_logs WHERE event_type = 'TASK_CREATED' AND source_topic = $1", [fx.topic])
  await waitFor('the filtered stream', () => dataOf(typed).filter((e) => e.topic === fx.topic).length >= stored.rowCount!, 30_000)
  const onTyped = dataOf(typed)
  t.ok(onTyped.every((e) => e.eventType === 'TASK_CREATED'), `?eventType=TASK_CREATED: only those (${onTyped.length})`)
  t.same(new Set(onTyped.filter((e) => e.topic === fx.topic).map((e) => e.eventId)), new Set(stored.rows.map((r) => r.event_id)), 'and all of them')
  const { aggregateType, aggregateId } = JSON.parse(records[0]!.value.toString()) as { aggregateType: string, aggregateId: string }
  const one = await openStream(w, `?entityType=${aggregateType}&entityId=${encodeURIComponent(aggregateId)}`, '')
  t.teardown(() => one.abort())
  const want = await fx.pool.query('SELECT count(*)::int AS n FROM entity_event_logs WHERE entity = $1 AND entity_id = $2', [aggregateType, aggregateId])
  t.ok(want.rows[0].n > 0)
  await waitFor('the entity stream from the start (empty Last-Event-ID)', () => dataOf(one).length >= want.rows[0].n, 30_000)
  t.ok(dataOf(one).every((e) => e.entityId === aggregateId && e.entity === aggregateType), `?entityType&entityId: that entity's ${want.rows[0].n} events only`)

  const badCursor = await fetch(`http://127.0.0.1:${w.port}/events/stream`, { headers: { 'last-event-id': 'nonsense' } })
  t.equal(badCursor.status, 400, 'a Last-Event-ID that is not a position: 400')
  t.match(await badCursor.json(), { code: 'SLUICE_ERR_STREAM_CURSOR' })
})

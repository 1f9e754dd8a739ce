import { test } from 'tap'
import { deleteTopics } from '../../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { readTopic, values } from '../../helpers/read-topic.ts'
import { envelope, sinkFixture } from '../../helpers/s3-sink-fixture.ts'
import { listKeys, s3WorkerEnv, testPrefix } from '../../helpers/s3.ts'
import { brokers, fixture, startWorker, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

// A worker with SLUICE_PROJECTION=off does not keep entity_state current: a dump of it, indexed
// with the group's current offsets as `covers`, would make a restore skip the events between
test('SLUICE_PROJECTION=off: SNAPSHOT_TRIGGERED is stored and answered with SNAPSHOT_FAILED; no dump, no index row', async (t) => {
  const f = await sinkFixture(t, 'noproj', { dumpShareMs: 0 }, { stateDumps: false })
  // a stale projection and offsets the group has moved past it
  await f.pool.query(`INSERT INTO entity_state (entity, entity_id, version, state, updated_at, last_event_id, source_topic, source_partition, source_offset)
    VALUES ('Task', 'task_1', 1, '{"name":"stale"}', now(), 'e1', 'events', 0, 1)`)
  await f.pool.query("INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset) VALUES ('g1', 'events', 0, 99)")
  const t1 = envelope('SNAPSHOT_TRIGGERED', { triggerReason: 'manual' })
  const t2 = envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'nightly_1' })

  const buffer = f.buffer([t1], 100)
  t.equal(buffer.waiting(), null, 'no dump started when the trigger is read')
  const r = await f.write([t1, t2], 100)
  t.same(r.rejected, [], 'nothing dead-lettered')
  const logged = (await f.pool.query("SELECT event_id, source_offset::int AS o FROM entity_event_logs WHERE event_type = 'SNAPSHOT_TRIGGERED' ORDER BY source_offset")).rows
  t.same(logged, [{ event_id: t1.eventId, o: 100 }, { event_id: t2.eventId, o: 101 }], 'both triggers are in the event log')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshots')).rows[0].n, 0, 'no snapshot indexed')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0, 'no upload recorded')
  t.same(await listKeys(f.s3, `${f.prefix}snapshots/`), [], 'no object written')

  const answers = values(await readTopic(f.topic, (m) => m.length >= 2))
  t.equal(answers.length, 2)
  t.same(answers.map((a) => a.eventType), ['SNAPSHOT_FAILED', 'SNAPSHOT_FAILED'])
  t.same(answers.map((a) => a.payload.snapshotId).sort(), ['nightly_1', `state-${t1.eventId as string}`].sort(), 'one answer per trigger, by its snapshot id')
  t.same(answers.map((a) => a.metadata.causationId).sort(), [t1.eventId, t2.eventId].sort(), 'each names its trigger')
  for (const a of answers) {
    t.equal(a.payload.kind, 'state')
    t.equal(a.payload.error.code, 'SLUICE_ERR_SNAPSHOT_NO_STATE')
    t.match(a.payload.error.message, /SLUICE_PROJECTION=off/)
  }

  // a redelivered batch answers again with the same event ids (consumers drop the repeats)
  await f.write([t1, t2], 100)
  const again = values(await readTopic(f.topic, (m) => m.length >= 4))
  t.same(new Set(again.map((a) => a.eventId)), new Set(answers.map((a) => a.eventId)), 'the same answers')
  t.equal((await f.pool.query("SELECT count(*)::int AS n FROM entity_event_logs WHERE event_type = 'SNAPSHOT_TRIGGERED'")).rows[0].n, 2, 'stored once')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshots')).rows[0].n, 0, 'still nothing indexed')
})

test('worker with SLUICE_PROJECTION=off and S3: the default pipeline answers a trigger with SNAPSHOT_FAILED', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const prefix = testPrefix(t, 'wnoproj')
  const topic = uniqueName('snapshots')
  t.teardown(async () => { await deleteTopics(brokers, [topic]).catch(() => {}) })
  const w = await startWorker(t, fx, { ...s3WorkerEnv(prefix), SLUICE_SNAPSHOTS_TOPIC: topic, SLUICE_PROJECTION: 'off' })
  const trig = envelope('SNAPSHOT_TRIGGERED', { snapshotId: uniqueName('noproj') })
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('p') })
  await producer.connect()
  await producer.produceBatch([{ topic: fx.topic, key: 'k', value: JSON.stringify(trig) }])
  await producer.close()
  await waitFor('the trigger stored', async () => (await fx.pool.query("SELECT count(*)::int AS n FROM entity_event_logs WHERE event_type = 'SNAPSHOT_TRIGGERED'")).rows[0].n === 1, 60_000)
  const answers = values(await readTopic(topic, (m) => m.length >= 1))
  t.same(answers.map((a) => [a.eventType, a.payload.error?.code, a.metadata.causationId]), [['SNAPSHOT_FAILED', 'SLUICE_ERR_SNAPSHOT_NO_STATE', trig.eventId]])
  t.equal((await fx.pool.query('SELECT count(*)::int AS n FROM snapshots')).rows[0].n, 0, 'nothing indexed')
  t.equal(await w.stop(), 0, 'clean stop')
  t.match(w.log(), /SNAPSHOT_TRIGGERED events are stored and answered with SNAPSHOT_FAILED/, 'said once at start-up')
})

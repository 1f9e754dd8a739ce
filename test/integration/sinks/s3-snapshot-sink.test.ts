import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { gunzipSync } from 'node:zlib'
import { pino } from 'pino'
import { test } from 'tap'
import { deleteTopics } from '../../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import type { EntityEvent } from '../../../src/model/event.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'
import { inTransaction } from '../../helpers/pg-transaction.ts'
import { envelope, sinkFixture } from '../../helpers/s3-sink-fixture.ts'
import { privatePostgres } from '../../helpers/private-postgres.ts'
import { readTopic, values } from '../../helpers/read-topic.ts'
import { head, listKeys, listUploadKeys, privateS3, readHash, readObject, s3Client, s3WorkerEnv, testPrefix } from '../../helpers/s3.ts'
import { brokers, fixture, sources, startWorker, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')
const validate = validateEnvelope({})

/** An inline snapshot in the seed's file format, as the payload of SNAPSHOT_CREATED. */
function inlineSnapshot (id: string, n: number): Record<string, unknown> {
  return {
    snapshotId: id,
    createdAt: '2025-02-25T10:55:00Z',
    createdBy: 'system',
    triggerEvent: 'TASK_CREATED',
    version: '1.0',
    data: {
      groups: Array.from({ length: 3 }, (_, i) => ({ id: `group_${i}`, name: `Group ${i} «ü»` })),
      tasks: Array.from({ length: n }, (_, i) => ({ id: `task_${i}`, group: `group_${i % 3}`, status: i % 2 === 0 ? 'New' : 'Done', note: 'q"uote\\back\nline' })),
      comments: [],
      users: Array.from({ length: 2 }, (_, i) => ({ id: `user_${i}` }))
    },
    metadata: { source: 'test' }
  }
}

test('inline SNAPSHOT_CREATED: object, sha256 and metadata agree; redelivery rewrites the same bytes; index row, index document and SNAPSHOT_UPLOADED', async (t) => {
  const f = await sinkFixture(t, 'inline')
  const id = uniqueName('snap')
  const snap = inlineSnapshot(id, 5000) // ~0.5 MB: several 64 KiB pieces
  const event = envelope('SNAPSHOT_CREATED', snap)
  const first = await f.write([event], 10)
  t.same(first.rejected, [], 'nothing rejected')
  t.equal(first.stored, 1, 'the event is in the event log (slimmed)')

  const key = `${f.prefix}snapshots/${id}.json`
  const bytes = await readObject(f.s3, key)
  const h = await head(f.s3, key)
  const row = (await f.pool.query('SELECT * FROM snapshots WHERE snapshot_id = $1', [id])).rows[0]
  t.ok(row, 'an index row')
  t.equal(row.object_key, key)
  t.equal(row.kind, 'inline')
  t.equal(row.checksum, `sha256:${sha256(bytes)}`, 'index checksum = sha256 of the stored bytes')
  t.equal(Number(row.size_bytes), bytes.length, 'index size = stored size')
  t.equal(h.Metadata?.sha256, sha256(bytes), 'x-amz-meta-sha256 = sha256 of the stored bytes')
  t.equal(h.Metadata?.size, String(bytes.length), 'x-amz-meta-size')
  t.equal(h.ContentLength, bytes.length)
  t.same(row.counts, { groups: 3, tasks: 5000, comments: 0, users: 2 }, 'counts per collection')
  t.equal(row.etag, h.ETag, 'index etag = the object\'s')
  t.same({ topic: row.source_topic, partition: row.source_partition, offset: Number(row.source_offset) }, { topic: 'events', partition: 0, offset: 10 }, 'origin')
  t.equal(row.created_by, 'system')
  t.equal(row.trigger_event, 'TASK_CREATED')

  const doc = JSON.parse(bytes.toString('utf8'))
  t.same(Object.keys(doc), ['snapshotId', 'createdAt', 'createdBy', 'triggerEvent', 'version', 'data', 'metadata'], 'the seed\'s file format')
  t.same(doc.data, snap.data, 'data read back equals data sent')
  t.same(doc.metadata.counts, row.counts, 'metadata.counts')
  t.equal(doc.metadata.checksum, `sha256:${sha256(JSON.stringify(snap.data))}`, 'metadata.checksum = sha256 of the data member')
  t.equal(doc.metadata.size, Buffer.byteLength(JSON.stringify(snap.data)), 'metadata.size = bytes of the data member')
  t.equal(doc.metadata.source, 'test', 'the producer\'s own metadata is kept')

  const logged = (await f.pool.query("SELECT event_data FROM entity_event_logs WHERE event_type = 'SNAPSHOT_CREATED'")).rows
  t.equal(logged.length, 1, 'one event-log row')
  t.notOk('data' in logged[0].event_data, 'the event log row has no data')
  t.equal(logged[0].event_data.stored.checksum, row.checksum, 'the event log row names the stored object')

  // redelivery (the same message again): the same key gets the same bytes
  const again = await f.write([event], 10)
  t.same(again.rejected, [])
  t.equal(again.duplicates, 1, 'the event log drops the duplicate')
  const bytes2 = await readObject(f.s3, key)
  t.equal(sha256(bytes2), sha256(bytes), 'redelivery: identical bytes')
  t.equal((await head(f.s3, key)).ETag, h.ETag, 'redelivery: identical ETag')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshots')).rows[0].n, 1, 'still one index row')

  await f.sink.indexDocumentSettled()
  const index = JSON.parse((await readObject(f.s3, `${f.prefix}metadata/snapshot_index.json`)).toString())
  t.equal(index.count, 1)
  t.match(index.snapshots[0], { snapshotId: id, key, kind: 'inline', checksum: row.checksum, size: bytes.length }, 'metadata/snapshot_index.json lists it')

  const produced = values(await readTopic(f.topic, (m) => m.length >= 2))
  t.equal(produced.length, 2, 'SNAPSHOT_UPLOADED produced for the delivery and the redelivery')
  t.equal(produced[0].eventId, produced[1].eventId, 'with the same (deterministic) event id')
  t.match(produced[0], {
    eventType: 'SNAPSHOT_UPLOADED',
    aggregateType: 'Snapshot',
    aggregateId: id,
    payload: { snapshotId: id, kind: 'inline', key, checksum: row.checksum, size: bytes.length, bucket: String },
    metadata: { causationId: event.eventId, correlationId: 'corr-1', source: 'sluice' }
  }, 'the envelope of design.md')
})

test('SNAPSHOT_TRIGGERED: a consistent gzip NDJSON dump of entity_state with covers and as_of; triggers of one batch share it', async (t) => {
  const f = await sinkFixture(t, 'state', { dumpShareMs: 0 })
  await f.pool.query(`INSERT INTO entity_state (entity, entity_id, version, state, updated_at, last_event_id, source_topic, source_partition, source_offset)
    SELECT 'Task', 'task_' || i, 1, jsonb_build_object('name', 'T' || i, 'note', E'back\\\\slash "q"'), now(), 'e' || i, 'events', 0, i FROM generate_series(1, 300) i`)
  await f.pool.query(`INSERT INTO entity_state (entity, entity_id, version, state, updated_at, last_event_id, source_topic, source_partition, source_offset)
    VALUES ('Group', 'g1', 1, '{}', now(), 'eg', 'events', 1, 1)`)
  await f.pool.query("INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset) VALUES ('g1', 'events', 0, 42), ('other', 'events', 0, 7)")
  await f.pool.query(`INSERT INTO entity_event_logs ("timestamp", event_id, event_type, event_data, source_topic, source_partition, source_offset)
    VALUES ('2025-02-25T11:00:00Z', 'x1', 'TASK_CREATED', '{}', 'events', 0, 41)`)
  const ordered = (await f.pool.query('SELECT entity, entity_id FROM entity_state ORDER BY entity, entity_id')).rows
  const t1 = envelope('SNAPSHOT_TRIGGERED', { triggerReason: 'manual' })
  const t2 = envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'nightly_1' })
  const r = await f.write([t1, t2], 100)
  t.same(r.rejected, [])
  const rows = (await f.pool.query("SELECT * FROM snapshots WHERE kind = 'state' ORDER BY snapshot_id")).rows
  t.same(rows.map((x) => x.snapshot_id).sort(), ['nightly_1', `state-${t1.eventId as string}`].sort(), 'one index row per trigger')
  t.equal(rows[0].object_key, rows[1].object_key, 'one dump answers both')
  const row = rows[0]
  t.match(row.object_key, /\.jsonl\.gz$/)
  const gz = await readObject(f.s3, row.object_key)
  t.equal(row.checksum, `sha256:${sha256(gz)}`, 'checksum of the stored (gzip) bytes')
  t.equal(Number(row.size_bytes), gz.length)
  const lines = gunzipSync(gz).toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 301, 'one line per entity_state row')
  t.same(lines.map((l) => [l.entity, l.entity_id]), ordered.map((x) => [x.entity, x.entity_id]), 'in (entity, entity_id) order: the same state, the same bytes')
  t.equal(lines.find((l) => l.entity_id === 'task_7').state.note, 'back\\slash "q"', 'row_to_json text verbatim (escapes intact)')
  t.same(row.counts, { Group: 1, Task: 300 })
  t.same(row.covers, [{ topic: 'events', partition: 0, offset: 42 }], 'covers: the group\'s stored offsets')
  t.equal(new Date(row.as_of).toISOString(), '2025-02-25T11:00:00.000Z', 'as_of: the newest event')
  await f.sink.indexDocumentSettled()
  const index = JSON.parse((await readObject(f.s3, `${f.prefix}metadata/snapshot_index.json`)).toString())
  t.equal(index.count, 2)
  t.same(await listUploadKeys(f.s3, f.prefix), [], 'no multipart upload left')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0, 'no upload recorded as open')

  // redelivered triggers are answered already: no new dump
  const keysBefore = await listKeys(f.s3, `${f.prefix}snapshots/`)
  await f.write([t1, t2], 100)
  t.same(await listKeys(f.s3, `${f.prefix}snapshots/`), keysBefore, 'redelivery: no new object')
  // two lanes: triggers read before the other lane's dump started share it
  const laneA = f.take([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'lane-a' })], 200, 0)
  const laneB = f.take([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'lane-b' })], 300, 1)
  await Promise.all([laneA(), laneB()])
  const [a, b] = (await f.pool.query("SELECT object_key FROM snapshots WHERE snapshot_id IN ('lane-a', 'lane-b') ORDER BY snapshot_id")).rows
  t.equal(a.object_key, b.object_key, 'one dump for both lanes')
  t.equal((await listKeys(f.s3, `${f.prefix}snapshots/`)).length, keysBefore.length + 1, 'one new object')
  const laterC = f.take([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'later' })], 400, 0)
  await laterC()
  t.not((await f.pool.query("SELECT object_key FROM snapshots WHERE snapshot_id = 'later'")).rows[0].object_key, a.object_key, 'a trigger read after that dump started gets a dump of its own')
  // metadata/snapshot_index.json is rewritten once a batch has committed, never inside its transaction
  const listed = async (): Promise<string[]> => {
    await f.sink.indexDocumentSettled()
    return JSON.parse((await readObject(f.s3, `${f.prefix}metadata/snapshot_index.json`)).toString()).snapshots.map((x: { snapshotId: string }) => x.snapshotId)
  }
  t.same((await listed()).sort(), ['later', 'lane-a', 'lane-b', 'nightly_1', `state-${t1.eventId as string}`].sort(), 'concurrent lanes: the document has every row')
  const pending = f.buffer([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'in-tx' })], 500, 0)
  await f.sink.prepare([pending])
  await inTransaction(f.pool, async (client) => {
    await f.sink.write(client, [pending])
    t.notOk((await listed()).includes('in-tx'), 'not listed while its transaction is open')
  })
  f.sink.committed([pending])
  t.ok((await listed()).includes('in-tx'), 'listed once it committed')
  const produced = values(await readTopic(f.topic, (m) => m.length >= 6))
  t.same(produced.map((e) => e.eventType), Array(6).fill('SNAPSHOT_UPLOADED'))
  t.match(produced.find((e) => e.aggregateId === 'nightly_1'), { payload: { kind: 'state', covers: [{ topic: 'events', partition: 0, offset: 42 }] } })
})

test('SLUICE_S3_DUMP_SHARE_MS: a trigger read within it of a dump\'s start shares that dump (0: only a dump started after it, the test above)', async (t) => {
  const f = await sinkFixture(t, 'state-share', { dumpShareMs: 60_000 })
  await f.pool.query(`INSERT INTO entity_state (entity, entity_id, version, state, updated_at, last_event_id, source_topic, source_partition, source_offset)
    VALUES ('Task', 't1', 1, '{}', now(), 'e1', 'events', 0, 1)`)
  const keyOf = async (id: string): Promise<string> => (await f.pool.query('SELECT object_key FROM snapshots WHERE snapshot_id = $1', [id])).rows[0].object_key
  await f.write([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'first' })], 10)
  await f.write([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'soon' })], 11)
  t.equal(await keyOf('soon'), await keyOf('first'), 'read after the dump finished, within the window: that dump answers it')
  t.equal((await listKeys(f.s3, `${f.prefix}snapshots/`)).length, 1, 'one dump')
})

test('SNAPSHOT_TRIGGERED: the dump starts when the trigger is read, before its batch is prepared; the buffer waits for it meanwhile', async (t) => {
  const f = await sinkFixture(t, 'state-early', { dumpShareMs: 0 })
  await f.pool.query(`INSERT INTO entity_state (entity, entity_id, version, state, updated_at, last_event_id, source_topic, source_partition, source_offset)
    SELECT 'Task', 'task_' || i, 1, '{}', now(), 'e' || i, 'events', 0, i FROM generate_series(1, 50) i`)
  const buffer = f.buffer([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'early' })], 10)
  const waiting = buffer.waiting()
  t.ok(waiting !== null, 'the buffer says it waits for work it started')
  await waiting
  t.equal(buffer.waiting(), null, 'and stops waiting once the dump is done')
  const keys = await listKeys(f.s3, `${f.prefix}snapshots/`)
  t.equal(keys.length, 1, 'the dump is stored before the batch is prepared')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshots')).rows[0].n, 0, 'not indexed yet: that is the batch\'s')
  await f.sink.prepare([buffer])
  const announced = values(await readTopic(f.topic, (m) => m.length >= 1))
  t.same(announced.map((e) => [e.eventType, e.aggregateId]), [['SNAPSHOT_UPLOADED', 'early']], 'SNAPSHOT_UPLOADED is produced by the batch\'s prepare: no transaction is open while Kafka acknowledges it')
  const r = await inTransaction(f.pool, async (client) => f.sink.write(client, [buffer]))
  t.same(r.rejected, [])
  t.same(await listKeys(f.s3, `${f.prefix}snapshots/`), keys, 'the batch uses that dump: no second one')
  t.equal((await f.pool.query("SELECT object_key FROM snapshots WHERE snapshot_id = 'early'")).rows[0].object_key, keys[0])
  // a redelivered trigger whose snapshot is indexed starts nothing
  const again = f.buffer([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'early' })], 10)
  await again.waiting()
  t.same(await listKeys(f.s3, `${f.prefix}snapshots/`), keys, 'redelivery: no new object, the stored one not overwritten')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0, 'no upload recorded as open')
})

test('SNAPSHOT_TRIGGERED whose batch transaction is lost after the dump (a PostgreSQL crash): the retried batch leaves no snapshot_uploads row', async (t) => {
  const f = await sinkFixture(t, 'state-rollback')
  await f.pool.query(`INSERT INTO entity_state (entity, entity_id, version, state, updated_at, last_event_id, source_topic, source_partition, source_offset)
    SELECT 'Task', 'task_' || i, 1, '{}', now(), 'e' || i, 'events', 0, i FROM generate_series(1, 20) i`)
  const buffer = f.buffer([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'lost-commit' })], 500)
  // the dump is made, then the transaction that indexes it dies before its commit
  await f.sink.prepare([buffer])
  const lost = new Error('connection lost before COMMIT')
  await t.rejects(inTransaction(f.pool, async (client) => { await f.sink.write(client, [buffer]); throw lost }), lost)
  t.equal((await f.pool.query("SELECT count(*)::int AS n FROM snapshot_uploads WHERE snapshot_id = 'lost-commit'")).rows[0].n, 1, 'the dump\'s upload row survives the rollback')
  // the lane retries the same batch (the finished dump is reused: it started after the trigger was read)
  await f.sink.prepare([buffer])
  const r = await inTransaction(f.pool, async (client) => f.sink.write(client, [buffer]))
  t.same(r.rejected, [])
  t.equal((await f.pool.query("SELECT count(*)::int AS n FROM snapshots WHERE snapshot_id = 'lost-commit'")).rows[0].n, 1, 'indexed once')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0, 'no upload left recorded as open')
})

test('a state dump that fails while PostgreSQL is down: the surviving worker removes its snapshot_uploads row once the database is back', async (t) => {
  const db = await privatePostgres(t)
  const srv = await privateS3(t)
  const logged: string[] = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { logged.push(JSON.parse(line).msg) } })
  // 10 attempts per request and per dump, 20..200 ms apart: several seconds in which to stop PostgreSQL
  const f = await sinkFixture(t, 'pg-crash', { endpoint: srv.endpoint, maxAttempts: 10, chunkTimeoutMs: 2000 }, { pgUrl: db.url, logger })
  await srv.stop()
  const buffer = f.buffer([envelope('SNAPSHOT_TRIGGERED', { snapshotId: 'pg-crash' })], 7)
  const prepared = f.sink.prepare([buffer])
  prepared.catch(() => {}) // awaited below
  await waitFor('the dump\'s upload to be recorded', async () =>
    (await f.pool.query("SELECT count(*)::int AS n FROM snapshot_uploads WHERE snapshot_id = 'pg-crash'")).rows[0].n === 1, 60_000, 20)
  await db.stop() // while the dump retries against the stopped S3
  await prepared
  t.ok(logged.some((m) => m.startsWith('could not forget a failed snapshot\'s upload row now')), 'the row could not be removed when the dump failed')
  await db.start()
  await waitFor('the upload row to be removed', async () =>
    (await f.pool.query("SELECT count(*)::int AS n FROM snapshot_uploads WHERE snapshot_id = 'pg-crash'")).rows[0].n === 0, 60_000, 100)
  t.pass('removed by this worker, with no new assignment')
})

test('SNAPSHOT_CHUNK: one multipart upload across batches, offset held until the last chunk, gaps and strays dead-lettered', async (t) => {
  const f = await sinkFixture(t, 'chunks')
  const id = uniqueName('chunked')
  const chunk = (seq: number, bytes: Buffer, last: boolean | number = false): Record<string, unknown> =>
    envelope('SNAPSHOT_CHUNK', { snapshotId: id, seq, last, data: bytes.toString('base64') })
  const parts = Array.from({ length: 12 }, (_, i) => Buffer.alloc(1024 * 1024, i + 1)) // 12 MiB: 3 parts of 5 MiB
  const whole = sha256(Buffer.concat(parts))
  let r = await f.write(parts.slice(0, 5).map((b, i) => chunk(i, b)), 200)
  t.same(r.rejected, [])
  t.equal(f.sink.heldOffset('events', 0), 200, 'the partition is held at the first chunk')
  t.equal(f.sink.heldOffset('events', 1), undefined, 'other partitions are not')
  t.same(await listKeys(f.s3, `${f.prefix}snapshots/`), [], 'nothing visible before the last chunk')
  t.same(await listUploadKeys(f.s3, f.prefix), [`${f.prefix}snapshots/${id}.json`], 'one multipart upload open')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads WHERE upload_id <> \'\'')).rows[0].n, 1, 'recorded in snapshot_uploads')
  // a retried batch sends chunks already appended: skipped
  r = await f.write(parts.slice(3, 8).map((b, i) => chunk(i + 3, b)), 203)
  t.same(r.rejected, [])
  r = await f.write(parts.slice(8).map((b, i) => chunk(i + 8, b, i === 3)), 208)
  t.same(r.rejected, [])
  t.equal(f.sink.heldOffset('events', 0), undefined, 'the hold is released once complete')
  const got = await readHash(f.s3, `${f.prefix}snapshots/${id}.json`)
  t.equal(got.sha256, whole, 'sha256 read back = the producer\'s')
  t.equal(got.size, 12 * 1024 * 1024)
  const row = (await f.pool.query('SELECT * FROM snapshots WHERE snapshot_id = $1', [id])).rows[0]
  t.match(row, { kind: 'chunked', checksum: `sha256:${whole}`, source_offset: '211' })
  t.same(await listUploadKeys(f.s3, f.prefix), [], 'no multipart upload left')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0)

  // a gap fails the snapshot; its later chunks are strays
  const gapId = uniqueName('gap')
  const g = (seq: number): Record<string, unknown> => envelope('SNAPSHOT_CHUNK', { snapshotId: gapId, seq, data: 'aGVsbG8=' })
  r = await f.write([g(0), g(1), g(3), g(4)], 300, 1)
  t.same(r.rejected.map((x) => [x.origin.offset, x.error.code]), [[302, 'SLUICE_ERR_SNAPSHOT_CHUNK'], [303, 'SLUICE_ERR_SNAPSHOT_CHUNK']], 'the gap and the stray after it are dead-lettered')
  t.equal(f.sink.heldOffset('events', 1), undefined, 'a failed snapshot holds nothing')
  t.same(await listUploadKeys(f.s3, f.prefix), [], 'its upload is aborted')
  const events = values(await readTopic(f.topic, (m) => m.length >= 2))
  t.same(events.map((e) => e.eventType), ['SNAPSHOT_UPLOADED', 'SNAPSHOT_FAILED'])
  t.match(events[1], { aggregateId: gapId, payload: { kind: 'chunked', error: { code: 'SLUICE_ERR_SNAPSHOT_CHUNK' } } })

  // invalid snapshot events are poison when they are taken in
  t.throws(() => f.sink.createBuffer().add(validate.run(envelope('SNAPSHOT_CHUNK', { snapshotId: '../etc', seq: 0, data: '' }), {} as KafkaMessage) as EntityEvent, { size: 1 } as KafkaMessage),
    { code: 'SLUICE_ERR_SNAPSHOT_INVALID', stage: 'sink:s3-snapshots' })
  t.throws(() => f.sink.createBuffer().add(validate.run(envelope('SNAPSHOT_CREATED', { snapshotId: 'x', data: [1] }), {} as KafkaMessage) as EntityEvent, { size: 1 } as KafkaMessage),
    { code: 'SLUICE_ERR_SNAPSHOT_INVALID' })
})

test('chunks that stop coming: the snapshot is given up after the chunk timeout (upload aborted, hold released, SNAPSHOT_FAILED), its late chunks dead-lettered', async (t) => {
  const f = await sinkFixture(t, 'stalled', { chunkTimeoutMs: 1500 })
  const stalled = uniqueName('stalled')
  const alive = uniqueName('alive')
  const c = (id: string, seq: number, last = false): Record<string, unknown> =>
    envelope('SNAPSHOT_CHUNK', { snapshotId: id, seq, last, data: Buffer.alloc(1024, seq).toString('base64') })
  t.same((await f.write([c(stalled, 0), c(stalled, 1)], 10)).rejected, [])
  t.same((await f.write([c(alive, 0)], 50, 1)).rejected, [])
  t.equal(f.sink.heldOffset('events', 0), 10, 'held at the stalled snapshot\'s first chunk')
  // one snapshot keeps receiving a chunk every 500 ms, the other none
  for (let seq = 1; seq <= 5; seq++) {
    await sleep(500)
    t.same((await f.write([c(alive, seq)], 50 + seq, 1)).rejected, [])
  }
  await waitFor('the stalled snapshot to be given up', () => f.sink.heldOffset('events', 0) === undefined, 5_000, 50)
  t.equal(f.sink.heldOffset('events', 1), 50, 'the snapshot whose chunks keep coming is still open')
  t.same(await listUploadKeys(f.s3, f.prefix), [`${f.prefix}snapshots/${alive}.json`], 'the stalled one\'s upload is aborted')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads WHERE snapshot_id = $1', [stalled])).rows[0].n, 0, 'and forgotten')
  const failed = values(await readTopic(f.topic, (m) => m.length >= 1))
  t.match(failed, [{ eventType: 'SNAPSHOT_FAILED', aggregateId: stalled, payload: { kind: 'chunked', error: { code: 'SLUICE_ERR_SNAPSHOT_CHUNK', message: /no chunk for \d+ s after chunk 1/ } } }])
  const late = await f.write([c(stalled, 2, true)], 12)
  t.same(late.rejected.map((x) => [x.origin.offset, x.error.code]), [[12, 'SLUICE_ERR_SNAPSHOT_CHUNK']], 'a late chunk of it is dead-lettered')
  t.match(late.rejected[0]?.error.message, /which failed earlier .*no chunk for/)
  t.same((await f.write([c(alive, 6, true)], 56, 1)).rejected, [], 'the other completes')
  t.equal(f.sink.heldOffset('events', 1), undefined)
  t.same(await listKeys(f.s3, `${f.prefix}snapshots/`), [`${f.prefix}snapshots/${alive}.json`], 'only the complete one is visible')
})

test('S3 retries exhausted: the snapshot is aborted, its event dead-lettered, SNAPSHOT_FAILED produced; the upload left behind is aborted on the next assignment', async (t) => {
  const srv = await privateS3(t)
  const f = await sinkFixture(t, 'exhausted', { endpoint: srv.endpoint, maxAttempts: 3 })
  const id = uniqueName('doomed')
  const c = (seq: number, last = false): Record<string, unknown> => envelope('SNAPSHOT_CHUNK', { snapshotId: id, seq, last, data: Buffer.alloc(3 * 1024 * 1024, seq).toString('base64') })
  t.same((await f.write([c(0), c(1)], 0)).rejected, [], 'two chunks in: one part uploaded')
  t.same(await listUploadKeys(f.s3, f.prefix), [`${f.prefix}snapshots/${id}.json`])
  await srv.stop()
  // parts go out in the background: a part that fails for good is reported by the snapshot's next chunk
  t.same((await f.write([c(2), c(3)], 2)).rejected, [], 'chunks taken in while part 2 is being sent')
  t.equal(f.sink.heldOffset('events', 0), 0, 'held at the first chunk')
  await sleep(1500) // 3 attempts against a closed port, 20..200 ms apart
  const r = await f.write([c(4), envelope('SNAPSHOT_CREATED', inlineSnapshot(`${id}-inline`, 3))], 4)
  t.same(r.rejected.map((x) => [x.origin.offset, x.error.code]), [[4, 'SLUICE_ERR_S3_UPLOAD'], [5, 'SLUICE_ERR_S3_UPLOAD']],
    'the chunk that met the failed part and the inline snapshot are dead-lettered')
  t.match(r.rejected[0]?.error.message, /gave up after 3 attempts/)
  t.same((await f.write([c(5, true)], 6)).rejected.map((x) => [x.origin.offset, x.error.code]), [[6, 'SLUICE_ERR_SNAPSHOT_CHUNK']], 'a later chunk of the failed snapshot too')
  t.equal(f.sink.heldOffset('events', 0), undefined, 'nothing held: the partition moves on')
  await srv.start()
  t.same(await listUploadKeys(f.s3, f.prefix), [`${f.prefix}snapshots/${id}.json`], 'the abort could not reach S3: the upload is still there')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 1, 'and still recorded')
  await f.sink.assigned([{ topic: 'events', partition: 0 }])
  t.same(await listUploadKeys(f.s3, f.prefix), [], 'aborted once its partition is assigned again')
  t.equal((await f.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0)
  const events = values(await readTopic(f.topic, (m) => m.length >= 2))
  t.same(events.map((e) => [e.eventType, e.aggregateId, e.payload.error.code]).sort(), [['SNAPSHOT_FAILED', id, 'SLUICE_ERR_S3_UPLOAD'], ['SNAPSHOT_FAILED', `${id}-inline`, 'SLUICE_ERR_S3_UPLOAD']].sort())
})

for (const source of sources) {
  test(`worker (${source}): an inline snapshot and a trigger through the default pipeline`, async (t) => {
    const fx = await fixture(t, source, { partitions: 2 })
    const prefix = testPrefix(t, `w${source}`)
    const topic = uniqueName('snapshots')
    t.teardown(async () => { await deleteTopics(brokers, [topic]).catch(() => {}) })
    const w = await startWorker(t, fx, { ...s3WorkerEnv(prefix), SLUICE_SNAPSHOTS_TOPIC: topic })
    const id = uniqueName('wsnap')
    const snap = envelope('SNAPSHOT_CREATED', inlineSnapshot(id, 100))
    const trig = envelope('SNAPSHOT_TRIGGERED', { snapshotId: `${id}-state` })
    const notice = envelope('SNAPSHOT_CREATED', { snapshotId: 'elsewhere', collections: { tasks: 1 } }) // no data: a notice
    const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('p') })
    await producer.connect()
    await producer.produceBatch([snap, trig, notice].map((v) => ({ topic: fx.topic, key: id, value: JSON.stringify(v) })))
    await producer.close()
    await waitFor('two index rows', async () => (await fx.pool.query('SELECT count(*)::int AS n FROM snapshots')).rows[0].n === 2, 60_000)
    const key = `${prefix}snapshots/${id}.json`
    const s3 = s3Client()
    t.teardown(() => s3.destroy())
    const bytes = await readObject(s3, key)
    t.equal((await head(s3, key)).Metadata?.sha256, sha256(bytes), 'metadata sha256 = the bytes\'')
    const row = (await fx.pool.query('SELECT * FROM snapshots WHERE snapshot_id = $1', [id])).rows[0]
    t.equal(row.checksum, `sha256:${sha256(bytes)}`)
    const produced = values(await readTopic(topic, (m) => m.length >= 2))
    t.same(produced.map((e) => e.aggregateId).sort(), [id, `${id}-state`].sort(), 'SNAPSHOT_UPLOADED for both')
    const log = (await fx.pool.query('SELECT event_type FROM entity_event_logs ORDER BY event_type')).rows.map((r) => r.event_type)
    t.same(log, ['SNAPSHOT_CREATED', 'SNAPSHOT_CREATED', 'SNAPSHOT_TRIGGERED'], 'every event is in the event log')
    t.equal(await w.stop(), 0, 'clean stop')
    t.notMatch(w.log(), process.env.SLUICE_S3_SECRET_KEY as string, 'the S3 secret never reaches the log')
  })
}

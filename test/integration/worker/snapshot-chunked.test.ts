import { setTimeout as sleep } from 'node:timers/promises'
import { ListPartsCommand } from '@aws-sdk/client-s3'
import { test } from 'tap'
import { deleteTopics } from '../../../src/kafka/admin.ts'
import { MiB, indexRow, produceChunkedSnapshot, produceRegular, storedOffsets } from '../../helpers/chunked-snapshot.ts'
import { listKeys, listUploadKeys, readHash, s3Client, s3Env, s3WorkerEnv, testPrefix } from '../../helpers/s3.ts'
import { brokers, eventRows, fixture, sources, startWorker, uniqueName, waitFor, waitForCount, waitForProgress } from '../../helpers/worker-harness.ts'

// A 256 MiB snapshot sent as ~512 KiB SNAPSHOT_CHUNK messages (with regular events of the same
// partition in between) is streamed into one multipart upload: the worker's RSS grows, from the
// idle worker (which has stored a 1 MiB snapshot before), by less than part size x queue size +
// 64 MiB; the object read back has the
// producer's sha256, and the partition's stored offset stays at the snapshot's first chunk until
// the snapshot is indexed. Then a worker killed (SIGKILL) in the middle of a snapshot: its
// successor aborts the open upload, reads the chunks again from the held offset and completes it.
const PART = 8 * MiB
const QUEUE = 2
const SIZE = Number(process.env.SLUICE_TEST_SNAPSHOT_MB ?? 256) * MiB
const CHUNK = 512 * 1024
const INFLIGHT = 16 * MiB
// What the worker may add besides the parts. @platformatic/kafka reads each response into
// 64 KiB socket buffers that V8 frees only when it next collects (it lets ~64 MB of them pile
// up, measured 52 to 88 MiB of growth over runs), so its bound has 32 MiB more room; rdkafka's
// growth, measured 31 to 36 MiB, is held to the 64 MiB (README "Memory"). Measured
// from an idle worker that had not uploaded yet, the part hasher's thread (started by the
// first upload) counted as growth: 64 to 83 MiB, over the bound in one CI-like run.
const SLACK = { rdkafka: 64 * MiB, platformatic: 96 * MiB }

for (const source of sources) {
  test(`${source}: a ${SIZE / MiB} MiB chunked snapshot in bounded memory, offset held until it is indexed`, async (t) => {
    const fx = await fixture(t, source, { partitions: 1 })
    const prefix = testPrefix(t, `chunked-${source}`)
    const topic = uniqueName('snapshots')
    t.teardown(async () => { await deleteTopics(brokers, [topic]).catch(() => {}) })
    const w = await startWorker(t, fx, {
      ...s3WorkerEnv(prefix),
      SLUICE_SNAPSHOTS_TOPIC: topic,
      SLUICE_S3_PART_BYTES: String(PART),
      SLUICE_S3_QUEUE_SIZE: String(QUEUE),
      // what the worker holds besides the upload (README "Memory": the settings for topics of
      // ~1 MB messages): messages in flight (16 MiB, with rdkafka's consume calls a quarter of
      // it each) and fetched ahead (4 MiB)
      SLUICE_INFLIGHT_MAX_BYTES: String(INFLIGHT),
      SLUICE_KAFKA_PREFETCH_BYTES: String(4 * MiB)
    })
    const before = await produceRegular(fx.topic, 'first', 20)
    await waitForCount('the first events', async () => (await storedOffsets(fx)).get(0) ?? 0, 20)
    // a 1 MiB snapshot first: what the first upload starts once per process (the part hasher's
    // thread, ~30 MiB of RSS) is the idle worker's, not growth with a snapshot's size
    const warm = await produceChunkedSnapshot(fx.topic, { size: MiB, chunk: CHUNK })
    await waitForProgress('the first snapshot to be indexed', async () => (await indexRow(fx, warm.snapshotId)) !== undefined, async () => await eventRows(fx))
    await waitForCount('the first snapshot\'s chunks', async () => (await storedOffsets(fx)).get(0) ?? 0, 20 + warm.chunks)
    const idle = w.rss()

    // RSS sampled every 50 ms; the stored offset checked while the snapshot is not indexed
    const rss = { peak: 0 }
    const sampling = { on: true }
    const rssLoop = (async () => {
      while (sampling.on) {
        rss.peak = Math.max(rss.peak, w.rss())
        await sleep(50)
      }
    })()
    t.teardown(() => { sampling.on = false })
    const firstChunk = 20 + warm.chunks
    const started = Date.now()
    let maxStoredWhileOpen = 0
    const produced = await produceChunkedSnapshot(fx.topic, { size: SIZE, chunk: CHUNK, regularEvery: 64 })
    t.comment(`produced ${produced.chunks} chunks in ${Date.now() - started} ms`)
    let row: any
    await waitForProgress('the snapshot to be indexed', async () => {
      // the offset read before the index row: the batch that indexes the snapshot also stores
      // its offset, so when that commit lands between the two reads the row is found and the
      // sample is not counted (read the other way round, the new offset would count as open)
      const stored = (await storedOffsets(fx)).get(0) ?? 0
      row = await indexRow(fx, produced.snapshotId)
      if (row === undefined) maxStoredWhileOpen = Math.max(maxStoredWhileOpen, stored)
      return row !== undefined
    }, async () => await eventRows(fx))
    sampling.on = false
    await rssLoop
    const seconds = (Date.now() - started) / 1000
    const mb = (n: number): number => Math.round(n / MiB)
    const metrics = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text()
    const gauge = (name: string): number => mb(Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? 0))
    t.comment(`stored in ${seconds.toFixed(1)} s (${(SIZE / MiB / seconds).toFixed(1)} MiB/s from the first produce); RSS idle ${mb(idle)} MiB, peak ${mb(rss.peak)} MiB; after it: V8 heap ${gauge('nodejs_heap_size_total_bytes')} MiB, external ${gauge('nodejs_external_memory_bytes')} MiB`)
    const bound = PART * QUEUE + SLACK[source]
    t.ok(rss.peak - idle < bound, `RSS grew by ${mb(rss.peak - idle)} MiB over the idle worker, under part x queue + ${SLACK[source] / MiB} MiB = ${bound / MiB} MiB`)
    t.ok(maxStoredWhileOpen <= firstChunk, `the stored offset stayed at the first chunk (${firstChunk}) while the snapshot was open (max seen ${maxStoredWhileOpen})`)

    const s3 = s3Client()
    t.teardown(() => s3.destroy())
    const key = `${prefix}snapshots/${produced.snapshotId}.json`
    const got = await readHash(s3, key)
    t.equal(got.size, SIZE, 'object size')
    t.equal(got.sha256, produced.sha256, 'sha256 read back from S3 = the producer\'s')
    t.match(row, { kind: 'chunked', checksum: `sha256:${produced.sha256}`, size_bytes: String(SIZE), counts: { blocks: produced.chunks } })
    t.same(await listUploadKeys(s3, prefix), [], 'ListMultipartUploads: empty')
    const total = firstChunk + produced.chunks + produced.eventIds.length
    await waitForCount('every message stored', async () => (await storedOffsets(fx)).get(0) ?? 0, total)
    const regular = (await fx.pool.query("SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs WHERE event_type LIKE 'TASK_%'")).rows[0]
    t.same(regular, { n: before.length + produced.eventIds.length, d: before.length + produced.eventIds.length }, 'the regular events in between are stored once each')
    const chunks = (await fx.pool.query("SELECT count(*)::int AS n, max(length(event_data::text))::int AS widest FROM entity_event_logs WHERE event_type = 'SNAPSHOT_CHUNK'")).rows[0]
    t.equal(chunks.n, warm.chunks + produced.chunks, 'each chunk has its (slim) row in the event log')
    t.ok(chunks.widest < 1000, `without its bytes (widest row ${chunks.widest} chars)`)
    t.equal(await w.stop(), 0)
  })

  test(`${source}: SIGKILL in the middle of a chunked snapshot, then a restart: a complete object, no multipart upload left`, async (t) => {
    const fx = await fixture(t, source, { partitions: 1 })
    const prefix = testPrefix(t, `crash-${source}`)
    const topic = uniqueName('snapshots')
    t.teardown(async () => { await deleteTopics(brokers, [topic]).catch(() => {}) })
    const env = { ...s3WorkerEnv(prefix), SLUICE_SNAPSHOTS_TOPIC: topic, SLUICE_S3_PART_BYTES: String(5 * MiB) }
    const s3 = s3Client()
    t.teardown(() => s3.destroy())
    const size = 48 * MiB
    const chunks = size / CHUNK
    const snapshotId = uniqueName('crashed')
    const key = `${prefix}snapshots/${snapshotId}.json`
    const first = await startWorker(t, fx, env)
    // the first half, then the kill once parts of it are in S3
    await produceChunkedSnapshot(fx.topic, { size, chunk: CHUNK, regularEvery: 16, snapshotId, seqs: [0, chunks / 2] })
    let uploadId = ''
    await waitForProgress('parts of the first half uploaded', async () => {
      const r = await fx.pool.query("SELECT upload_id FROM snapshot_uploads WHERE snapshot_id = $1 AND upload_id <> ''", [snapshotId])
      if (r.rows.length === 0) return false
      uploadId = r.rows[0].upload_id
      const parts = await s3.send(new ListPartsCommand({ Bucket: s3Env.bucket, Key: key, UploadId: uploadId }))
      return (parts.Parts ?? []).length >= 2
    }, async () => await eventRows(fx), 100)
    await first.kill()
    t.same(await listUploadKeys(s3, prefix), [key], 'the killed worker left its multipart upload open')
    t.same(await listKeys(s3, `${prefix}snapshots/`), [], 'and no object')
    t.ok(((await storedOffsets(fx)).get(0) ?? 0) <= 0, 'the stored offset did not pass the first chunk')

    const rest = await produceChunkedSnapshot(fx.topic, { size, chunk: CHUNK, regularEvery: 16, snapshotId, seqs: [chunks / 2, chunks] })
    const second = await startWorker(t, fx, env)
    await waitForProgress('the snapshot to be indexed after the restart', async () => (await indexRow(fx, snapshotId)) !== undefined, async () => await eventRows(fx))
    const got = await readHash(s3, key)
    t.equal(got.sha256, rest.sha256, 'the object is complete: sha256 = the producer\'s')
    t.equal(got.size, size)
    t.equal((await indexRow(fx, snapshotId)).checksum, `sha256:${rest.sha256}`)
    await waitFor('no multipart upload left', async () => (await listUploadKeys(s3, prefix)).length === 0, 15_000)
    t.same(await listUploadKeys(s3, prefix), [], 'ListMultipartUploads: empty')
    t.equal((await fx.pool.query('SELECT count(*)::int AS n FROM snapshot_uploads')).rows[0].n, 0, 'no upload recorded as open')
    t.match(second.log(), /aborted an abandoned snapshot upload|aborted an unfinished earlier upload/, 'the successor aborted the abandoned upload')
    const regular = (await fx.pool.query("SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs WHERE event_type LIKE 'TASK_%'")).rows[0]
    t.equal(regular.n, chunks / 16, 'the regular events in between: each stored once')
    t.equal(regular.d, regular.n)
    t.equal(await second.stop(), 0)
  })
}

import { setTimeout as sleep } from 'node:timers/promises'
import { ListPartsCommand } from '@aws-sdk/client-s3'
import type { S3Client } from '@aws-sdk/client-s3'
import { test } from 'tap'
import { deleteTopics } from '../../../src/kafka/admin.ts'
import { MiB, indexRow, produceChunkedSnapshot, produceRegular, storedOffsets } from '../../helpers/chunked-snapshot.ts'
import { listKeys, listUploadKeys, privateS3, readHash, s3Client, s3Env, s3WorkerEnv, testPrefix } from '../../helpers/s3.ts'
import { brokers, eventRows, fixture, sources, startWorker, uniqueName, waitForCount, waitForProgress } from '../../helpers/worker-harness.ts'

// S3 stops in the middle of a chunked snapshot's multipart upload (a private versitygw, so the
// shared one stays up): the worker retries, its partition waits (the stored offset stays at
// the first chunk), nothing partial is listed; once S3 is back the upload goes on, completes
// on the last chunk, the offset moves past it and no multipart upload is left.
const CHUNK = 512 * 1024
const SIZE = 40 * MiB
const CHUNKS = SIZE / CHUNK

async function partsOf (s3: S3Client, key: string, uploadId: string): Promise<number> {
  return ((await s3.send(new ListPartsCommand({ Bucket: s3Env.bucket, Key: key, UploadId: uploadId }))).Parts ?? []).length
}

function retries (metrics: string): number {
  let n = 0
  for (const m of metrics.matchAll(/^sluice_retries_total\{[^}]*operation="s3"[^}]*\} (\d+)/gm)) n += Number(m[1])
  return n
}

for (const source of sources) {
  test(`${source}: S3 stopped in the middle of a multipart upload`, async (t) => {
    const s3srv = await privateS3(t)
    const s3 = s3Client(s3srv.endpoint)
    t.teardown(() => s3.destroy())
    const fx = await fixture(t, source, { partitions: 1 })
    const prefix = testPrefix(t, `outage-${source}`) // (its clean-up runs against the shared S3: nothing there)
    const topic = uniqueName('snapshots')
    t.teardown(async () => { await deleteTopics(brokers, [topic]).catch(() => {}) })
    const w = await startWorker(t, fx, {
      ...s3WorkerEnv(prefix, s3srv.endpoint),
      SLUICE_SNAPSHOTS_TOPIC: topic,
      SLUICE_S3_PART_BYTES: String(5 * MiB),
      SLUICE_S3_MAX_ATTEMPTS: '200',
      SLUICE_RETRY_MAX_MS: '1000'
    })
    await produceRegular(fx.topic, 'before', 10)
    await waitForCount('the first events', async () => (await storedOffsets(fx)).get(0) ?? 0, 10)
    const snapshotId = uniqueName('outage')
    const key = `${prefix}snapshots/${snapshotId}.json`
    const send = async (from: number, to: number): ReturnType<typeof produceChunkedSnapshot> =>
      produceChunkedSnapshot(fx.topic, { size: SIZE, chunk: CHUNK, snapshotId, seqs: [from, to] })

    // 1. a quarter of the chunks: the upload is open with parts in it
    await send(0, CHUNKS / 4)
    let uploadId = ''
    await waitForProgress('parts in S3', async () => {
      const r = await fx.pool.query("SELECT upload_id FROM snapshot_uploads WHERE snapshot_id = $1 AND upload_id <> ''", [snapshotId])
      if (r.rows.length === 0) return false
      uploadId = r.rows[0].upload_id
      return (await partsOf(s3, key, uploadId)) >= 1
    }, async () => await eventRows(fx))

    // 2. S3 goes away; most of the rest arrives meanwhile (not the last chunk)
    await s3srv.stop()
    const retriesBefore = retries(await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text())
    await send(CHUNKS / 4, CHUNKS - 1)
    await sleep(8_000)
    const metrics = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text()
    t.ok(retries(metrics) > retriesBefore, `S3 requests retried while it was down (${retries(metrics) - retriesBefore})`)
    t.equal(w.proc.exitCode, null, 'the worker keeps running')
    t.equal((await storedOffsets(fx)).get(0), 10, 'the partition waits: its stored offset is the first chunk\'s')
    t.match(w.log(), /S3: uploading part \d+ of .* failed, retrying/, 'the log says which request is retried')

    // 3. S3 is back: the upload goes on, but stays incomplete without its last chunk
    await s3srv.start()
    const fullParts = Math.floor(((CHUNKS - 1) * CHUNK) / (5 * MiB))
    await waitForCount('the parts sent during the outage', async () => await partsOf(s3, key, uploadId), fullParts, 250)
    t.same(await listKeys(s3, `${prefix}snapshots/`), [], 'no partial object is listed')
    t.equal((await storedOffsets(fx)).get(0), 10, 'the stored offset still holds at the first chunk')

    // 4. the last chunk: complete, indexed, the offset moves on
    const all = await send(CHUNKS - 1, CHUNKS)
    await waitForProgress('the snapshot to be indexed', async () => (await indexRow(fx, snapshotId)) !== undefined, async () => await eventRows(fx))
    const got = await readHash(s3, key)
    t.equal(got.sha256, all.sha256, 'sha256 read back = the producer\'s')
    t.equal(got.size, SIZE)
    await waitForCount('the offset past the snapshot', async () => (await storedOffsets(fx)).get(0) ?? 0, 10 + CHUNKS)
    t.pass('the stored offset moved past the last chunk')
    t.same(await listUploadKeys(s3, prefix), [], 'ListMultipartUploads: empty')
    t.equal(await w.stop(), 0, 'clean stop')
  })
}

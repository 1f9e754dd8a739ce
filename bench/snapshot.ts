// Snapshot upload benchmark: the same N MiB of bytes uploaded to S3 twice in one run,
//  - raw: one lib-storage Upload of the bytes (the S3 server's own rate, same part and queue
//    size and the same request signing as the worker's; over TLS, where the worker does not
//    hash its parts for their signature, once more first with the SDK's defaults),
//  - through sluice: the bytes as ~512 KiB SNAPSHOT_CHUNK messages (base64 in the envelope)
//    produced to a fresh topic beforehand, then the worker started; timed from its partition
//    assignment to the snapshot's index row (consume, decode, multipart upload, index).
// Each phase also prints the CPU seconds spent in its window by the processes that share the
// machine (the S3 server, the broker, PostgreSQL, the uploader or the worker) and the machine's
// busy core-seconds: what a rate short of raw S3's is made of.
// Run: scripts/bench.sh snapshot [MiB] (default 256; SLUICE_BENCH_SOURCES=rdkafka,platformatic).
import { once } from 'node:events'
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import pg from 'pg'
import { spawnWorker } from './worker.ts'
import { cpuSeconds, machineBusySeconds, parentPid, stackPid, treeCpuSeconds } from './ingest/proc.ts'
import { deleteTopics, ensureTopics } from '../src/kafka/admin.ts'
import { RdkafkaProducer } from '../src/kafka/producer.ts'
import { overTls, unsignedPayloads } from '../src/sinks/s3/s3-ops.ts'
import type { ProduceRecord } from '../src/kafka/producer.ts'

const env = process.env
const MiB = 1024 * 1024
const sizeMiB = Number(process.argv[2] ?? env.SLUICE_BENCH_SNAPSHOT_MB ?? 256)
const size = sizeMiB * MiB
const CHUNK = 512 * 1024
const partBytes = Number(env.SLUICE_S3_PART_BYTES ?? 8 * MiB)
const queueSize = Number(env.SLUICE_S3_QUEUE_SIZE ?? 2)
const sources = (env.SLUICE_BENCH_SOURCES ?? 'rdkafka,platformatic').split(',')
const tag = `${process.pid}_${Date.now()}`
const prefix = `bench/${tag}/`
const say = (s = ''): void => { process.stdout.write(s + '\n') }

function need (name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run scripts/bench.sh snapshot`)
  return v
}
const brokers = need('SLUICE_KAFKA_BROKERS')
const pgUrl = need('SLUICE_PG_URL')
const bucket = need('SLUICE_S3_BUCKET')
const s3Options = {
  endpoint: need('SLUICE_S3_ENDPOINT'),
  region: need('SLUICE_S3_REGION'),
  forcePathStyle: true,
  credentials: { accessKeyId: need('SLUICE_S3_ACCESS_KEY'), secretAccessKey: need('SLUICE_S3_SECRET_KEY') }
}
// the reference: parts signed as the worker signs them (over TLS UNSIGNED-PAYLOAD with the
// SDK's CRC32, over plain HTTP a sha256 of every part: s3-ops.ts), so the raw upload does the
// same S3 work per byte as the worker; when that differs from the SDK's defaults, those are
// measured once beside it
const unsigned = overTls(s3Options.endpoint)
const s3 = unsigned ? unsignedPayloads(new S3Client(s3Options)) : new S3Client(s3Options)

/** CPU seconds so far of the processes sharing the machine (null: not known), and the machine's busy core-seconds. */
interface CpuReading { s3: number | null, kafka: number | null, pg: number | null, self: number, worker: number | null, machine: number }
const s3Pid = stackPid('s3/versitygw.pid')
const kafkaPid = stackPid('kafka/kafka.pid')
let postmaster: number | null = null
const treeCpu = (pid: number | null): number | null => {
  if (pid === null) return null
  try { return treeCpuSeconds(pid) } catch { return null }
}
function readCpu (worker: number | null = null): CpuReading {
  const u = process.cpuUsage()
  return { s3: treeCpu(s3Pid), kafka: treeCpu(kafkaPid), pg: treeCpu(postmaster), self: (u.user + u.system) / 1e6, worker: worker === null ? null : cpuSeconds(worker), machine: machineBusySeconds() }
}
/** "S3 server 1.2, Kafka 0.9, ...; machine busy 3.1 of 4.0 core-seconds": what ran between two readings. */
function cpuUsed (a: CpuReading, b: CpuReading, seconds: number, mine: 'self' | 'worker'): string {
  const d = (x: number | null, y: number | null): string => x === null || y === null ? '?' : (y - x).toFixed(1)
  const parts = [mine === 'self' ? `uploader ${d(a.self, b.self)}` : `worker ${d(a.worker, b.worker)}`, `S3 server ${d(a.s3, b.s3)}`]
  if (mine === 'worker') parts.push(`Kafka ${d(a.kafka, b.kafka)}`, `PostgreSQL ${d(a.pg, b.pg)}`)
  return `CPU s: ${parts.join(', ')}; machine busy ${(b.machine - a.machine).toFixed(1)} of ${(seconds * cpus().length).toFixed(1)} core-seconds`
}

/** Deterministic pseudo-random bytes (incompressible), in CHUNK pieces. */
function * bytes (): Generator<Buffer> {
  let x = 0x5eed
  for (let done = 0; done < size; done += CHUNK) {
    const words = new Uint32Array(Math.min(CHUNK, size - done) / 4)
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      words[i] = x
    }
    yield Buffer.from(words.buffer)
  }
}

async function raw (client = s3): Promise<{ seconds: number, cpu: string }> {
  const chunks = [...bytes()] // in memory first: the rate is S3's, not the generator's
  const key = `${prefix}raw.bin`
  const before = readCpu()
  const started = performance.now()
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: Readable.from(chunks) }, partSize: partBytes, queueSize }).done()
  const seconds = (performance.now() - started) / 1000
  const after = readCpu()
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
  return { seconds, cpu: cpuUsed(before, after, seconds, 'self') }
}

async function produce (topic: string, snapshotId: string): Promise<number> {
  const producer = new RdkafkaProducer({ brokers, clientId: `bench-snapshot-${tag}` })
  await producer.connect()
  const total = Math.ceil(size / CHUNK)
  let seq = 0
  let batch: ProduceRecord[] = []
  let batchBytes = 0
  let sent = 0
  for (const b of bytes()) {
    const value = JSON.stringify({
      eventId: `${snapshotId}-${seq}`,
      eventType: 'SNAPSHOT_CHUNK',
      timestamp: new Date().toISOString(),
      aggregateType: 'Snapshot',
      aggregateId: snapshotId,
      payload: { entity: 'Snapshot', entityId: snapshotId, snapshotId, seq, last: seq === total - 1, data: b.toString('base64') }
    })
    batch.push({ topic, key: snapshotId, value })
    batchBytes += value.length
    sent += value.length
    seq++
    if (batchBytes >= 16 * MiB) { await producer.produceBatch(batch); batch = []; batchBytes = 0 }
  }
  if (batch.length > 0) await producer.produceBatch(batch)
  await producer.close()
  return sent
}

async function throughSluice (source: string): Promise<{ seconds: number, peakRssMb: number, messageBytes: number, cpu: string }> {
  const topic = `bench_snap_${source}_${tag}`
  const schema = `bench_snap_${source}_${tag}`.toLowerCase()
  const snapshotId = `bench-${source}-${tag}`
  await ensureTopics(brokers, [{ name: topic, partitions: 1 }])
  const messageBytes = await produce(topic, snapshotId)
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
  mkdirSync('.sluice', { recursive: true })
  const log = createWriteStream(`.sluice/bench-snapshot-${source}.log`)
  const logLines: string[] = []
  const worker = spawnWorker({
    SLUICE_TOPICS: topic,
    SLUICE_PG_SCHEMA: schema,
    SLUICE_KAFKA_GROUP: `bench-${schema}`,
    SLUICE_KAFKA_SOURCE: source,
    SLUICE_HTTP_PORT: '0',
    SLUICE_LOG_LEVEL: 'info',
    SLUICE_S3_PREFIX: prefix,
    SLUICE_SNAPSHOTS_TOPIC: `${topic}.snapshots`
  })
  // the CPU readings bracket the timed window: from the assignment's log line to the index row
  let atAssignment: CpuReading | null = null
  let partial = ''
  worker.stdout?.on('data', (d: Buffer) => {
    const text = d.toString()
    logLines.push(text)
    if (atAssignment !== null) return
    const lines = (partial + text).split('\n')
    partial = lines.pop() ?? ''
    if (lines.some((l) => l.includes('"msg":"partitions assigned"'))) atAssignment = readCpu(worker.pid as number)
  })
  worker.stdout?.pipe(log)
  worker.stderr?.pipe(log)
  const exited = once(worker, 'exit')
  let peakRssMb = 0
  let indexedAt: Date | null = null
  let atIndex: CpuReading | null = null
  try {
    for (;;) {
      try {
        const status = readFileSync(`/proc/${worker.pid as number}/status`, 'utf8')
        peakRssMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
      } catch {}
      const r = await pool.query(`SELECT indexed_at FROM "${schema}".snapshots WHERE snapshot_id = $1`, [snapshotId]).catch(() => ({ rows: [] }))
      if (r.rows.length > 0) { atIndex = readCpu(worker.pid as number); indexedAt = r.rows[0].indexed_at; break }
      if (worker.exitCode !== null) throw new Error(`worker exited with ${worker.exitCode}; see .sluice/bench-snapshot-${source}.log`)
      await sleep(50)
    }
  } finally {
    worker.kill('SIGTERM')
    await exited
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await pool.end()
    await deleteTopics(brokers, [topic, `${topic}.dlq`, `${topic}.snapshots`]).catch(() => {})
  }
  // from the partition's assignment (start-up excluded) to the index row
  const assigned = logLines.join('').split('\n').map((l) => { try { return JSON.parse(l) } catch { return null } })
    .find((l) => l?.msg === 'partitions assigned')
  if (assigned === undefined || indexedAt === null || atAssignment === null || atIndex === null) throw new Error('no assignment in the worker log')
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}snapshots/${snapshotId}.json` })).catch(() => {})
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}metadata/snapshot_index.json` })).catch(() => {})
  const seconds = (indexedAt.getTime() - (assigned.time as number)) / 1000
  return { seconds, peakRssMb, messageBytes, cpu: cpuUsed(atAssignment, atIndex, seconds, 'worker') }
}

say(`snapshot upload: ${sizeMiB} MiB, part ${partBytes / MiB} MiB x queue ${queueSize}; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`)
{
  const pool = new pg.Pool({ connectionString: pgUrl, max: 1 })
  postmaster = parentPid(Number((await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid))
  await pool.end()
}
let defaults: { seconds: number, cpu: string } | null = null
if (unsigned) {
  const s3Defaults = new S3Client(s3Options)
  defaults = await raw(s3Defaults)
  s3Defaults.destroy()
  say(`raw S3, the SDK's defaults:   ${(sizeMiB / defaults.seconds).toFixed(1)} MiB/s (${defaults.seconds.toFixed(2)} s); ${defaults.cpu}`)
}
const first = await raw()
const rawSeconds = first.seconds
say(`raw S3 (lib-storage Upload):  ${(sizeMiB / rawSeconds).toFixed(1)} MiB/s (${rawSeconds.toFixed(2)} s; payload ${unsigned ? 'unsigned' : 'signed'}); ${first.cpu}`)
for (const source of sources) {
  const r = await throughSluice(source)
  say(`through sluice (${source.padEnd(12)}): ${(sizeMiB / r.seconds).toFixed(1)} MiB/s (${r.seconds.toFixed(2)} s; ${(r.messageBytes / MiB).toFixed(0)} MiB of chunk messages; worker peak RSS ${r.peakRssMb.toFixed(0)} MiB) = ${(rawSeconds / r.seconds * 100).toFixed(0)}% of raw${defaults === null ? '' : ` (${(defaults.seconds / r.seconds * 100).toFixed(0)}% of the SDK's defaults)`}; ${r.cpu}`)
}
const again = await raw()
say(`raw S3 again:                 ${(sizeMiB / again.seconds).toFixed(1)} MiB/s (${again.seconds.toFixed(2)} s); ${again.cpu}`)
say(`at 0.8 of the first raw rate the upload through sluice would take ${(rawSeconds / 0.8).toFixed(2)} s: ${(rawSeconds / 0.8 * cpus().length).toFixed(1)} core-seconds on this machine`)
s3.destroy()

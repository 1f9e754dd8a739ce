// Ingest benchmark: N seed-mix events (~500 B) produced to a fresh topic, then the worker
// started and timed until every event is durable; a second, rate-limited run at half the
// measured maximum for produce->durable latency; the same rows loaded with `psql \copy` into
// the same schema as the baseline. Run: scripts/bench.sh [events] (default 1,000,000).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { deleteTopics, ensureTopics } from '../src/kafka/admin.ts'
import { RdkafkaProducer } from '../src/kafka/producer.ts'
import { runMigrations } from '../src/sinks/timescale/migrate.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'
import { normalizeRecordToCopyLine } from './copy-lines.ts'

const env = process.env
const brokers = need('SLUICE_KAFKA_BROKERS')
const pgUrl = need('SLUICE_PG_URL')
const total = Number(process.argv[2] ?? env.SLUICE_BENCH_EVENTS ?? 1_000_000)
const sources = (env.SLUICE_BENCH_SOURCES ?? 'rdkafka,platformatic').split(',')
const PARTITIONS = 6
const tag = `${process.pid}_${Date.now()}`

function need (name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run scripts/bench.sh`)
  return v
}
const say = (s = ''): void => { process.stdout.write(s + '\n') }

interface WorkerRun { seconds: number, firstDurableSeconds: number, peakRssMb: number, cpuSeconds: number, latency?: { p50: number, p99: number } }

async function produce (topic: string, count: number, ratePerSec = 0): Promise<{ seconds: number, bytes: number, sent: Array<[number, number]> }> {
  const producer = new RdkafkaProducer({ brokers, clientId: `bench-${tag}` })
  await producer.connect()
  const started = performance.now()
  let bytes = 0
  let batch = []
  let n = 0
  // send times per message index (rate-limited run only) for produce->durable latency
  const sent: Array<[number, number]> = []
  for (const r of sampleEvents({ count, seed: 7, startMs: Date.parse('2025-02-25T00:00:00Z') })) {
    batch.push({ topic, key: r.key, value: r.value })
    bytes += r.value.length + r.key.length
    n++
    if (batch.length === (ratePerSec > 0 ? Math.max(1, Math.floor(ratePerSec / 100)) : 10000)) {
      if (ratePerSec > 0) {
        const due = started + (n / ratePerSec) * 1000
        const wait = due - performance.now()
        if (wait > 0) await sleep(wait)
        sent.push([n, performance.now()])
      }
      await producer.produceBatch(batch)
      batch = []
    }
  }
  if (batch.length > 0) { await producer.produceBatch(batch); sent.push([n, performance.now()]) }
  await producer.close()
  return { seconds: (performance.now() - started) / 1000, bytes, sent }
}

async function storedSum (pool: pg.Pool, schema: string, topic: string): Promise<number> {
  const r = await pool.query(`SELECT coalesce(sum(next_offset), 0)::bigint AS n FROM "${schema}".sluice_offsets WHERE topic = $1`, [topic])
  return Number(r.rows[0].n)
}

function procStats (pid: number): { rssMb: number, cpu: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  const ticks = Number(stat[11]) + Number(stat[12]) // utime + stime
  return { rssMb: hwm, cpu: ticks / 100 }
}

async function runWorker (source: string, topic: string, schema: string, pool: pg.Pool, expected: number, during?: () => Promise<Array<[number, number]>>): Promise<WorkerRun> {
  mkdirSync('.sluice', { recursive: true })
  const log = createWriteStream(`.sluice/bench-worker-${source}.log`)
  const worker = spawn('bin/sluice', [], {
    env: { ...env, SLUICE_NODE: process.execPath, SLUICE_TOPICS: topic, SLUICE_PG_SCHEMA: schema, SLUICE_KAFKA_GROUP: `bench-${schema}`, SLUICE_KAFKA_SOURCE: source, SLUICE_HTTP_PORT: '0', SLUICE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  worker.stdout.pipe(log)
  worker.stderr.pipe(log)
  const exited = once(worker, 'exit')
  const pid = worker.pid as number
  const started = performance.now()
  let stats = { rssMb: 0, cpu: 0 }
  // polled every 20 ms: offsets durable per poll give produce->durable latency
  const durableAt: Array<[number, number]> = []
  const producing = during?.()
  for (;;) {
    const n = await storedSum(pool, schema, topic)
    durableAt.push([n, performance.now()])
    try { stats = procStats(pid) } catch {}
    if (n >= expected) break
    if (worker.exitCode !== null) throw new Error(`worker exited with ${worker.exitCode}; see .sluice/bench-worker-${source}.log`)
    await sleep(20)
  }
  const seconds = (performance.now() - started) / 1000
  // start-up (process, migrations, group join) ends when the first offsets are stored
  const first = durableAt.find(([n]) => n > 0)
  const firstDurableSeconds = first === undefined ? seconds : (first[1] - started) / 1000
  let latency
  if (producing !== undefined) {
    const sent = await producing
    latency = latencies(sent, durableAt)
  }
  worker.kill('SIGTERM')
  await exited
  return { seconds, firstDurableSeconds, peakRssMb: stats.rssMb, cpuSeconds: stats.cpu, latency }
}

/** For each produced batch (cumulative count, time sent), when the stored count first covered it. */
function latencies (sent: Array<[number, number]>, durable: Array<[number, number]>): { p50: number, p99: number } {
  const out: number[] = []
  let j = 0
  for (const [n, t] of sent) {
    while (j < durable.length && (durable[j] as [number, number])[0] < n) j++
    if (j < durable.length) out.push((durable[j] as [number, number])[1] - t)
  }
  out.sort((a, b) => a - b)
  const pick = (q: number): number => out[Math.min(out.length - 1, Math.floor(q * out.length))] ?? NaN
  return { p50: pick(0.5), p99: pick(0.99) }
}

async function psqlBaseline (pool: pg.Pool, schema: string): Promise<number> {
  const file = `.sluice/bench-${tag}.copy`
  const out = createWriteStream(file)
  let i = 0
  for (const r of sampleEvents({ count: total, seed: 7, startMs: Date.parse('2025-02-25T00:00:00Z') })) {
    if (!out.write(normalizeRecordToCopyLine(r.value, 'baseline', i % PARTITIONS, i))) await once(out, 'drain')
    i++
  }
  out.end()
  await once(out, 'finish')
  const started = performance.now()
  const psql = spawn('psql', [pgUrl, '-v', 'ON_ERROR_STOP=1', '-c', `SET search_path TO "${schema}"`, '-c',
    `\\copy entity_event_logs ("timestamp", event_id, event_type, entity, entity_id, version, user_name, workspace, event_data, metadata, correlation_id, causation_id, source_topic, source_partition, source_offset) FROM '${file}'`],
  { stdio: ['ignore', 'inherit', 'inherit'] })
  const [code] = await once(psql, 'exit')
  rmSync(file, { force: true })
  if (code !== 0) throw new Error(`psql \\copy failed with ${code}`)
  const seconds = (performance.now() - started) / 1000
  const n = Number((await pool.query(`SELECT count(*) AS n FROM "${schema}".entity_event_logs`)).rows[0].n)
  if (n !== total) throw new Error(`psql loaded ${n} rows, expected ${total}`)
  return seconds
}

async function freshSchema (pool: pg.Pool, name: string): Promise<void> {
  const client = await pool.connect()
  try {
    await runMigrations({ query: (s, p) => client.query(s, p), exec: (s) => client.query(s) }, name, 'sql')
  } finally { client.release() }
}

async function main (): Promise<void> {
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
  say(`sluice ingest benchmark: ${total} events, ${PARTITIONS} partitions, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
  const baseSchema = `bench_psql_${tag}`
  await freshSchema(pool, baseSchema)
  const psqlSeconds = await psqlBaseline(pool, baseSchema)
  const psqlRate = total / psqlSeconds
  say(`baseline psql \\copy: ${psqlSeconds.toFixed(1)} s, ${psqlRate.toFixed(0)} rows/s`)
  await pool.query(`DROP SCHEMA "${baseSchema}" CASCADE`)

  const results: string[] = []
  for (const source of sources) {
    const topic = `bench-${source}-${tag}`
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS }])
    const p = await produce(topic, total)
    say(`[${source}] produced ${total} events (${(p.bytes / 2 ** 20).toFixed(0)} MiB) in ${p.seconds.toFixed(1)} s`)
    const schema = `bench_${source}_${tag}`
    await freshSchema(pool, schema)
    const run = await runWorker(source, topic, schema, pool, total)
    const rate = total / run.seconds
    const steady = total / (run.seconds - run.firstDurableSeconds)
    say(`[${source}] ingest: ${run.seconds.toFixed(1)} s from process start (first rows durable after ${run.firstDurableSeconds.toFixed(1)} s; ${steady.toFixed(0)} events/s after that), ${rate.toFixed(0)} events/s, ${(p.bytes / 2 ** 20 / run.seconds).toFixed(1)} MiB/s, peak RSS ${run.peakRssMb.toFixed(0)} MiB, CPU ${run.cpuSeconds.toFixed(1)} s`)

    // latency: half the measured maximum, for a bounded time
    const latTopic = `${topic}-lat`
    const latSchema = `${schema}_lat`
    const latCount = Math.min(total, Math.floor(rate / 2) * 20)
    await ensureTopics(brokers, [{ name: latTopic, partitions: PARTITIONS }])
    await freshSchema(pool, latSchema)
    const lat = await runWorker(source, latTopic, latSchema, pool, latCount, async () => (await produce(latTopic, latCount, rate / 2)).sent)
    say(`[${source}] latency at ${(rate / 2).toFixed(0)} events/s: p50 ${lat.latency?.p50.toFixed(0)} ms, p99 ${lat.latency?.p99.toFixed(0)} ms (20 ms polling)`)
    results.push(`${source}: ${rate.toFixed(0)} events/s vs psql \\copy ${psqlRate.toFixed(0)} rows/s = ratio ${(rate / psqlRate).toFixed(2)}`)
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`)
    await pool.query(`DROP SCHEMA "${latSchema}" CASCADE`)
    await deleteTopics(brokers, [topic, latTopic])
  }
  await pool.end()
  say()
  for (const r of results) say(r)
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  process.exit(1)
})

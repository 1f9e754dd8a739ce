// HTTP benchmark (the k6 scenarios of bench/k6): a worker on a fresh topic and schema; POST
// /events with NDJSON batches at rising fixed arrival rates (open loop, bench/http/paced.ts)
// until a step misses the ingest thresholds (p95 < 200 ms, < 0.1% errors), then as fast as
// autocannon's connections go; then the reads of bench/k6/read.js (status, entity history,
// state at a time; p95 < 100 ms) at a fixed rate; then the end check that every
// accepted event is stored exactly once. Prints requests/s, p50/p95/p99, errors, the highest
// rate under the thresholds and the core count; exits 1 when the first ingest step, the reads
// or the stored-count check fail. Run: scripts/bench.sh http [seconds per step] (default 10).
import { once } from 'node:events'
import { createWriteStream, mkdirSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import pg from 'pg'
import { spawnWorker } from './worker.ts'
import { deleteTopics, ensureTopics } from '../src/kafka/admin.ts'
import { paced } from './http/paced.ts'
import type { PacedRequest } from './http/paced.ts'

const env = process.env
const brokers = need('SLUICE_KAFKA_BROKERS')
const pgUrl = need('SLUICE_PG_URL')
const STEP_SECONDS = Number(process.argv[2] ?? env.SLUICE_BENCH_HTTP_SECONDS ?? 10)
const BATCH = Number(env.SLUICE_BENCH_HTTP_BATCH ?? 20)
const RATES = (env.SLUICE_BENCH_HTTP_RATES ?? '5,10,25,50,100,200,400').split(',').map(Number)
// the unthrottled step: autocannon's connections, each sending its next request on an answer
const CONNECTIONS = Number(env.SLUICE_BENCH_HTTP_CONNECTIONS ?? 10)
const ENTITIES = 200
const tag = `${process.pid}_${Date.now().toString(36)}`

function need (name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run scripts/bench.sh http`)
  return v
}
const say = (s = ''): void => { process.stdout.write(s + '\n') }

interface Step { name: string, rate: number, seconds: number, requests: number, ok: number, errors: number, statuses: Map<number, number>, p50: number, p95: number, p99: number, rps: number, reached: boolean, pass: boolean }

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

let seq = 0
/** One NDJSON batch of new events, each entity's versions rising (the k6 script's body). */
function ingestBody (): string {
  const lines: string[] = []
  for (let i = 0; i < BATCH; i++) {
    const n = seq++
    const entityId = `${tag}-${n % ENTITIES}`
    lines.push(JSON.stringify({
      eventId: `${tag}-${n}`,
      eventType: n < ENTITIES ? 'TASK_CREATED' : 'TASK_UPDATED',
      timestamp: new Date(Date.parse('2025-02-25T10:00:00Z') + n * 1000).toISOString(),
      aggregateType: 'HttpBench',
      aggregateId: entityId,
      payload: { entity: 'HttpBench', entityId, user: 'bench', workspace: 'bench', changes: { step: n, note: 'x'.repeat(200) } },
      metadata: { source: 'bench/http.ts' }
    }))
  }
  return lines.join('\n')
}

/** A step's figures from its answers; a fixed-rate step passes only if it reached its rate. */
function stepOf (name: string, rate: number, p95Bound: number, latencies: number[], statuses: Map<number, number>, unanswered: number): Step {
  latencies.sort((a, b) => a - b)
  let ok = 0
  let errors = unanswered
  for (const [status, n] of statuses) {
    if (status >= 200 && status < 300) ok += n
    else errors += n
  }
  const requests = latencies.length + unanswered
  const step: Step = {
    name,
    rate,
    seconds: STEP_SECONDS,
    requests,
    ok,
    errors,
    statuses,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    rps: requests / STEP_SECONDS,
    reached: rate === 0 || requests / STEP_SECONDS >= rate * 0.95,
    pass: false
  }
  step.pass = step.p95 < p95Bound && errors <= requests * 0.001 && requests > 0 && step.reached
  return step
}

/** `rate` requests a second, open loop (bench/http/paced.ts). */
async function atRate (name: string, base: string, rate: number, p95Bound: number, next: () => PacedRequest): Promise<Step> {
  const r = await paced(base, rate, STEP_SECONDS, next)
  return stepOf(name, rate, p95Bound, r.latencies, r.statuses, r.failed)
}

/** As fast as CONNECTIONS connections go, each sending its next request on an answer (autocannon). */
async function unthrottled (name: string, base: string, p95Bound: number, requests: autocannon.Request[]): Promise<Step> {
  const latencies: number[] = []
  const statuses = new Map<number, number>()
  const instance = autocannon({ url: base, connections: CONNECTIONS, duration: STEP_SECONDS, requests, timeout: 10 })
  instance.on('response', (_client: unknown, status: number, _bytes: number, time: number) => {
    latencies.push(time)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  })
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    instance.on('done', resolve)
    instance.on('error', reject)
  })
  return stepOf(name, 0, p95Bound, latencies, statuses, result.errors + result.timeouts)
}

function row (s: Step): string {
  const f = (n: number): string => Number.isFinite(n) ? n.toFixed(0) : '-'
  return `| ${s.name} | ${s.rate > 0 ? s.rate : 'max'} | ${s.rps.toFixed(1)} | ${s.name === 'read' ? '-' : (s.ok * BATCH / s.seconds).toFixed(0)} | ${f(s.p50)} / ${f(s.p95)} / ${f(s.p99)} | ${s.errors} of ${s.requests}${errorKinds(s)} | ${s.pass ? 'pass' : s.reached ? 'FAIL' : 'FAIL (rate not reached)'} |`
}

/** What the errors were: the statuses other than 2xx, and client-side errors and timeouts. */
function errorKinds (s: Step): string {
  const kinds = [...s.statuses].filter(([status]) => status < 200 || status >= 300).map(([status, n]) => `${n} x ${status}`)
  const answered = [...s.statuses.values()].reduce((a, b) => a + b, 0)
  const other = s.requests - answered
  if (other > 0) kinds.push(`${other} without an answer`)
  return kinds.length === 0 ? '' : ` (${kinds.join(', ')})`
}

async function main (): Promise<number> {
  const topic = `bench_http_${tag}`
  const schema = `bench_http_${tag}`.toLowerCase()
  await ensureTopics(brokers, [{ name: topic, partitions: 6 }])
  mkdirSync('.sluice', { recursive: true })
  const log = createWriteStream('.sluice/bench-http-worker.log')
  const port = Number(env.SLUICE_BENCH_HTTP_PORT ?? 0) || 20000 + Math.floor(Math.random() * 20000)
  const worker = spawnWorker({
    SLUICE_TOPICS: topic,
    SLUICE_PG_SCHEMA: schema,
    SLUICE_KAFKA_GROUP: `bench-${schema}`,
    SLUICE_HTTP_PORT: String(port),
    SLUICE_LOG_LEVEL: 'warn',
    SLUICE_API_AUTH: 'off',
    // every request comes from 127.0.0.1: the per-client limit (600 a minute) would answer 429 past 10 requests/s
    SLUICE_API_RATE_LIMIT: env.SLUICE_API_RATE_LIMIT ?? '1000000'
  })
  worker.stdout?.pipe(log)
  worker.stderr?.pipe(log)
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
  const base = `http://127.0.0.1:${port}`
  try {
    for (let i = 0; ; i++) {
      const r = await fetch(`${base}/health/ready`).catch(() => null)
      if (r?.status === 200) break
      if (worker.exitCode !== null || i > 600) throw new Error('the worker did not start (.sluice/bench-http-worker.log)')
      await sleep(100)
    }
    say(`# sluice HTTP benchmark: ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${STEP_SECONDS} s per step, fixed rates open loop, unthrottled over ${CONNECTIONS} connections, ${BATCH} events (~400 B) per POST, API rate limit ${env.SLUICE_API_RATE_LIMIT ?? '1000000'} a minute`)
    say()
    say('| scenario | target req/s | req/s | events/s | latency p50 / p95 / p99 ms | errors | thresholds |')
    say('|---|---|---|---|---|---|---|')
    const ingest = (): PacedRequest => ({ method: 'POST', path: '/events', headers: { 'content-type': 'application/x-ndjson' }, body: ingestBody() })
    // a started worker compiles its hot paths and joins its group first: not judged
    const warm = await atRate('warm-up', base, RATES[0] ?? 5, 200, ingest)
    say(row({ ...warm, pass: false }).replace('| FAIL |', '| (not judged) |'))
    const steps: Step[] = []
    for (const rate of RATES) {
      const s = await atRate('ingest', base, rate, 200, ingest)
      steps.push(s)
      say(row(s))
      if (!s.pass) break
    }
    const unbounded = await unthrottled('ingest', base, 200, [{ setupRequest: (req) => ({ ...req, ...ingest() }) }])
    say(row(unbounded))
    const best = steps.filter((s) => s.pass).at(-1)

    // reads of bench/k6/read.js on the entities just written
    await sleep(2000)
    // status, an entity's history, and its state at a time after its first event (k = its first event's number)
    let turn = 0
    const read = (): PacedRequest => {
      const k = Math.floor(Math.random() * ENTITIES)
      const at = new Date(Date.parse('2025-02-25T10:00:00Z') + (k + Math.floor(Math.random() * (seq - k))) * 1000).toISOString()
      const paths = ['/admin/status', `/entities/HttpBench/${tag}-${k}/history?limit=50`, `/entities/HttpBench/${tag}-${k}/state?at=${encodeURIComponent(at)}`]
      return { method: 'GET', path: paths[turn++ % paths.length] as string }
    }
    const reads = await atRate('read', base, RATES[1] ?? 50, 100, read)
    say(row(reads))

    // end check: every event of an accepted request stored exactly once
    const metrics = await (await fetch(`${base}/metrics`)).text()
    const accepted = Number(/^sluice_ingest_events_total\{result="accepted"\} (\d+)/m.exec(metrics)?.[1] ?? 0)
    let stored = { n: 0, d: 0 }
    for (let i = 0; i < 600; i++) {
      stored = (await pool.query<{ n: number, d: number }>(`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM "${schema}".entity_event_logs`)).rows[0] as { n: number, d: number }
      if (stored.d >= accepted) break
      await sleep(500)
    }
    const exact = stored.n === accepted && stored.d === accepted
    say()
    say(`stored: ${stored.n} rows, ${stored.d} distinct event ids, ${accepted} events accepted: ${exact ? 'every accepted event stored exactly once' : 'MISMATCH'}`)
    say(best === undefined
      ? 'highest ingest rate under the thresholds: none (the first step failed)'
      : `highest ingest rate under the thresholds (p95 < 200 ms, < 0.1% errors): the ${best.rate} requests/s step, ${best.rps.toFixed(1)} requests/s = ${(best.ok * BATCH / best.seconds).toFixed(0)} events/s reached (of the rates ${RATES.join(', ')})`)
    say(`unthrottled: ${unbounded.rps.toFixed(0)} requests/s = ${(unbounded.ok * BATCH / STEP_SECONDS).toFixed(0)} events/s accepted with ${CONNECTIONS} connections`)
    say(`cores: ${availableParallelism()} (worker, Kafka, PostgreSQL and autocannon share them)`)
    const failed = best === undefined || !reads.pass || !exact
    return failed ? 1 : 0
  } finally {
    worker.kill('SIGTERM')
    await once(worker, 'exit').catch(() => {})
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await pool.end()
    await deleteTopics(brokers, [topic, topic + '.dlq']).catch(() => {})
  }
}

main().then((code) => process.exit(code), (err) => { process.stderr.write(`bench/http.ts: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })

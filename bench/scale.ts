// Scale-out benchmark: worker processes (as pods would be) join and leave one consumer group on a
// 12-partition topic while a producer keeps a steady rate; per step the stored throughput, the
// partitions each worker owns and the longest stall of any partition (no stored offset advance
// while it had messages waiting) around the step's rebalance; at the end every produced event
// id is stored exactly once.
//   scripts/bench.sh scale [rate]            1 -> 2 -> 3 -> 2 -> 1 workers (default 2,000 events/s)
//   scripts/bench.sh scale restart [rate]    a worker killed (SIGKILL) and started again, with and
//                                            without static membership (SLUICE_KAFKA_INSTANCE_ID):
//                                            how long until every partition's stored offset
//                                            advances again, when the restarted worker is ready
// SLUICE_BENCH_SOURCE (rdkafka|platformatic, default rdkafka), SLUICE_BENCH_STEP_S (default 30),
// SLUICE_BENCH_SESSION_TIMEOUT_MS (default 10000).
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, openSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { spawnWorker } from './worker.ts'
import { deleteGroups, deleteTopics, ensureTopics } from '../src/kafka/admin.ts'
import { RdkafkaProducer } from '../src/kafka/producer.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'

const env = process.env
const brokers = need('SLUICE_KAFKA_BROKERS')
const pgUrl = need('SLUICE_PG_URL')
const mode = process.argv[2] === 'restart' ? 'restart' : 'scale'
const rate = Number((mode === 'restart' ? process.argv[3] : process.argv[2]) ?? 2000)
const source = env.SLUICE_BENCH_SOURCE ?? 'rdkafka'
const stepMs = Number(env.SLUICE_BENCH_STEP_S ?? 30) * 1000
const sessionTimeoutMs = Number(env.SLUICE_BENCH_SESSION_TIMEOUT_MS ?? 10_000)
const PARTITIONS = 12
const tag = `${process.pid}_${Date.now().toString(36)}`

function need (name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run scripts/bench.sh scale`)
  return v
}
const say = (s = ''): void => { process.stdout.write(s + '\n') }
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ')

async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close()
  await once(srv, 'close')
  return port
}

interface Worker { name: string, proc: ChildProcess, port: number, exited: Promise<unknown> }

async function startWorker (name: string, topic: string, group: string, schema: string, extra: Record<string, string> = {}): Promise<Worker> {
  const port = await freePort()
  mkdirSync('.sluice/bench-logs', { recursive: true })
  const out = openSync(`.sluice/bench-logs/scale-${tag}-${name}.log`, 'a')
  const proc = spawnWorker({
    SLUICE_TOPICS: topic,
    SLUICE_KAFKA_SOURCE: source,
    SLUICE_KAFKA_GROUP: group,
    SLUICE_CLIENT_ID: name,
    SLUICE_PG_SCHEMA: schema,
    SLUICE_PG_POOL_SIZE: '3',
    SLUICE_HTTP_PORT: String(port),
    SLUICE_KAFKA_SESSION_TIMEOUT_MS: String(sessionTimeoutMs),
    SLUICE_KAFKA_HEARTBEAT_MS: String(Math.floor(sessionTimeoutMs / 10)),
    SLUICE_S3_PREFIX: `bench/${schema}/`,
    ...extra
  }, ['ignore', out, out])
  return { name, proc, port, exited: once(proc, 'exit') }
}

async function ready (w: Worker, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (w.proc.exitCode !== null) throw new Error(`worker ${w.name} exited with ${w.proc.exitCode}`)
    const res = await fetch(`http://127.0.0.1:${w.port}/health/ready`).catch(() => null)
    if (res?.status === 200) return
    if (Date.now() > deadline) throw new Error(`worker ${w.name} not ready after ${timeoutMs} ms`)
    await sleep(200)
  }
}

async function owned (w: Worker): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${w.port}/admin/status`).catch(() => null)
  if (res === null || res.status !== 200) return -1
  return ((await res.json()) as { partitions: unknown[] }).partitions.length
}

/** A steady producer: `rate` events/s in 100 ms slices, until stopped; counts what it sent. */
function produceSteadily (topic: string): { stop: () => Promise<{ sent: number, ids: Set<string> }> } {
  const state = { stopping: false }
  let sent = 0
  const ids = new Set<string>()
  const done = (async () => {
    const producer = new RdkafkaProducer({ brokers, clientId: `bench-scale-${tag}` })
    await producer.connect()
    const it = sampleEvents({ count: Number.MAX_SAFE_INTEGER, seed: 11, startMs: Date.parse('2025-03-01T00:00:00Z'), duplicateRatio: 0, poisonEvery: 0 })[Symbol.iterator]()
    const started = performance.now()
    while (!state.stopping) {
      const due = Math.floor(((performance.now() - started) / 1000) * rate)
      const batch = []
      while (sent + batch.length < due) {
        const r = it.next().value as { key: Buffer, value: Buffer, eventId: string | null }
        batch.push({ topic, key: r.key, value: r.value })
        if (r.eventId !== null) ids.add(r.eventId)
      }
      if (batch.length > 0) { await producer.produceBatch(batch); sent += batch.length }
      await sleep(100)
    }
    await producer.close()
  })()
  return { stop: async () => { state.stopping = true; await done; return { sent, ids } } }
}

/** Polls the stored next offsets per partition; tracks each partition's longest stall. */
class StallWatch {
  readonly #pool: pg.Pool
  readonly #group: string
  readonly #topic: string
  #last = new Map<number, { offset: number, at: number }>()
  #longest = 0
  #stored = 0
  #timer: NodeJS.Timeout | null = null
  /** after markFrom(): when each partition's stored offset first advanced past the mark */
  #from = 0
  #resumed = new Map<number, number>()

  constructor (pool: pg.Pool, group: string, topic: string) {
    this.#pool = pool; this.#group = group; this.#topic = topic
  }

  start (): void {
    const tick = async (): Promise<void> => {
      const r = await this.#pool.query<{ partition: number, next_offset: string }>('SELECT partition, next_offset FROM sluice_offsets WHERE consumer_group = $1 AND topic = $2', [this.#group, this.#topic]).catch(() => null)
      const now = performance.now()
      if (r !== null) {
        let sum = 0
        for (const row of r.rows) {
          const off = Number(row.next_offset)
          sum += off
          const prev = this.#last.get(row.partition)
          if (prev === undefined || off > prev.offset) {
            this.#last.set(row.partition, { offset: off, at: now })
            if (this.#from > 0 && now > this.#from && !this.#resumed.has(row.partition)) this.#resumed.set(row.partition, now)
          }
        }
        this.#stored = sum
        // under a steady rate every partition has messages waiting at all times: the time since
        // its stored offset last advanced is how long it has stalled
        for (let p = 0; p < PARTITIONS; p++) {
          const at = this.#last.get(p)?.at
          if (at !== undefined) this.#longest = Math.max(this.#longest, now - at)
        }
      }
      this.#timer = setTimeout(() => { tick().catch(() => {}) }, 200)
    }
    tick().catch(() => {})
  }

  /** marks now (e.g. a kill): resumedAfter() then tells when every partition advanced past it */
  markFrom (): void { this.#from = performance.now(); this.#resumed.clear() }

  /** ms from the mark until the last partition's stored offset advanced again; waits for it */
  async resumedAfter (): Promise<number> {
    while (this.#resumed.size < PARTITIONS) await sleep(200)
    return Math.max(...this.#resumed.values()) - this.#from
  }

  /** the longest stall since the last reset, in ms; resets */
  takeLongest (): number { const v = this.#longest; this.#longest = 0; return v }
  get stored (): number { return this.#stored }
  stop (): void { if (this.#timer !== null) clearTimeout(this.#timer) }
}

async function main (): Promise<void> {
  const topic = `bench_scale_${tag}`
  const group = `bench_scale_g_${tag}`
  const schema = `bench_scale_${tag}`.toLowerCase()
  await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS }])
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
  const workers: Worker[] = []
  say(`# sluice scale-out (${mode}): ${PARTITIONS} partitions, ${rate} events/s produced, source ${source}, session timeout ${sessionTimeoutMs} ms, ${cpus().length} cores`)
  let producer: ReturnType<typeof produceSteadily> | null = null
  let watch: StallWatch | null = null
  try {
    // the schema is migrated by the first worker before production starts
    const first = await startWorker('w1', topic, group, schema, mode === 'restart' ? { SLUICE_KAFKA_INSTANCE_ID: 'w1' } : {})
    workers.push(first)
    await ready(first)
    producer = produceSteadily(topic)
    watch = new StallWatch(new pg.Pool({ connectionString: pgUrl, max: 1, options: `-c search_path=${schema}` }), group, topic)
    watch.start()
    if (mode === 'scale') await scale(topic, group, schema, workers, watch)
    else await restart(topic, group, schema, workers, watch)
  } finally {
    const done = producer !== null ? await producer.stop() : { sent: 0, ids: new Set<string>() }
    // drain: wait until the stored offsets stop moving and reach what was sent
    const deadline = Date.now() + 180_000
    const w = watch as StallWatch | null
    const drained = (): boolean => w === null || w.stored >= done.sent || Date.now() > deadline
    while (!drained()) await sleep(500)
    w?.stop()
    for (const w of workers) if (w.proc.exitCode === null) w.proc.kill('SIGTERM')
    await Promise.all(workers.map(async (w) => w.exited))
    if (done.sent > 0) {
      const c = await pool.query(`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM "${schema}".entity_event_logs`)
      const lost = done.ids.size - Number(c.rows[0].d)
      const doubled = Number(c.rows[0].n) - Number(c.rows[0].d)
      say(`end: produced ${done.sent} messages (${done.ids.size} event ids); stored ${c.rows[0].n} rows, ${c.rows[0].d} distinct; lost ${lost}, doubled ${doubled}${lost === 0 && doubled === 0 ? ' (exactly once)' : ''}`)
      if (lost !== 0 || doubled !== 0) process.exitCode = 1
    }
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await pool.end()
    await deleteGroups(brokers, [group]).catch(() => {})
    await deleteTopics(brokers, [topic, topic + '.dlq']).catch(() => {})
  }
}

async function scale (topic: string, group: string, schema: string, workers: Worker[], watch: StallWatch): Promise<void> {
  const plan = [1, 2, 3, 2, 1]
  say('| step | workers | stored events/s | partitions per worker | longest partition stall | load average 1/5/15 min |')
  say('|---|---|---|---|---|---|')
  let n = 1
  for (const [i, want] of plan.entries()) {
    watch.takeLongest()
    while (workers.length < want) {
      const w = await startWorker(`w${++n}`, topic, group, schema)
      workers.push(w)
      // the step is measured once the new worker is in the group (its start-up is no stall)
      await ready(w)
    }
    while (workers.length > want) {
      const w = workers.pop() as Worker
      w.proc.kill('SIGTERM')
      await w.exited
    }
    const from = watch.stored
    const t0 = performance.now()
    await sleep(stepMs)
    const perSec = Math.round((watch.stored - from) / ((performance.now() - t0) / 1000))
    const parts = await Promise.all(workers.map(owned))
    say(`| ${i + 1} | ${i === 0 ? want : `${plan[i - 1] ?? 0} -> ${want}`} | ${perSec} | ${parts.join(' / ')} | ${(watch.takeLongest() / 1000).toFixed(1)} s | ${load()} |`)
  }
}

async function restart (topic: string, group: string, schema: string, workers: Worker[], watch: StallWatch): Promise<void> {
  say('| worker killed (SIGKILL) and started again at once | every partition consumed again after | restarted worker ready after | longest partition stall | load average 1/5/15 min |')
  say('|---|---|---|---|---|')
  for (const staticMembership of [true, false]) {
    // two workers share the partitions; the second one is killed and started again at once
    const id = staticMembership ? 'w2-static' : 'w2-dynamic'
    const extra: Record<string, string> = staticMembership ? { SLUICE_KAFKA_INSTANCE_ID: id } : {}
    let w = await startWorker(id, topic, group, schema, extra)
    workers.push(w)
    await ready(w)
    await sleep(stepMs / 2)
    watch.takeLongest()
    w.proc.kill('SIGKILL')
    await w.exited
    watch.markFrom()
    workers.pop()
    const t0 = performance.now()
    w = await startWorker(id, topic, group, schema, extra)
    workers.push(w)
    await ready(w)
    const readyS = (performance.now() - t0) / 1000
    const resumedS = (await watch.resumedAfter()) / 1000
    await sleep(stepMs)
    say(`| ${staticMembership ? `static membership (group.instance.id ${id})` : 'dynamic membership'} | ${resumedS.toFixed(1)} s | ${readyS.toFixed(1)} s | ${(watch.takeLongest() / 1000).toFixed(1)} s | ${load()} |`)
    w.proc.kill('SIGTERM')
    await w.exited
    workers.pop()
    await sleep(sessionTimeoutMs + 2000)
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })

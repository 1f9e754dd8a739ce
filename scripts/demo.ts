// The demo behind scripts/demo.sh: topic, worker, sample workload, report. The worker runs in
// the background (scripts/stack.sh up worker) and stays up for exploring; Ctrl-C during the
// demo or `scripts/stack.sh down` stops it.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { ensureTopics } from '../src/kafka/admin.ts'
import { RdkafkaProducer } from '../src/kafka/producer.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'

const env = process.env
const brokers = need('SLUICE_KAFKA_BROKERS')
const pgUrl = need('SLUICE_PG_URL')
const topic = env.SLUICE_DEMO_TOPIC ?? 'entity-events'
const count = Number(env.SLUICE_DEMO_EVENTS ?? 20000)
const port = Number(env.SLUICE_HTTP_PORT ?? 8080)
const source = env.SLUICE_KAFKA_SOURCE ?? 'rdkafka'
const stackDir = need('SLUICE_STACK_DIR')
const logFile = `${stackDir}/worker/worker.log`
/** a wait fails when what it waits on has not moved for this long (a busy machine is slow, not stuck) */
const stallMs = Number(env.SLUICE_DEMO_STALL_MS ?? 180_000)

function need (name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run scripts/demo.sh (it sets up the stack and its settings)`)
  return v
}

function say (line = ''): void { process.stdout.write(line + '\n') }

async function main (): Promise<void> {
  await ensureTopics(brokers, [{ name: topic, partitions: 6 }])
  say(`topic ${topic}: 6 partitions on ${brokers}`)

  // a worker of an earlier run may consume other topics or another source: start afresh
  stopWorker()
  const interrupted = (): void => {
    process.stderr.write('\ninterrupted: stopping the worker\n')
    stopWorker()
    process.exit(130)
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  await startWorker({ SLUICE_TOPICS: topic, SLUICE_HTTP_PORT: String(port), SLUICE_KAFKA_SOURCE: source })
  const pid = readFileSync(`${stackDir}/worker/worker.pid`, 'utf8').trim()
  say(`worker pid ${pid} (source ${source}), log ${logFile}, API http://127.0.0.1:${port}`)
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => null))?.ok === true, stallMs, 'the worker to become ready')

  await workload()
  process.off('SIGINT', interrupted)
  process.off('SIGTERM', interrupted)
  say(`\nthe worker keeps running (pid ${pid}, log ${logFile}); \`scripts/stack.sh down\` stops it and the stack`)
}

/** `scripts/stack.sh up worker` (asynchronous: a Ctrl-C meanwhile reaches the handler at once) */
async function startWorker (settings: Record<string, string>): Promise<void> {
  const child = spawn('scripts/stack.sh', ['up', 'worker'], { env: { ...env, ...settings }, stdio: ['ignore', 'inherit', 'inherit'] })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`scripts/stack.sh up worker failed (exit ${code}); see ${logFile}`)
}

function stopWorker (): void {
  execFileSync('scripts/stack.sh', ['down', 'worker'], { stdio: ['ignore', 'inherit', 'inherit'] })
}

async function workload (): Promise<void> {
  // this run's messages are those past the high watermarks seen before producing
  const before = await highWatermarks(port)
  const producer = new RdkafkaProducer({ brokers, clientId: 'sluice-demo' })
  await producer.connect()
  let produced = 0
  let poison = 0
  let duplicates = 0
  const started = performance.now()
  let batch = []
  for (const r of sampleEvents({ count, seed: Date.now() & 0xffff, duplicateRatio: 0.01, poisonEvery: 1000, startMs: Date.now() - count * 10 })) {
    batch.push({ topic, key: r.key, value: r.value })
    produced++
    if (r.poison !== null) poison++
    if (r.duplicate) duplicates++
    if (batch.length === 5000) { await producer.produceBatch(batch); batch = [] }
  }
  if (batch.length > 0) await producer.produceBatch(batch)
  await producer.close()
  say(`produced ${produced} messages (${duplicates} producer duplicates, ${poison} poison) in ${((performance.now() - started) / 1000).toFixed(1)} s`)

  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
  const high = sum(await highWatermarks(port))
  await waitForCount(async () => {
    const r = await pool.query('SELECT coalesce(sum(next_offset), 0)::bigint AS n FROM sluice_offsets WHERE topic = $1', [topic])
    return Number(r.rows[0].n)
  }, high, 'every message to be stored or dead-lettered')
  const seconds = (performance.now() - started) / 1000

  const byType = await pool.query(
    `SELECT event_type, count(*)::int AS n FROM entity_event_logs e JOIN unnest($2::int[], $3::bigint[]) AS b(p, o)
     ON e.source_partition = b.p AND e.source_offset >= b.o WHERE source_topic = $1 GROUP BY 1 ORDER BY 2 DESC, 1`, [topic, [...before.keys()], [...before.values()]])
  const dlq = await pool.query(
    // one line per distinct reason (positions and sizes folded so that alike reasons group)
    `SELECT error_code, stage, regexp_replace(left(error_message, 100), '[0-9]+', 'N', 'g') AS reason, count(*)::int AS n
     FROM sluice_dlq d JOIN unnest($2::int[], $3::bigint[]) AS b(p, o) ON d.source_partition = b.p AND d.source_offset >= b.o
     WHERE source_topic = $1 GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1`, [topic, [...before.keys()], [...before.values()]])
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const state = await pool.query('SELECT count(*)::int AS n, count(*) FILTER (WHERE deleted)::int AS deleted FROM entity_state')
  const snaps = await pool.query(`SELECT kind, count(*)::int AS n, max(snapshot_id) AS example FROM snapshots
    WHERE source_topic = $1 GROUP BY 1 ORDER BY 1`, [topic]).catch(() => ({ rows: [] as any[] }))
  const sample = await pool.query('SELECT entity, entity_id FROM entity_state WHERE entity = \'Task\' ORDER BY updated_at DESC LIMIT 1')
  await pool.end()

  let stored = 0
  say('\nrows stored by event type (this run)')
  for (const r of byType.rows) { say(`  ${String(r.event_type).padEnd(26)} ${String(r.n).padStart(8)}`); stored += r.n }
  say(`  ${'total'.padEnd(26)} ${String(stored).padStart(8)}`)
  say('\ndead-lettered (this run)')
  if (dlq.rows.length === 0) say('  none')
  for (const r of dlq.rows) say(`  ${String(r.n).padStart(4)}  ${String(r.error_code).padEnd(24)} [${r.stage}] ${r.reason}`)
  say(`\nduplicates dropped: ${metricSum(metrics, 'sluice_duplicates_dropped_total')}`)
  say(`entity state: ${state.rows[0].n} entities (${state.rows[0].deleted} deleted)`)
  for (const r of snaps.rows) say(`snapshots indexed from this topic (${r.kind}): ${r.n}, e.g. ${r.example}`)
  say(`throughput: ${(produced / seconds).toFixed(0)} messages/s end to end (${produced} in ${seconds.toFixed(1)} s, produce included)`)
  say('\nwhere to look next')
  say(`  psql "${pgUrl}" -c "SELECT * FROM event_counts_hourly ORDER BY hour DESC LIMIT 20"`)
  say(`  curl -s http://127.0.0.1:${port}/metrics | grep ^sluice_`)
  say(`  curl -s http://127.0.0.1:${port}/admin/status`)
  say(`  curl -s http://127.0.0.1:${port}/snapshots`)
  const task = sample.rows[0] as { entity: string, entity_id: string } | undefined
  if (task !== undefined) say(`  curl -s http://127.0.0.1:${port}/entities/${task.entity}/${task.entity_id}/history`)
  say('  scripts/stack.sh status # the stack and the worker')
  say('  scripts/stack.sh down   # stop the worker and the stack')
}

/** partition -> high watermark, as the worker reports them */
async function highWatermarks (httpPort: number): Promise<Map<number, number>> {
  for (let i = 0; i < 100; i++) {
    const status = await (await fetch(`http://127.0.0.1:${httpPort}/admin/status`)).json() as { partitions: Array<{ topic: string, partition: number, highWatermark: number | null }> }
    const parts = status.partitions.filter((p) => p.topic === topic)
    if (parts.length === 6 && parts.every((p) => p.highWatermark !== null)) return new Map(parts.map((p) => [p.partition, p.highWatermark as number]))
    await sleep(200)
  }
  throw new Error('the worker did not report the topic\'s high watermarks')
}

function sum (m: Map<number, number>): number {
  let n = 0
  for (const v of m.values()) n += v
  return n
}

function metricSum (text: string, name: string): number {
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').pop())
  return sum
}

async function waitFor (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; see ${logFile}`)
    await sleep(100)
  }
}

/** waits until count() reaches target; fails only when the count stops moving for stallMs */
async function waitForCount (count: () => Promise<number>, target: number, what: string): Promise<void> {
  let last = -1
  let movedAt = Date.now()
  for (;;) {
    const n = await count().catch(() => last)
    if (n >= target) return
    if (n !== last) { last = n; movedAt = Date.now() }
    if (Date.now() - movedAt > stallMs) throw new Error(`no progress for ${stallMs / 1000} s waiting for ${what} (${last} of ${target}); see ${logFile}`)
    await sleep(200)
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err.message}\n`)
  process.exit(1)
})

// The ingest benchmark: N seed-mix events (~500 B) produced once to a fresh topic, then, in
// interleaved rounds, each variant (SLUICE_BENCH_VARIANTS: psql \copy of the same rows, alone
// and with their event-id rows; sluice with each source; Bento as the generic peer) loads them
// into a fresh schema of the same tables while the benchmark follows every partition's durable
// offset. Printed per round: rates, ratios to psql \copy and to Bento, worker, PostgreSQL and
// Kafka and S3 server CPU seconds, the machine's busy share, peak RSS, first and last partition done, the load average; then produce->durable latency of each consumer at
// half its best rate. Run: scripts/bench.sh [events] (default 300,000).
import { once } from 'node:events'
import { createWriteStream, mkdirSync, rmSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import pg from 'pg'
import { deleteGroups, deleteTopics, ensureTopics } from '../src/kafka/admin.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'
import { cleanPrefixNow, s3Client, s3Config } from '../test/helpers/state-snapshot.ts'
import { EVENT_COLUMNS } from '../src/sinks/timescale/copy-encoder.ts'
import { batchRow, ID_COLUMNS } from '../src/sinks/timescale/event-ids.ts'
import { copyLineOf, originOf } from './copy-lines.ts'
import { parentPid, stackPid } from './ingest/proc.ts'
import { START_MS, produce, produceOnePerPartition } from './ingest/produce.ts'
import { endOffsets, latencies } from './ingest/progress.ts'
import { dropSchema, runConsumer, runPsql } from './ingest/runs.ts'
import type { BenchContext, CopyFile, RunResult } from './ingest/runs.ts'
import { DEFAULT_VARIANTS, isCopyBaseline, parseVariants } from './ingest/variants.ts'
import type { Variant } from './ingest/variants.ts'

const env = process.env
function need (name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run scripts/bench.sh`)
  return v
}
const say = (s = ''): void => { process.stdout.write(s + '\n') }

const total = Number(process.argv[2] ?? env.SLUICE_BENCH_EVENTS ?? 300_000)
const rounds = Number(env.SLUICE_BENCH_ROUNDS ?? 2)
const partitions = Number(env.SLUICE_BENCH_PARTITIONS ?? 6)
const latencySeconds = Number(env.SLUICE_BENCH_LATENCY_SECONDS ?? 20)
/** the latency runs' rate for every consumer (A/B comparisons at one rate); default: half each one's best */
const latencyRate = Number(env.SLUICE_BENCH_LATENCY_RATE ?? 0)
const variants = parseVariants(env.SLUICE_BENCH_VARIANTS ?? DEFAULT_VARIANTS)
const tag = `${process.pid}_${Date.now()}`

const fmt = (n: number | null, digits = 0): string => n === null || !Number.isFinite(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ')

function table (rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((c, i) => i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ')).join('\n')
}

function roundTable (results: RunResult[]): string {
  const rate = (r: RunResult | undefined): number | null => r === undefined ? null : r.events / r.seconds
  const psql = rate(results.find((r) => variants.find((v) => v.label === r.label)?.kind === 'psql'))
  const bento = rate(results.find((r) => variants.find((v) => v.label === r.label)?.kind === 'bento'))
  const rows = [['variant', 'events/s', 'x psql', 'x bento', 'start s', 'events/s after start', 'worker CPU s', 'PG CPU s', 'Kafka CPU s', 'S3 CPU s', 'machine busy', 'peak RSS MiB', 'first/last partition done s', 'partition rates min/max']]
  for (const r of results) {
    const own = rate(r) as number
    rows.push([
      r.label,
      fmt(own),
      psql === null ? '-' : fmt(own / psql, 2),
      bento === null ? '-' : fmt(own / bento, 2),
      fmt(r.startup, 1),
      r.startup === null ? '-' : fmt(r.events / (r.seconds - r.startup)),
      fmt(r.workerCpu, 1),
      fmt(r.pgCpu, 1),
      fmt(r.kafkaCpu, 1),
      fmt(r.s3Cpu, 1),
      `${Math.round(r.machineBusy * 100)}%`,
      fmt(r.peakRssMiB),
      r.firstPartition === null ? '-' : `${fmt(r.firstPartition, 1)} / ${fmt(r.lastPartition, 1)}`,
      fmt(r.partitionRates, 2)
    ])
  }
  return table(rows)
}

interface CopyFiles {
  /** the log's rows (EVENT_COLUMNS) */
  log: string
  /** their sluice_event_ids rows (ID_COLUMNS) */
  ids: string
}

async function copyFiles (): Promise<CopyFiles> {
  // the rows sluice's sink would write for the same events, as psql \copy reads them
  const files = { log: `.sluice/bench-${tag}.copy`, ids: `.sluice/bench-${tag}.ids.copy` }
  const log = createWriteStream(files.log)
  const ids = createWriteStream(files.ids)
  let i = 0
  for (const r of sampleEvents({ count: total, seed: 7, startMs: START_MS })) {
    const origin = originOf(r.value, 'baseline', i % partitions, i)
    const line = copyLineOf(origin)
    const okLog = log.write(line)
    const okIds = ids.write(batchRow(line, '', origin).idLine)
    if (!okLog) await once(log, 'drain')
    if (!okIds) await once(ids, 'drain')
    i++
  }
  log.end()
  ids.end()
  await Promise.all([once(log, 'finish'), once(ids, 'finish')])
  return files
}

function baselineCopies (kind: Variant['kind'], files: CopyFiles): CopyFile[] {
  const log = { target: `entity_event_logs (${EVENT_COLUMNS.join(', ')})`, file: files.log }
  return kind === 'psql-ids' ? [{ target: `sluice_event_ids (${ID_COLUMNS})`, file: files.ids }, log] : [log]
}

async function latencyRun (ctx: BenchContext, v: Variant, rate: number): Promise<{ p50: number, p99: number, rate: number }> {
  const topic = `bench-lat-${v.label}-${tag}`
  const count = Math.max(1000, Math.floor(rate * latencySeconds))
  await ensureTopics(ctx.brokers, [{ name: topic, partitions }])
  await produceOnePerPartition(ctx.brokers, topic, partitions, 11)
  const ends = await endOffsets(ctx.brokers, topic, partitions)
  const schema = `bench_lat_${v.label.replace(/\W/g, '_')}_${tag}`.toLowerCase()
  let sent: Array<[number, number]> = []
  try {
    const r = await runConsumer(ctx, v, {
      topic,
      ends,
      schema,
      group: `bench-${schema}`,
      during: { more: count, produce: async () => { sent = (await produce(ctx.brokers, topic, count, { ratePerSec: rate, seed: 13 })).sent } }
    })
    const warm = [...ends.values()].reduce((a, b) => a + b, 0)
    return { ...latencies(sent.map(([n, t]) => [n + warm, t]), r.progress?.samples ?? []), rate }
  } finally {
    await dropSchema(ctx, schema)
    await deleteTopics(ctx.brokers, [topic, `${topic}.dlq`, `${topic}.snapshots`]).catch(() => {})
    await deleteGroups(ctx.brokers, [`bench-${schema}`]).catch(() => {})
  }
}

async function main (): Promise<void> {
  const brokers = need('SLUICE_KAFKA_BROKERS')
  const pgUrl = need('SLUICE_PG_URL')
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
  const backend = Number((await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
  mkdirSync('.sluice', { recursive: true })
  const ctx: BenchContext = {
    brokers,
    pgUrl,
    pool,
    postmaster: parentPid(backend),
    kafka: stackPid('kafka/kafka.pid'),
    s3: stackPid('s3/versitygw.pid'),
    partitions,
    bento: variants.some((v) => v.kind === 'bento') ? need('SLUICE_BENTO') : null,
    tag,
    logDir: '.sluice'
  }
  say(`sluice ingest benchmark: ${fmt(total)} seed-mix events, ${partitions} partitions, ${rounds} rounds; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`)
  say(`variants: ${variants.map((v) => `${v.label}${Object.keys(v.env).length > 0 ? ` (${Object.entries(v.env).map(([k, x]) => `${k}=${x}`).join(' ')})` : ''}`).join(', ')}`)
  say(`load average at start: ${load()}`)
  say('events/s: from process start to every partition durable (x psql, x bento: its ratios in the same round); start s: to the first durable offset;')
  say('worker CPU s: the process (psql for \\copy); PG CPU s: every PostgreSQL process; Kafka CPU s: the broker; S3 CPU s: the stack\'s S3 server; machine busy: the cores\' busy time over the run (100%: all busy throughout);')
  say('first/last partition done: seconds from process start;')
  say('partition rates min/max: the slowest partition\'s events/s over the fastest\'s, each from the first durable offset to its own end (1.00: one rate for all, whatever their sizes)')

  const topic = `bench-${tag}`
  await ensureTopics(brokers, [{ name: topic, partitions }])
  const p = await produce(brokers, topic, total)
  const ends = await endOffsets(brokers, topic, partitions)
  say(`produced ${fmt(total)} events (${(p.bytes / 2 ** 20).toFixed(0)} MiB) in ${p.seconds.toFixed(1)} s; per partition ${[...ends.values()].map((n) => fmt(n)).join(', ')}`)
  const files = variants.some((v) => isCopyBaseline(v.kind)) ? await copyFiles() : null

  const best = new Map<string, number>()
  const groups: string[] = []
  try {
    for (let round = 1; round <= rounds; round++) {
      // each round starts one variant further on, so that no variant always runs first
      const order = variants.map((_, i) => variants[(i + round - 1) % variants.length] as Variant)
      const before = load()
      const results: RunResult[] = []
      for (const v of order) {
        const schema = `bench_${v.label.replace(/\W/g, '_')}_r${round}_${tag}`.toLowerCase()
        try {
          const r = files !== null && isCopyBaseline(v.kind)
            ? await runPsql(ctx, v.label, baselineCopies(v.kind, files), total, schema)
            : await runConsumer(ctx, v, { topic, ends, schema, group: `bench-${schema}` })
          results.push(r)
          if (!isCopyBaseline(v.kind)) groups.push(`bench-${schema}`)
          best.set(v.label, Math.max(best.get(v.label) ?? 0, r.events / r.seconds))
        } finally {
          await dropSchema(ctx, schema)
        }
      }
      results.sort((a, b) => variants.findIndex((v) => v.label === a.label) - variants.findIndex((v) => v.label === b.label))
      say()
      say(`round ${round} of ${rounds} (order ${order.map((v) => v.label).join(', ')}; load average ${before} before, ${load()} after; ${cpus().length} cores)`)
      say(roundTable(results))
    }

    if (latencySeconds > 0) {
      say()
      say(`produce->durable latency at ${latencyRate > 0 ? `${fmt(latencyRate)} events/s (SLUICE_BENCH_LATENCY_RATE)` : 'half the best rate of each consumer'} (${latencySeconds} s of events, after one warm-up event per partition; 20 ms polling of sluice_offsets, 50 ms of Kafka commits for Bento)`)
      const rows = [['variant', 'events/s', 'p50 ms', 'p99 ms', 'load average after']]
      for (const v of variants) {
        if (isCopyBaseline(v.kind)) continue
        const l = await latencyRun(ctx, v, latencyRate > 0 ? latencyRate : Math.floor((best.get(v.label) ?? 0) / 2))
        rows.push([v.label, fmt(l.rate), fmt(l.p50), fmt(l.p99), load()])
      }
      say(table(rows))
    }
  } finally {
    if (files !== null) for (const f of [files.log, files.ids]) rmSync(f, { force: true })
    await deleteTopics(brokers, [topic, `${topic}.dlq`, `${topic}.snapshots`]).catch(() => {})
    await deleteGroups(brokers, groups).catch(() => {})
    // the workers' state dumps and snapshots (SLUICE_S3_PREFIX bench/<tag>/): 10-300 MB a run
    if (env.SLUICE_S3_BUCKET !== undefined && env.SLUICE_S3_BUCKET !== '') {
      const s3 = s3Client()
      await cleanPrefixNow(s3, s3Config().bucket, `bench/${tag}/`).catch((err: unknown) => { say(`could not delete the S3 objects under bench/${tag}/: ${String(err)}`) })
      s3.destroy()
    }
    await pool.end()
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  process.exit(1)
})

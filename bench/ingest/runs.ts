// One timed run of one variant of the ingest benchmark: psql \copy of a prepared file, or a
// consumer (sluice with either source, or Bento) started on the pre-produced topic and
// followed until every partition is durable.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { cpus } from 'node:os'
import pg from 'pg'
import { spawnWorker } from '../worker.ts'
import { runMigrations } from '../../src/sinks/timescale/migrate.ts'
import { ProcessSampler, childPids, machineBusySeconds, settledTreeCpuSeconds, treeCpuSeconds } from './proc.ts'
import { follow, groupOffsets, sluiceOffsets } from './progress.ts'
import type { Positions, Progress } from './progress.ts'
import type { Variant } from './variants.ts'

export interface BenchContext {
  brokers: string
  pgUrl: string
  pool: pg.Pool
  /** PostgreSQL's postmaster: its process tree's CPU is the database's */
  postmaster: number
  /** the Kafka broker's process (the stack's kafka.pid), or null when unknown */
  kafka: number | null
  /** the S3 server's process (the stack's versitygw.pid), or null when unknown (another S3) */
  s3: number | null
  partitions: number
  /** the Bento binary (scripts/bento.sh), or null when no variant needs it */
  bento: string | null
  tag: string
  logDir: string
}

export interface RunResult {
  label: string
  events: number
  /** from process start to the last partition durable */
  seconds: number
  /** from process start to the first durable offset (null for psql) */
  startup: number | null
  workerCpu: number
  pgCpu: number
  /** the broker's CPU seconds (serving the consumer's fetches and commits), null when unknown */
  kafkaCpu: number | null
  /** the S3 server's CPU seconds (the snapshot sink's uploads), null when unknown */
  s3Cpu: number | null
  /** the machine's busy core-seconds over the run's core-seconds (seconds x cores): 1.0 is every core busy throughout */
  machineBusy: number
  peakRssMiB: number
  /** seconds from process start to the first and the last partition done (null for psql) */
  firstPartition: number | null
  lastPartition: number | null
  /**
   * The slowest partition's rate over the fastest's (its events over the time from the first
   * durable offset to its own end; null for psql): 1.0 when partitions advance at one rate,
   * whatever their sizes, which set the finish times apart even then.
   */
  partitionRates: number | null
  progress: Progress | null
}

export async function freshSchema (ctx: BenchContext, schema: string): Promise<void> {
  const client = await ctx.pool.connect()
  try {
    await runMigrations({ query: async (s, p) => client.query(s, p), exec: async (s) => client.query(s) }, schema, 'sql')
  } finally { client.release() }
}

/**
 * `n` state snapshots indexed before the run (a variant's SLUICE_BENCH_INDEXED), older than
 * any the run makes: what the table holds after a worker ran a while (the seed mix indexes
 * one snapshot per ~420 events: 100,000 rows after ~42 million).
 */
async function preIndex (ctx: BenchContext, schema: string, n: number): Promise<void> {
  await ctx.pool.query(`INSERT INTO "${schema}".snapshots (snapshot_id, object_key, kind, created_at, created_by, trigger_event, version,
      counts, checksum, size_bytes, etag, covers, as_of, source_topic, source_partition, source_offset)
    SELECT 'state-pre-' || g, 'bench/pre/snapshots/state-pre-' || g || '.jsonl.gz', 'state', timestamptz '2025-02-24' + g * interval '36 ms',
      'user_' || g % 500, 'SNAPSHOT_TRIGGERED', 1, '{"entities": 4500}', 'sha256:' || encode(sha256(g::text::bytea), 'hex'), 300000,
      '"' || md5(g::text) || '"', jsonb_build_array(jsonb_build_object('topic', 'pre', 'partition', g % 6, 'offset', g)),
      timestamptz '2025-02-24' + g * interval '36 ms', 'pre', g % 6, g
    FROM generate_series(1, $1::int) g`, [n])
}

/**
 * `n` entities in entity_state before the run (a variant's SLUICE_BENCH_ENTITIES), none of
 * them the seed mix's: the projection of a service that has run a while, which every state
 * dump reads whole.
 */
async function preEntities (ctx: BenchContext, schema: string, n: number): Promise<void> {
  await ctx.pool.query(`INSERT INTO "${schema}".entity_state (entity, entity_id, version, state, deleted, updated_at, last_event_id, source_topic, source_partition, source_offset)
    SELECT 'Task', 'pre_' || g, 3, jsonb_build_object('user', 'user_' || g % 500, 'workspace', 'ws_' || g % 7, 'changes', 'TASK_UPDATED #3 on pre_' || g,
      'detail', repeat('x', 160)), false, timestamptz '2025-02-24' + g * interval '1 ms', md5(g::text), 'pre', g % 6, g
    FROM generate_series(1, $1::int) g`, [n])
}

/** `n` event ids stored before the run (a variant's SLUICE_BENCH_IDS), none of them the seed mix's. */
async function preIds (ctx: BenchContext, schema: string, n: number): Promise<void> {
  await ctx.pool.query(`INSERT INTO "${schema}".sluice_event_ids (event_id, "timestamp", source_topic, source_partition, source_offset)
    SELECT gen_random_uuid()::text, timestamptz '2025-02-24' + g * interval '1 ms', 'pre', g % 6, g
    FROM generate_series(1, $1::int) g`, [n])
  await ctx.pool.query(`VACUUM ANALYZE "${schema}".sluice_event_ids`)
}

/** A variant's settings that fill its fresh schema before the run, and what each fills. */
const PREFILLS: ReadonlyArray<[string, (ctx: BenchContext, schema: string, n: number) => Promise<void>]> = [
  ['SLUICE_BENCH_INDEXED', preIndex],
  ['SLUICE_BENCH_ENTITIES', preEntities],
  ['SLUICE_BENCH_IDS', preIds]
]

export async function dropSchema (ctx: BenchContext, schema: string): Promise<void> {
  await ctx.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
}

/** One `\copy` of a psql baseline: "table (columns)" and the prepared COPY file. */
export interface CopyFile {
  target: string
  file: string
}

/**
 * `psql \copy` of prepared COPY files, in order and in one transaction, into a fresh schema:
 * the physical limit of one COPY backend.
 */
export async function runPsql (ctx: BenchContext, label: string, copies: readonly CopyFile[], events: number, schema: string): Promise<RunResult> {
  await freshSchema(ctx, schema)
  const children = childPids(ctx.postmaster)
  const pg0 = treeCpuSeconds(ctx.postmaster)
  const kafka0 = serviceCpu(ctx.kafka)
  const s30 = serviceCpu(ctx.s3)
  const busy0 = machineBusySeconds()
  const started = performance.now()
  const psql = spawn('psql', [ctx.pgUrl, '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-c', `SET search_path TO "${schema}"`,
    ...copies.flatMap((c) => ['-c', `\\copy ${c.target} FROM '${c.file}'`])],
  { stdio: ['ignore', 'inherit', 'inherit'] })
  const sampler = new ProcessSampler(psql.pid as number, 20)
  const [code] = await once(psql, 'exit')
  const seconds = (performance.now() - started) / 1000
  const machineBusy = (machineBusySeconds() - busy0) / (seconds * cpus().length)
  sampler.stop()
  const pgCpu = await settledTreeCpuSeconds(ctx.postmaster, children) - pg0
  const kafkaUsed = serviceCpuSince(ctx.kafka, kafka0)
  const s3Used = serviceCpuSince(ctx.s3, s30)
  if (code !== 0) throw new Error(`psql \\copy failed with ${code}`)
  const n = Number((await ctx.pool.query(`SELECT count(*) AS n FROM "${schema}".entity_event_logs`)).rows[0].n)
  if (n !== events) throw new Error(`psql loaded ${n} rows, expected ${events}`)
  return { label, events, seconds, startup: null, workerCpu: sampler.cpu, pgCpu, kafkaCpu: kafkaUsed, s3Cpu: s3Used, machineBusy, peakRssMiB: sampler.rss, firstPartition: null, lastPartition: null, partitionRates: null, progress: null }
}

export interface ConsumerRun {
  topic: string
  ends: Positions
  schema: string
  group: string
  /**
   * The latency run: `ends` holds one warm-up message per partition; once the consumer stored
   * them (it is up and assigned) `during` produces `more` events at a steady rate, and the run
   * ends when all of them are durable.
   */
  during?: { produce: () => Promise<void>, more: number }
}

/** A consumer (sluice or Bento) over the topic into a fresh schema, followed until every partition is durable. */
export async function runConsumer (ctx: BenchContext, v: Variant, r: ConsumerRun): Promise<RunResult> {
  await freshSchema(ctx, r.schema)
  for (const [name, fill] of PREFILLS) {
    const n = Number(v.env[name] ?? 0)
    if (n > 0) await fill(ctx, r.schema, n)
  }
  const log = createWriteStream(`${ctx.logDir}/bench-${v.label}.log`, { flags: 'a' })
  const pg0 = treeCpuSeconds(ctx.postmaster)
  const kafka0 = serviceCpu(ctx.kafka)
  const s30 = serviceCpu(ctx.s3)
  const busy0 = machineBusySeconds()
  const started = performance.now()
  const child = v.kind === 'bento' ? startBento(ctx, v, r) : startSluice(ctx, v, r)
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  const exited = once(child, 'exit')
  const sampler = new ProcessSampler(child.pid as number)
  const kafka = v.kind === 'bento' ? groupOffsets(ctx.brokers, r.group, r.topic, ctx.partitions) : null
  const read = kafka?.read ?? sluiceOffsets(ctx.pool, r.schema, r.group, r.topic)
  const alive = (): void => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${v.label} exited (${child.exitCode ?? child.signalCode}); see ${ctx.logDir}/bench-${v.label}.log`)
  }
  let progress: Progress
  let pgCpu: number
  let kafkaUsed: number | null
  let s3Used: number | null
  let busy: number
  try {
    const every = kafka === null ? 20 : 50
    if (r.during === undefined) {
      progress = await follow(read, r.ends, alive, every)
    } else {
      // up and assigned first: the latency run measures the steady state, not the start-up
      await follow(read, r.ends, alive, every)
      const warm = [...r.ends.values()].reduce((a, b) => a + b, 0)
      const open = new Map([...r.ends.keys()].map((p) => [p, Number.MAX_SAFE_INTEGER]))
      const producing = r.during.produce()
      progress = await follow(read, open, alive, every, warm + r.during.more)
      await producing
    }
    sampler.stop()
    busy = (machineBusySeconds() - busy0) / ((performance.now() - started) / 1000 * cpus().length)
    pgCpu = treeCpuSeconds(ctx.postmaster) - pg0
    kafkaUsed = serviceCpuSince(ctx.kafka, kafka0)
    s3Used = serviceCpuSince(ctx.s3, s30)
  } finally {
    await kafka?.close()
    child.kill('SIGTERM')
    await exited
  }
  const at = (t: number): number => (t - started) / 1000
  const finishes = [...progress.finishedAt.values()]
  const events = [...r.ends.values()].reduce((a, b) => a + b, 0) + (r.during?.more ?? 0)
  return {
    label: v.label,
    events,
    seconds: at(progress.doneAt),
    startup: at(progress.firstAt),
    workerCpu: sampler.cpu,
    pgCpu,
    kafkaCpu: kafkaUsed,
    s3Cpu: s3Used,
    machineBusy: busy,
    peakRssMiB: sampler.rss,
    firstPartition: finishes.length === 0 ? null : at(Math.min(...finishes)),
    lastPartition: finishes.length === 0 ? null : at(Math.max(...finishes)),
    partitionRates: r.during === undefined ? rateSpread(r.ends, progress) : null,
    progress
  }
}

/** min/max of the partitions' rates, each its events over the time from the first durable offset to its end. */
function rateSpread (ends: Positions, progress: Progress): number | null {
  const rates: number[] = []
  for (const [p, end] of ends) {
    const done = progress.finishedAt.get(p)
    if (done === undefined || !(done > progress.firstAt)) return null
    rates.push(end / (done - progress.firstAt))
  }
  return rates.length === 0 ? null : Math.min(...rates) / Math.max(...rates)
}

/** A stack service's CPU seconds (its process tree), or null when unknown. */
function serviceCpu (pid: number | null): number | null {
  try {
    return pid === null ? null : treeCpuSeconds(pid)
  } catch { return null }
}

/** A stack service's CPU seconds since the reading `before`, or null when either is unknown. */
function serviceCpuSince (pid: number | null, before: number | null): number | null {
  const now = serviceCpu(pid)
  return before === null || now === null ? null : now - before
}

function startSluice (ctx: BenchContext, v: Variant, r: ConsumerRun): ChildProcess {
  return spawnWorker({
    SLUICE_TOPICS: r.topic,
    SLUICE_PG_SCHEMA: r.schema,
    SLUICE_KAFKA_GROUP: r.group,
    SLUICE_KAFKA_SOURCE: v.kind,
    SLUICE_HTTP_PORT: '0',
    SLUICE_LOG_LEVEL: 'warn',
    SLUICE_S3_PREFIX: `bench/${ctx.tag}/`,
    SLUICE_SNAPSHOTS_TOPIC: `${r.topic}.snapshots`,
    ...v.env
  })
}

function startBento (ctx: BenchContext, v: Variant, r: ConsumerRun): ChildProcess {
  if (ctx.bento === null) throw new Error('no Bento binary (scripts/bento.sh)')
  const dsn = new URL(ctx.pgUrl)
  dsn.searchParams.set('sslmode', 'disable')
  dsn.searchParams.set('search_path', r.schema)
  return spawn(ctx.bento, ['-c', 'bench/bento/ingest.yaml'], {
    env: {
      ...process.env,
      SLUICE_BENCH_BROKERS: ctx.brokers,
      SLUICE_BENCH_TOPIC: r.topic,
      SLUICE_BENCH_GROUP: r.group,
      SLUICE_BENCH_DSN: dsn.toString(),
      ...v.env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

// Runs the real worker (src/main.ts) as a child process against the real stack, for the
// end-to-end tests: unique topic, group and schema per fixture, all torn down at the end.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, openSync, readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import type { Test } from 'tap'
import { deleteGroups, deleteTopics, ensureTopics } from '../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../src/kafka/producer.ts'
import { quoteIdent } from '../../src/db/quote-ident.ts'
import { sampleEvents } from '../../src/workload/seed-mix.ts'
import type { PoisonKind, SampleOptions } from '../../src/workload/seed-mix.ts'
import { dropSchema } from './pg-schema.ts'

function need (name: string): string {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run \`eval "$(scripts/stack.sh env)"\` (and \`scripts/stack.sh up\`) first`)
  return v
}
export const brokers = need('SLUICE_KAFKA_BROKERS')
export const pgUrl = need('SLUICE_PG_URL')
export const sources = ['rdkafka', 'platformatic'] as const
export type SourceKind = typeof sources[number]

export function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 7)}`
}

/**
 * How long a wait on progress tolerates no progress at all before it fails: a busy machine is
 * slow, not stuck, so waits fail when the system stops moving, not when a wall-clock budget
 * sized for a quiet machine runs out. SLUICE_TEST_STALL_MS overrides it.
 */
export const stallMs = Number(process.env.SLUICE_TEST_STALL_MS ?? 120_000)

/**
 * Polls an async condition until it holds; fails with `what` after the timeout. For bounds
 * that are part of the behaviour under test ("within the outage"); a wait for work to get
 * done is `waitForCount` or `waitForProgress`.
 */
export async function waitFor (what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await Promise.resolve().then(cond).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/**
 * Polls `cond` until it holds; fails only when `progress` (a number that moves while the
 * system works: a count, a log's length) has not changed for `stall` ms.
 */
export async function waitForProgress (what: string, cond: () => Promise<boolean> | boolean, progress: () => Promise<number> | number, everyMs = 200, stall = stallMs): Promise<void> {
  let last: number | undefined
  let movedAt = Date.now()
  while (!(await Promise.resolve().then(cond).catch(() => false))) {
    const now = await Promise.resolve().then(progress).catch(() => last)
    if (now !== last) {
      last = now
      movedAt = Date.now()
    } else if (Date.now() - movedAt > stall) {
      throw new Error(`no progress for ${stall} ms waiting for ${what} (progress stuck at ${last})`)
    }
    await sleep(everyMs)
  }
}

/**
 * Polls `count` until it reaches `target` (or `target(n)` holds); fails only when the count
 * has not moved for `stall` ms. Resolves with the last count.
 */
export async function waitForCount (what: string, count: () => Promise<number> | number, target: number | ((n: number) => boolean), everyMs = 200, stall = stallMs): Promise<number> {
  const done = typeof target === 'number' ? (n: number) => n >= target : target
  let last: number | undefined
  let movedAt = Date.now()
  for (;;) {
    const n = await Promise.resolve().then(count).catch(() => last)
    if (n !== undefined && done(n)) return n
    if (n !== last) {
      last = n
      movedAt = Date.now()
    } else if (Date.now() - movedAt > stall) {
      throw new Error(`no progress for ${stall} ms waiting for ${what}: ${last ?? 'nothing'}${typeof target === 'number' ? ` of ${target}` : ''}`)
    }
    await sleep(everyMs)
  }
}

/** A port nobody listens on right now, on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close()
  await once(srv, 'close')
  return port
}

export interface Fixture {
  source: SourceKind
  topic: string
  dlqTopic: string
  group: string
  schema: string
  /** a pool on the fixture's schema */
  pool: pg.Pool
  /** PostgreSQL URL the workers use (the shared stack's unless the test brings its own) */
  pgUrl: string
}

/** A topic (6 partitions), a group and a schema of its own; dropped when the test ends. */
export async function fixture (t: Test, source: SourceKind, opts: { partitions?: number, pgUrl?: string } = {}): Promise<Fixture> {
  const label = source === 'rdkafka' ? 'rd' : 'pf'
  const topic = uniqueName(`e2e_${label}`)
  const group = uniqueName(`e2eg_${label}`)
  const schema = uniqueName(`e2e_${label}`).toLowerCase()
  const url = opts.pgUrl ?? pgUrl
  await ensureTopics(brokers, [{ name: topic, partitions: opts.partitions ?? 6 }])
  const pool = new pg.Pool({ connectionString: url, max: 3, options: `-c search_path=${quoteIdent(schema)},public` })
  pool.on('error', () => {})
  t.teardown(async () => {
    await pool.end().catch(() => {})
    await dropSchema(url, schema).catch(() => {})
    await deleteGroups(brokers, [group]).catch(() => {})
    await deleteTopics(brokers, [topic, topic + '.dlq']).catch(() => {})
  })
  return { source, topic, dlqTopic: topic + '.dlq', group, schema, pool, pgUrl: url }
}

export interface Worker {
  readonly proc: ChildProcess
  readonly pid: number
  readonly port: number
  readonly logFile: string
  /** resolves with the exit code (or the signal's name) */
  readonly exited: Promise<number | string>
  get (path: string): Promise<any>
  post (path: string, body?: unknown): Promise<any>
  /** current RSS in bytes, from /proc */
  rss (): number
  /** SIGTERM, then the exit code */
  stop (): Promise<number | string>
  /** SIGKILL, then waits for the exit */
  kill (): Promise<void>
  log (): string
}

/** Starts a worker on the fixture and waits until it is ready (in the group, database reachable). */
export async function startWorker (t: Test, fx: Fixture, env: Record<string, string> = {}, opts: { waitReady?: boolean } = {}): Promise<Worker> {
  const port = await freePort()
  mkdirSync('.sluice/test-logs', { recursive: true })
  const logFile = `.sluice/test-logs/${uniqueName(fx.topic)}.log`
  const out = openSync(logFile, 'a')
  // through the launcher, with the runtime settings the worker is run with everywhere
  const proc = spawn('bin/sluice', [], {
    env: {
      ...process.env,
      SLUICE_NODE: process.execPath,
      SLUICE_TOPICS: fx.topic,
      SLUICE_KAFKA_SOURCE: fx.source,
      SLUICE_KAFKA_GROUP: fx.group,
      SLUICE_PG_URL: fx.pgUrl,
      SLUICE_PG_SCHEMA: fx.schema,
      SLUICE_HTTP_PORT: String(port),
      SLUICE_LOG_LEVEL: 'info',
      SLUICE_KAFKA_SESSION_TIMEOUT_MS: '6000',
      SLUICE_KAFKA_HEARTBEAT_MS: '500',
      SLUICE_RETRY_MAX_MS: '2000',
      // the S3 snapshot sink's keys (when S3 is configured) under a prefix of the fixture's own
      SLUICE_S3_PREFIX: `test/${fx.schema}/`,
      // the API tests bring their own tokens file; the others call the API without credentials
      SLUICE_API_AUTH: 'off',
      ...env
    },
    stdio: ['ignore', out, out]
  })
  const exited = once(proc, 'exit').then(([code, signal]) => (code ?? signal) as number | string)
  const base = `http://127.0.0.1:${port}`
  const w: Worker = {
    proc,
    pid: proc.pid as number,
    port,
    logFile,
    exited,
    get: async (path) => (await fetch(base + path)).json(),
    post: async (path, body) => (await fetch(base + path, body === undefined ? { method: 'POST' } : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).json(),
    rss: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
    stop: async () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM'); return exited },
    kill: async () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); await exited },
    log: () => readFileSync(logFile, 'utf8')
  }
  t.teardown(async () => { await w.kill() })
  if (opts.waitReady !== false) {
    // progress: the worker's log grows while it starts (migrations, sinks, the group join)
    let exited: Error | null = null
    await waitForProgress(`worker ${w.pid} to be ready (log ${logFile})`, async () => {
      if (proc.exitCode !== null) {
        exited = new Error(`worker exited with ${proc.exitCode}; log ${logFile}:\n${w.log().slice(-2000)}`)
        return true
      }
      const res = await fetch(base + '/health/ready').catch(() => null)
      return res?.status === 200
    }, () => statSync(logFile).size, 100)
    if (exited !== null) throw exited
  }
  return w
}

export interface Produced {
  /** messages sent (duplicates and poison included) */
  messages: number
  /** distinct valid event ids */
  eventIds: Set<string>
  poison: PoisonKind[]
  /** message key (utf-8) of each poison message -> its kind (poison keys are unique) */
  poisonKeys: Map<string, PoisonKind>
}

/** Produces the seed mix (keyed by aggregate) to a topic, in batches. */
export async function produceSample (topic: string, opts: SampleOptions, onBatch?: (sent: number) => Promise<void>): Promise<Produced> {
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('e2e-producer') })
  await producer.connect()
  const res: Produced = { messages: 0, eventIds: new Set(), poison: [], poisonKeys: new Map() }
  try {
    let batch = []
    for (const r of sampleEvents(opts)) {
      batch.push({ topic, key: r.key, value: r.value })
      res.messages++
      if (r.eventId !== null) res.eventIds.add(r.eventId)
      if (r.poison !== null) {
        res.poison.push(r.poison)
        res.poisonKeys.set(r.key.toString(), r.poison)
      }
      if (batch.length === 2000) {
        await producer.produceBatch(batch)
        batch = []
        if (onBatch !== undefined) await onBatch(res.messages)
      }
    }
    if (batch.length > 0) await producer.produceBatch(batch)
  } finally {
    await producer.close()
  }
  return res
}

/** Sum of the next offsets stored in PostgreSQL for the topic: messages durably handled. */
export async function storedOffsetSum (fx: Fixture): Promise<number> {
  const r = await fx.pool.query('SELECT coalesce(sum(next_offset), 0)::bigint AS n FROM sluice_offsets WHERE consumer_group = $1 AND topic = $2', [fx.group, fx.topic])
  return Number(r.rows[0].n)
}

/** Rows in the fixture's event log: what moves while a worker works through a topic. */
export async function eventRows (fx: Fixture): Promise<number> {
  return Number((await fx.pool.query('SELECT count(*)::bigint AS n FROM entity_event_logs')).rows[0].n)
}

/** Waits until every one of `messages` produced messages is stored or dead-lettered (or the count stalls). */
export async function waitAllHandled (fx: Fixture, messages: number): Promise<void> {
  await waitForCount(`${messages} messages to be durable in ${fx.schema}`, async () => await storedOffsetSum(fx), messages)
}

/**
 * Asserts exactly once in entity_event_logs: one row per distinct produced event id, no
 * duplicate ids, and the stored ids are exactly the produced ones.
 */
export async function assertStoredExactlyOnce (t: Test, fx: Fixture, produced: Produced): Promise<void> {
  const c = await fx.pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs')
  t.equal(c.rows[0].n, produced.eventIds.size, `one row per distinct event (${produced.eventIds.size})`)
  t.equal(c.rows[0].d, c.rows[0].n, 'no event id stored twice')
  const ids = await fx.pool.query<{ event_id: string }>('SELECT event_id FROM entity_event_logs')
  const stored = new Set(ids.rows.map((r) => r.event_id))
  let unexpected = 0
  for (const id of stored) if (!produced.eventIds.has(id)) unexpected++
  let missing = 0
  for (const id of produced.eventIds) if (!stored.has(id)) missing++
  t.equal(unexpected, 0, 'no stored event id that was not produced')
  t.equal(missing, 0, 'every produced event id is stored')
}

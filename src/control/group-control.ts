import { hostname } from 'node:os'
import pg from 'pg'
import type { Pool, PoolClient } from 'pg'
import type { Logger } from 'pino'
import type { TopicPartition } from '../kafka/types.ts'
import { classifyPgError } from '../db/pg-errors.ts'
import { retry } from '../retry.ts'
import type { PipelineRunner } from '../pipeline/runner.ts'
import type { RunnerStatus } from '../pipeline/partition-states.ts'
import { expireDeadLetters } from './dlq-store.ts'

export const CHANNEL = 'sluice_control'
const ALL_TOPICS = '*'

export interface GroupControlOptions {
  pool: Pool
  pgUrl: string
  schema: string
  group: string
  /** this worker's name in the group (its Kafka client id) */
  worker: string
  runner: PipelineRunner
  logger: Logger
  pollMs: number
  dlqRetentionDays: number
  retry: { baseMs: number, maxMs: number }
}

export interface DesiredPauses {
  pausedAll: boolean
  partitions: Array<TopicPartition & { pausedBy: string, pausedAt: string }>
  all: { pausedBy: string, pausedAt: string } | null
}

export interface WorkerHeartbeat {
  worker: string
  host: string
  pid: number
  startedAt: string
  heartbeatAt: string
  /** heartbeat within three poll intervals */
  alive: boolean
  status: RunnerStatus
}

/**
 * The group's control state in PostgreSQL, applied by every worker: desired pauses (now and
 * after each rebalance, as the runner keeps them by partition), offset moves (the owner of a
 * moved partition seeks), heartbeats (GET /admin/status shows the whole group). Changes are
 * NOTIFYed on `sluice_control` and also picked up every `pollMs`.
 */
export class GroupControl {
  readonly #o: GroupControlOptions
  readonly #startedAt = new Date()
  #listener: pg.Client | null = null
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  #lastMove = 0
  #syncing: Promise<void> | null = null
  #again = false
  #lastExpiry = 0
  readonly #abort = new AbortController()

  constructor (opts: GroupControlOptions) {
    this.#o = opts
  }

  get pollMs (): number { return this.#o.pollMs }
  get pool (): Pool { return this.#o.pool }

  /** Applies the desired state before the first assignment, then listens and polls. */
  async start (): Promise<void> {
    const res = await this.#o.pool.query('SELECT coalesce(max(id), 0) AS id FROM sluice_offset_moves WHERE consumer_group = $1', [this.#o.group])
    this.#lastMove = Number(res.rows[0].id)
    await this.#applyPauses()
    this.#listen()
    const tick = (): void => {
      this.#timer = setTimeout(() => {
        this.#tick().finally(() => { if (!this.#stopped) tick() })
      }, this.#o.pollMs)
      this.#timer.unref()
    }
    tick()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    this.#abort.abort()
    if (this.#timer !== null) clearTimeout(this.#timer)
    const l = this.#listener
    this.#listener = null
    await l?.end().catch(() => {})
    await this.#o.pool.query('DELETE FROM sluice_workers WHERE consumer_group = $1 AND worker = $2', [this.#o.group, this.#o.worker]).catch(() => {})
  }

  async #tick (): Promise<void> {
    try {
      await this.sync()
      await this.heartbeat()
      if (Date.now() - this.#lastExpiry > 3600_000) {
        this.#lastExpiry = Date.now()
        const n = await expireDeadLetters(this.#o.pool, this.#o.dlqRetentionDays)
        if (n > 0) this.#o.logger.info({ deleted: n, days: this.#o.dlqRetentionDays }, 'expired redriven and discarded dead letters')
      }
    } catch (err) {
      this.#o.logger.warn({ err }, 'group control check failed; retried at the next one')
    }
  }

  /** LISTENs on a connection of its own; a lost connection is made again (retry helper). */
  #listen (): void {
    if (this.#stopped) return
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: this.#o.pgUrl, application_name: `sluice:${this.#o.worker}:control` })
      client.on('error', () => {}) // followed by 'end', handled below
      try {
        await client.connect()
        await client.query(`LISTEN ${CHANNEL}`)
        return client
      } catch (err) {
        await client.end().catch(() => {})
        throw err
      }
    }
    retry(connect, {
      ...this.#o.retry,
      signal: this.#abort.signal,
      classify: (err) => classifyPgError(err, 'control LISTEN connection'),
      onRetry: (err, attempt, delayMs) => this.#o.logger.warn({ code: err.code, attempt, delayMs: Math.round(delayMs) }, 'control LISTEN connection failed, retrying (the periodic check still applies changes)')
    }).then(async (client) => {
      if (this.#stopped) { await client.end().catch(() => {}); return }
      this.#listener = client
      client.on('notification', (n) => {
        if (n.payload === `${this.#o.schema}/${this.#o.group}`) this.sync().catch((err) => this.#o.logger.warn({ err }, 'applying a control change failed; retried at the next check'))
      })
      client.on('end', () => {
        if (this.#listener !== client) return
        this.#listener = null
        this.#o.logger.warn('control LISTEN connection lost; connecting again')
        this.#listen()
      })
      // what changed while not listening
      await this.sync().catch((err) => this.#o.logger.warn({ err }, 'applying control changes failed; retried at the next check'))
    }).catch((err) => {
      if (!this.#stopped) this.#o.logger.error({ err }, 'control LISTEN unavailable: changes apply at the periodic check only')
    })
  }

  /** Applies the desired pauses and offset moves (coalesced: one run at a time, one more if asked meanwhile). */
  async sync (): Promise<void> {
    if (this.#syncing !== null) {
      this.#again = true
      return await this.#syncing
    }
    this.#syncing = (async () => {
      do {
        this.#again = false
        await this.#applyPauses()
        await this.#applyMoves()
        // the group sees the change applied (pauses, positions) without waiting for the poll
        await this.heartbeat()
      } while (this.#again)
    })().finally(() => { this.#syncing = null })
    return await this.#syncing
  }

  async #applyPauses (): Promise<void> {
    const d = await this.desired()
    this.#o.runner.setAdminPauses(d.pausedAll, d.partitions)
  }

  async #applyMoves (): Promise<void> {
    const res = await this.#o.pool.query(
      'SELECT id, topic, partition, to_offset FROM sluice_offset_moves WHERE consumer_group = $1 AND id > $2 ORDER BY id',
      [this.#o.group, this.#lastMove])
    for (const r of res.rows) {
      const tp = { topic: r.topic as string, partition: r.partition as number }
      if (await this.#o.runner.seek(tp, Number(r.to_offset))) this.#o.logger.info({ ...tp, offset: Number(r.to_offset), move: Number(r.id) }, 'offset moved by an operator')
      this.#lastMove = Number(r.id)
    }
  }

  async desired (db: Pool | PoolClient = this.#o.pool): Promise<DesiredPauses> {
    const res = await db.query('SELECT topic, partition, paused_by, paused_at FROM sluice_control_pauses WHERE consumer_group = $1 ORDER BY topic, partition', [this.#o.group])
    const out: DesiredPauses = { pausedAll: false, partitions: [], all: null }
    for (const r of res.rows) {
      const at = (r.paused_at as Date).toISOString()
      if (r.topic === ALL_TOPICS) {
        out.pausedAll = true
        out.all = { pausedBy: r.paused_by, pausedAt: at }
      } else {
        out.partitions.push({ topic: r.topic, partition: r.partition, pausedBy: r.paused_by, pausedAt: at })
      }
    }
    return out
  }

  /** Records the group's pause (all partitions when tps is undefined) and notifies every worker. */
  async pause (tps: TopicPartition[] | undefined, by: string): Promise<void> {
    const list = tps ?? [{ topic: ALL_TOPICS, partition: -1 }]
    await this.#change(async (c) => {
      await c.query(
        `INSERT INTO sluice_control_pauses (consumer_group, topic, partition, paused_by)
         SELECT $1, t, p, $4 FROM unnest($2::text[], $3::int[]) AS x(t, p)
         ON CONFLICT (consumer_group, topic, partition) DO NOTHING`,
        [this.#o.group, list.map((t) => t.topic), list.map((t) => t.partition), by])
    })
  }

  /** Removes pauses: every one of the group when tps is undefined, else those partitions'. */
  async resume (tps: TopicPartition[] | undefined): Promise<void> {
    await this.#change(async (c) => {
      if (tps === undefined) await c.query('DELETE FROM sluice_control_pauses WHERE consumer_group = $1', [this.#o.group])
      else {
        await c.query('DELETE FROM sluice_control_pauses WHERE consumer_group = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))',
          [this.#o.group, tps.map((t) => t.topic), tps.map((t) => t.partition)])
      }
    })
  }

  /** Runs a change of the control state in a transaction that notifies the group on commit. */
  async transaction<T> (fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#o.pool.connect()
    try {
      await c.query('BEGIN')
      const out = await fn(c)
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `${this.#o.schema}/${this.#o.group}`])
      await c.query('COMMIT')
      return out
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }

  async #change (fn: (c: PoolClient) => Promise<void>): Promise<void> {
    await this.transaction(fn)
    await this.sync() // this worker at once; the others on the notification
  }

  /** This worker's row in sluice_workers, with its status (computed here unless given). */
  async heartbeat (known?: RunnerStatus): Promise<void> {
    const status = known ?? await this.#o.runner.status()
    await this.#o.pool.query(
      `INSERT INTO sluice_workers (consumer_group, worker, host, pid, started_at, heartbeat_at, status)
       VALUES ($1, $2, $3, $4, $5, now(), $6)
       ON CONFLICT (consumer_group, worker) DO UPDATE SET heartbeat_at = now(), status = EXCLUDED.status`,
      [this.#o.group, this.#o.worker, hostname(), process.pid, this.#startedAt, JSON.stringify(status)])
    // workers gone for an hour are forgotten
    await this.#o.pool.query("DELETE FROM sluice_workers WHERE consumer_group = $1 AND heartbeat_at < now() - interval '1 hour'", [this.#o.group])
  }

  async workers (db: Pool | PoolClient = this.#o.pool): Promise<WorkerHeartbeat[]> {
    const res = await db.query(
      `SELECT worker, host, pid, started_at, heartbeat_at, status, heartbeat_at > now() - make_interval(secs => $2) AS alive
       FROM sluice_workers WHERE consumer_group = $1 ORDER BY worker`, [this.#o.group, 3 * this.#o.pollMs / 1000])
    return res.rows.map((r) => ({
      worker: r.worker,
      host: r.host,
      pid: r.pid,
      startedAt: (r.started_at as Date).toISOString(),
      heartbeatAt: (r.heartbeat_at as Date).toISOString(),
      alive: r.alive,
      status: r.status
    }))
  }
}

import { readFileSync } from 'node:fs'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import pg from 'pg'
import type { Logger } from 'pino'
import { adminRoutes } from './api/admin.ts'
import { installErrorHandling } from './api/errors-handler.ts'
import { installInputGuard } from './api/input-guard.ts'
import { eventRoutes } from './api/events.ts'
import { eventStreamRoutes } from './api/events-stream.ts'
import { auditRoutes, installAudit } from './api/audit.ts'
import { installAuth, loadAuth } from './api/auth.ts'
import { dlqRoutes } from './api/dlq.ts'
import { openapi } from './api/openapi.ts'
import { deadLetterGauges } from './control/dlq-gauges.ts'
import { GroupControl } from './control/group-control.ts'
import { entityRoutes } from './api/entities.ts'
import { snapshotRoutes } from './api/snapshots.ts'
import type { ApiConfig, IngestConfig, S3Config, StreamConfig } from './config/config.ts'
import { healthRoutes } from './api/health.ts'
import { metricsRoutes } from './api/metrics.ts'
import { IngestProducer } from './ingest/event-producer.ts'
import { EventStreamHub } from './ingest/event-stream.ts'
import { ensureTopics } from './kafka/admin.ts'
import { RdkafkaProducer } from './kafka/producer.ts'
import type { Source } from './kafka/types.ts'
import { SluiceMetrics } from './metrics/metrics.ts'
import type { PipelineDefinition } from './pipeline/definition.ts'
import { PipelineRunner } from './pipeline/runner.ts'
import { DlqPublisher } from './sinks/dlq/dlq-topic.ts'
import type { Sink } from './sinks/sink.ts'
import { migrate } from './sinks/timescale/migrate.ts'
import { quoteIdent } from './db/quote-ident.ts'
import { createReadClient, SnapshotObjects } from './state/snapshot-store.ts'
import type { MigrateResult } from './sinks/timescale/migrate.ts'

export interface AppOptions {
  logger: Logger
  brokers: string
  group: string
  clientId: string
  source: Source
  pgUrl: string
  pgSchema: string
  pgPoolSize: number
  sqlDir: string
  /** topic -> pipeline */
  pipelines: ReadonlyMap<string, PipelineDefinition<unknown>>
  dlqTopicSuffix: string
  batch: { maxRows: number, maxBytes: number, lingerMs: number }
  inflight: { maxMessages: number, maxBytes: number, lowRatio: number }
  retry: { baseMs: number, maxMs: number }
  flushConcurrency: number
  /** S3 of the snapshots, for the snapshot API and restores (null: not configured) */
  s3?: S3Config | null
  /** POST /events: its topic must be one of `pipelines` (null: no endpoint) */
  ingest?: IngestConfig | null
  /** GET /events/stream (null: no endpoint) */
  stream?: StreamConfig | null
  /** the operator API's credentials and limits (default: auth off, as in embedded tests) */
  api?: ApiConfig
  control?: { pollMs: number, dlqRetentionDays: number }
}

const API_DEFAULTS: ApiConfig = { auth: 'off', tokensFile: null, jwt: null, rateLimitPerMinute: 600, healthPort: null }
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface App {
  http: FastifyInstance
  /** health and metrics on a port of their own (SLUICE_HEALTH_PORT), else null */
  health: FastifyInstance | null
  control: GroupControl
  runner: PipelineRunner
  pool: pg.Pool
  metrics: SluiceMetrics
  migrations: MigrateResult
  close (graceMs: number): Promise<boolean>
}

/** Wiring only: pool, migrations, DLQ producer, runner, HTTP API. */
export async function buildApp (o: AppOptions): Promise<App> {
  const api = o.api ?? API_DEFAULTS
  // a bad tokens file or key stops the worker here, before anything is started
  const auth = loadAuth(api)
  const pool = new pg.Pool({
    connectionString: o.pgUrl,
    max: o.pgPoolSize,
    // sluice's schema alone: a table missing there must fail (SLUICE_ERR_PG_SCHEMA), not
    // resolve to a same-named table in public (migrations add public for TimescaleDB's functions)
    options: `-c search_path=${quoteIdent(o.pgSchema)}`,
    application_name: `sluice:${o.clientId}`
  })
  pool.on('error', () => {}) // idle connections: logged by their own listener below
  // A connection the server ends (restart, pg_terminate_backend) emits 'error' when no query
  // is active on it, which happens to a checked-out client between two queries too (the pool
  // only listens while a client is idle): unheard, that error would crash the worker. The
  // client is unusable from then on; its next query fails (transient) and it is discarded.
  pool.on('connect', (client) => {
    client.on('error', (err) => o.logger.warn({ err }, 'PostgreSQL connection failed'))
  })
  let producer: RdkafkaProducer | null = null
  let ingestProducer: IngestProducer | null = null
  const opened: Array<Sink<unknown>> = [] // sinks whose open() ran: closed on the way out
  const closeSinks = async (): Promise<void> => {
    for (const s of opened.splice(0)) await s.close?.().catch((err) => o.logger.warn({ err, sink: s.name }, 'closing a sink'))
  }
  // the producer, the dead-letter topics and the sinks are opened (mostly waits on the broker,
  // S3 and PostgreSQL) while the runner and the HTTP API are built (CPU): awaited before the
  // API is ready, and before anything is closed on the way out
  let opening: Promise<void> | null = null
  // the API's servers, closed if start-up fails after they were built (a retried start builds its own)
  const servers: FastifyInstance[] = []
  try {
    const migrations = await migrate(pool, o.pgSchema, o.sqlDir)
    o.logger.info(migrations, 'schema ready')

    const dlqProducer = producer = new RdkafkaProducer({ brokers: o.brokers, clientId: `${o.clientId}-dlq` })
    const metrics = new SluiceMetrics()
    opening = (async () => {
      await dlqProducer.connect()
      const topics = [...o.pipelines.keys()]
      await ensureTopics(o.brokers, topics.map((t) => ({ name: t + o.dlqTopicSuffix, partitions: 1 })), { known: dlqProducer })
      for (const s of new Set([...o.pipelines.values()].flatMap((p) => Object.values(p.routes)))) {
        if (s.open === undefined) continue
        opened.push(s)
        await s.open({ group: o.group, pool, brokers: o.brokers, producer: dlqProducer, metrics, logger: o.logger.child({ component: 'sink', sink: s.name }) })
      }
    })()
    opening.catch(() => {}) // awaited below, or on the way out
    const runner = new PipelineRunner({
      source: o.source,
      pool,
      group: o.group,
      pipelines: o.pipelines,
      dlq: new DlqPublisher(dlqProducer, o.dlqTopicSuffix),
      metrics,
      logger: o.logger.child({ component: 'runner' }),
      batch: o.batch,
      inflight: o.inflight,
      retry: o.retry,
      flushConcurrency: o.flushConcurrency
    })

    const control = new GroupControl({
      pool,
      pgUrl: o.pgUrl,
      schema: o.pgSchema,
      group: o.group,
      worker: o.clientId,
      runner,
      logger: o.logger.child({ component: 'control' }),
      pollMs: o.control?.pollMs ?? 5000,
      dlqRetentionDays: o.control?.dlqRetentionDays ?? 30,
      retry: o.retry
    })
    deadLetterGauges(metrics.registry, pool)

    const newServer = (): FastifyInstance => Fastify({
      loggerInstance: o.logger.child({ component: 'http' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      // Fastify's default strips unknown properties silently: `{"partition": 0}` (a typo)
      // would reach /admin/pause as an empty body and pause every partition. Refuse them.
      ajv: { customOptions: { removeAdditional: false } },
      // entity ids are up to 200 characters (percent-encoded, up to 9 bytes each): the
      // schemas give a 400 past that, not the router's 414 past its default of 100
      routerOptions: { maxParamLength: 2048 }
    })
    const http = newServer()
    const health = api.healthPort === null ? null : newServer()
    servers.push(http, ...(health === null ? [] : [health]))
    for (const s of [http, health]) {
      if (s === null) continue
      installErrorHandling(s)
      installInputGuard(s)
    }
    await openapi(http, VERSION)
    await installAuth(http, api, auth, o.logger.child({ component: 'auth' }))
    installAudit(http, pool, o.clientId, o.logger.child({ component: 'audit' }))
    await (health ?? http).register(healthRoutes, { runner, pool })
    await (health ?? http).register(metricsRoutes, { runner, metrics })
    await http.register(adminRoutes, { runner, topics: [...o.pipelines.keys()], control, brokers: o.brokers, group: o.group, worker: o.clientId })
    await http.register(auditRoutes, { pool })
    await http.register(dlqRoutes, { pool, producer: dlqProducer, brokers: o.brokers, logger: o.logger.child({ component: 'dlq' }) })
    await http.register(entityRoutes, { pool })
    const snapshotObjects = o.s3 == null ? null : new SnapshotObjects(createReadClient(o.s3), o.s3.bucket)
    http.addHook('onClose', async () => { snapshotObjects?.s3.destroy() })
    await http.register(snapshotRoutes, { pool, schema: o.pgSchema, objects: snapshotObjects })

    const ingestPipeline = o.ingest == null ? undefined : o.pipelines.get(o.ingest.topic)
    if (o.ingest != null && ingestPipeline !== undefined) {
      ingestProducer = new IngestProducer({ brokers: o.brokers, clientId: `${o.clientId}-ingest`, topic: o.ingest.topic, maxQueued: o.ingest.maxQueued, ackTimeoutMs: o.ingest.ackTimeoutMs, logger: o.logger.child({ component: 'ingest' }) })
      await ingestProducer.connect()
      await http.register(eventRoutes, { topic: o.ingest.topic, pipeline: ingestPipeline, producer: ingestProducer, maxEvents: o.ingest.maxEvents, maxBodyBytes: o.ingest.maxBodyBytes, registry: metrics.registry })
    }
    const hub = o.stream == null ? null : new EventStreamHub({ pool, pgUrl: o.pgUrl, schema: o.pgSchema, group: o.group, ...o.stream, logger: o.logger.child({ component: 'stream' }), registry: metrics.registry })
    if (hub !== null) {
      // streams end before the server closes (it waits for open connections)
      http.addHook('preClose', async () => { await hub.close() })
      await http.register(eventStreamRoutes, { hub })
    }

    await http.ready()
    await health?.ready()
    await opening
    await control.start()
    const ingestOut = ingestProducer
    return {
      http,
      health,
      control,
      runner,
      pool,
      metrics,
      migrations,
      async close (graceMs: number): Promise<boolean> {
        await ingestOut?.close()
        const clean = await runner.stop(graceMs)
        await control.stop()
        await http.close()
        await health?.close()
        await closeSinks()
        await dlqProducer.close()
        await pool.end()
        return clean
      }
    }
  } catch (err) {
    await opening?.catch(() => {})
    for (const s of servers) await s.close().catch(() => {})
    await closeSinks()
    await ingestProducer?.close().catch(() => {})
    await producer?.close().catch(() => {})
    await pool.end().catch(() => {})
    throw err
  }
}

// Starts the worker from the environment and stops it gracefully on SIGTERM/SIGINT:
// stop fetching, flush, store offsets, close within SLUICE_SHUTDOWN_GRACE_MS, exit 0.
// Exit codes: 0 clean stop, 1 fatal error while running, 2 bad configuration or start-up.
// first: checks for a runtime that alters keys (nodejs/node issue 63785) while the other modules load
import { runtimeChecked } from './runtime-guard.ts'
import { pino } from 'pino'
import { buildApp } from './app.ts'
import type { App } from './app.ts'
import { loadConfig } from './config/config.ts'
import type { Config } from './config/config.ts'
import { SluiceError, errorMessage, isSluiceError } from './errors.ts'
import { createSource } from './kafka/create-source.ts'
import { loadPipelines } from './pipeline/load-pipelines.ts'
import { retry } from './retry.ts'

function oneLine (err: unknown): string {
  return isSluiceError(err) ? `${err.code}: ${err.message}` : errorMessage(err)
}

let config: Readonly<Config>
try {
  config = loadConfig()
} catch (err) {
  process.stderr.write(`sluice: ${oneLine(err)}\n`)
  process.exit(2)
}

const logger = pino({
  level: config.logLevel,
  base: { pid: process.pid, clientId: config.kafka.clientId },
  redact: { paths: ['pg.url', '*.password', 'password', 'connectionString', 's3.secretAccessKey', '*.secretAccessKey', 'req.headers.authorization', 'headers.authorization', '*.headers.authorization', 'authorization'], censor: '[redacted]' }
})

let app: App | null = null
let stopping = false
/** aborted by stop(): start-up retries end there */
const starting = new AbortController()

async function stop (code: number, reason: string, err?: unknown): Promise<void> {
  if (stopping) return
  stopping = true
  starting.abort()
  if (err !== undefined) logger.fatal({ err }, `stopping: ${oneLine(err)}`)
  else logger.info({ reason, graceMs: config.shutdownGraceMs }, 'stopping')
  let clean = true
  let closeFailed = false
  if (app !== null) clean = await app.close(config.shutdownGraceMs).catch((e) => { logger.error({ err: e }, 'error while closing'); closeFailed = true; return false })
  if (!clean && !closeFailed && err === undefined) {
    const timeout = new SluiceError('SLUICE_ERR_SHUTDOWN_TIMEOUT', `the shutdown grace (SLUICE_SHUTDOWN_GRACE_MS=${config.shutdownGraceMs}) ran out before every batch was written; unwritten messages are read again on restart`)
    logger.error({ code: timeout.code }, timeout.message)
    err = timeout
  }
  if (err !== undefined) process.stderr.write(`sluice: ${oneLine(err)}\n`)
  logger.flush()
  process.exit(code !== 0 ? code : clean ? 0 : 1)
}

process.once('SIGTERM', () => { stop(0, 'SIGTERM').catch(() => process.exit(1)) })
process.once('SIGINT', () => { stop(0, 'SIGINT').catch(() => process.exit(1)) })

async function start (): Promise<void> {
  await runtimeChecked
  logger.info({ kafka: config.kafka, topics: Object.fromEntries(config.pipelines), pg: { schema: config.pg.schema, poolSize: config.pg.poolSize }, batch: config.batch, inflight: config.inflight, s3: config.s3 === null ? null : { ...config.s3 }, snapshotsTopic: config.snapshotsTopic }, 'starting sluice')
  const pipelines = await loadPipelines(config.pipelinesDir, config.pipelines, { maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth, projection: config.projection, schemasDir: config.schemasDir, s3: config.s3, snapshotsTopic: config.snapshotsTopic, retry: config.retry })
  // a database or broker that is still starting is waited for; anything else is fatal
  app = await retry(async () => {
    const source = await createSource(config, logger)
    try {
      return await buildApp({
        logger,
        brokers: config.kafka.brokers,
        group: config.kafka.group,
        clientId: config.kafka.clientId,
        source,
        pgUrl: config.pg.url,
        pgSchema: config.pg.schema,
        pgPoolSize: config.pg.poolSize,
        sqlDir: config.sqlDir,
        pipelines,
        dlqTopicSuffix: config.dlqTopicSuffix,
        batch: config.batch,
        inflight: config.inflight,
        retry: config.retry,
        flushConcurrency: config.flushConcurrency,
        s3: config.s3,
        ingest: config.ingest,
        stream: config.stream,
        api: config.api,
        control: config.control
      })
    } catch (err) {
      // the failed attempt's source is closed; the next attempt builds its own
      await source.close().catch((e: unknown) => logger.warn({ err: e }, 'closing the source of a failed start-up'))
      throw err
    }
  }, {
    baseMs: config.retry.baseMs,
    maxMs: config.retry.maxMs,
    signal: starting.signal,
    onRetry: (err, attempt, delayMs) => logger.warn({ code: err.code, attempt, delayMs: Math.round(delayMs), reason: err.message }, 'start-up failed, retrying')
  })
  const running = app
  running.runner.on('fatal', (err: SluiceError) => { stop(1, 'fatal', err).catch(() => process.exit(1)) })
  await running.http.listen({ host: config.http.host, port: config.http.port })
  if (running.health !== null && config.api.healthPort !== null) await running.health.listen({ host: config.http.host, port: config.api.healthPort })
  await running.runner.start()
  logger.info({ http: `http://${config.http.host}:${config.http.port}` }, 'sluice is running')
}

start().catch(async (err) => {
  await stop(2, 'start-up failed', err instanceof Error ? err : new SluiceError('SLUICE_ERR_CONFIG', String(err)))
})

import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { Ajv } from 'ajv'
import { SluiceError } from '../errors.ts'

/**
 * The worker's configuration: the only module that reads the environment. Validated once at
 * start-up (ajv, with types coerced from the environment's strings), then frozen. Every
 * variable is documented in the README; a bad value stops the worker with SLUICE_ERR_CONFIG.
 */
export interface Config {
  kafka: { brokers: string, source: 'rdkafka' | 'platformatic', group: string, clientId: string, fetchBatch: number, fetchBatchBytes: number, sessionTimeoutMs: number, heartbeatIntervalMs: number, prefetchBytes: number | null, instanceId: string | null, debug: string | null, coordinatorTimeoutMs: number, downTimeoutMs: number }
  /** topic -> pipeline name (a module in pipelines/) */
  pipelines: ReadonlyMap<string, string>
  pg: { url: string, schema: string, poolSize: number }
  batch: { maxRows: number, maxBytes: number, lingerMs: number }
  inflight: { maxMessages: number, maxBytes: number, lowRatio: number }
  retry: { baseMs: number, maxMs: number }
  flushConcurrency: number
  maxEventBytes: number
  /** deeper JSON nesting is poison (SLUICE_ERR_TOO_DEEP) */
  maxJsonDepth: number
  /** the entity-state projection (entity_state) is maintained with each batch */
  projection: boolean
  /** run on a Node.js whose JSON.parse alters escaped keys (src/runtime.ts) */
  allowAffectedRuntime: boolean
  dlqTopicSuffix: string
  http: { host: string, port: number }
  shutdownGraceMs: number
  logLevel: string
  sqlDir: string
  pipelinesDir: string
  schemasDir: string
  /** S3 for snapshots; null when SLUICE_S3_BUCKET is unset (snapshot events are then stored in the event log) */
  s3: S3Config | null
  /** where SNAPSHOT_UPLOADED / SNAPSHOT_FAILED are produced */
  snapshotsTopic: string
  /** POST /events (docs/ingest.md) */
  ingest: IngestConfig
  /** GET /events/stream (docs/ingest.md) */
  stream: StreamConfig
  /** the operator API's credentials, limits and ports (src/control/, src/api/auth.ts) */
  api: ApiConfig
  /** group-wide control: how often desired pauses, offset moves and heartbeats are checked */
  control: { pollMs: number, dlqRetentionDays: number }
}

/** HTTP ingest: what one request may carry and how long the broker may take to acknowledge it. */
export interface IngestConfig {
  /** the topic accepted events are produced to; one the worker consumes (its pipeline validates them) */
  topic: string
  /** events per request */
  maxEvents: number
  /** bytes per request body */
  maxBodyBytes: number
  /** events handed to the producer and not yet acknowledged; past it a request gets 503 */
  maxQueued: number
  /** a delivery not acknowledged (acks=all) within this fails, and its request gets 503 */
  ackTimeoutMs: number
}

/** The SSE stream of durable events. */
export interface StreamConfig {
  /** concurrent streams; one more gets 503 */
  maxClients: number
  /** unsent bytes per client before it must drain */
  bufferBytes: number
  /** a client that does not drain its buffer within this is dropped */
  slowClientMs: number
  /** a comment line this often keeps idle connections open */
  heartbeatMs: number
}

/** Who may call the API. `auth: 'off'` (explicit) lets every request through as `anonymous`. */
export interface ApiConfig {
  auth: 'on' | 'off'
  /** JSON file of bearer tokens: [{ name, scopes, sha256 }] (null: no tokens) */
  tokensFile: string | null
  /** JWT verification key (HS256 secret or RS256 public key in PEM; null: no JWT) */
  jwt: { keyFile: string, algorithm: 'HS256' | 'RS256' } | null
  /** requests per minute per token (per address for anonymous callers) */
  rateLimitPerMinute: number
  /** null: health and metrics on the API's port; else on this port only */
  healthPort: number | null
}

/** The S3 snapshot sink's settings (src/sinks/s3/). */
export interface S3Config {
  /** null: the AWS endpoint of the region; otherwise path-style requests to this URL */
  endpoint: string | null
  region: string
  bucket: string
  /** null: the AWS SDK's default credential chain */
  accessKeyId: string | null
  secretAccessKey: string | null
  /** prepended to every key (`snapshots/...`, `metadata/...`): '' or ends with '/' */
  prefix: string
  /** multipart part size; memory per open upload is about partBytes x (queueSize + 1) */
  partBytes: number
  /** parts uploaded in parallel per upload */
  queueSize: number
  /** attempts of one S3 request before the snapshot fails (SLUICE_ERR_S3_UPLOAD) */
  maxAttempts: number
  /** a chunked snapshot with no chunk for this long is given up (its producer went away) */
  chunkTimeoutMs: number
  /** a SNAPSHOT_TRIGGERED is answered by a state dump started at most this long before it was read (0: only after) */
  dumpShareMs: number
  /** metadata/snapshot_index.json lists the newest this many snapshots (the snapshots table holds them all) */
  indexEntries: number
}

/** variable -> [JSON Schema, default]; the schema decides coercion and bounds */
const VARS = {
  SLUICE_KAFKA_BROKERS: [{ type: 'string', minLength: 1 }, undefined],
  SLUICE_KAFKA_SOURCE: [{ enum: ['rdkafka', 'platformatic'] }, 'rdkafka'],
  SLUICE_KAFKA_GROUP: [{ type: 'string', minLength: 1 }, 'sluice'],
  SLUICE_CLIENT_ID: [{ type: 'string', minLength: 1 }, `sluice-${hostname()}-${process.pid}`],
  // a consume call's messages are handled in one go on the main thread, and every PostgreSQL
  // round trip of a batch's transaction waits behind it: 250 (~10 ms of work) rather than 2000
  // (~90 ms) took the first durable offset from 5.7-6.2 s to 3.3-3.6 s and the ingest
  // benchmark's rate +8 and +16% (scripts/bench.sh, two rounds)
  SLUICE_FETCH_BATCH: [{ type: 'integer', minimum: 1, maximum: 100000 }, 250],
  SLUICE_FETCH_BATCH_BYTES: [{ type: 'integer', minimum: 65536 }, 8 * 1024 * 1024],
  SLUICE_KAFKA_SESSION_TIMEOUT_MS: [{ type: 'integer', minimum: 3000, maximum: 300000 }, 30000],
  SLUICE_KAFKA_HEARTBEAT_MS: [{ type: 'integer', minimum: 100, maximum: 100000 }, 3000],
  SLUICE_KAFKA_INSTANCE_ID: [{ type: 'string', pattern: '^([A-Za-z0-9._-]{1,249})?$' }, ''],
  SLUICE_KAFKA_PREFETCH_BYTES: [{ type: 'integer', minimum: 0, maximum: 1073741824 }, 0],
  SLUICE_KAFKA_DEBUG: [{ type: 'string', pattern: '^([a-z]+(,[a-z]+)*)?$' }, ''],
  SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS: [{ type: 'integer', minimum: 0, maximum: 3600000 }, 30000],
  SLUICE_KAFKA_DOWN_TIMEOUT_MS: [{ type: 'integer', minimum: 0, maximum: 3600000 }, 60000],
  SLUICE_TOPICS: [{ type: 'string' }, ''],
  SLUICE_PIPELINES: [{ type: 'string' }, ''],
  SLUICE_PG_URL: [{ type: 'string', minLength: 1 }, undefined],
  SLUICE_PG_SCHEMA: [{ type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' }, 'public'],
  SLUICE_PG_POOL_SIZE: [{ type: 'integer', minimum: 1, maximum: 100 }, 8],
  SLUICE_BATCH_MAX_ROWS: [{ type: 'integer', minimum: 1 }, 5000],
  SLUICE_BATCH_MAX_BYTES: [{ type: 'integer', minimum: 1024 }, 4 * 1024 * 1024],
  SLUICE_BATCH_LINGER_MS: [{ type: 'integer', minimum: 0, maximum: 60000 }, 50],
  SLUICE_INFLIGHT_MAX_MESSAGES: [{ type: 'integer', minimum: 1 }, 50000],
  SLUICE_INFLIGHT_MAX_BYTES: [{ type: 'integer', minimum: 1024 }, 64 * 1024 * 1024],
  SLUICE_INFLIGHT_LOW_RATIO: [{ type: 'number', exclusiveMinimum: 0, maximum: 1 }, 0.5],
  SLUICE_RETRY_BASE_MS: [{ type: 'integer', minimum: 1 }, 100],
  SLUICE_RETRY_MAX_MS: [{ type: 'integer', minimum: 1 }, 10000],
  SLUICE_FLUSH_CONCURRENCY: [{ type: 'integer', minimum: 1, maximum: 64 }, 3],
  SLUICE_MAX_EVENT_BYTES: [{ type: 'integer', minimum: 64 }, 1024 * 1024],
  SLUICE_MAX_JSON_DEPTH: [{ type: 'integer', minimum: 2, maximum: 10000 }, 512],
  SLUICE_ALLOW_AFFECTED_RUNTIME: [{ enum: ['true', 'false'] }, 'false'],
  SLUICE_DLQ_SUFFIX: [{ type: 'string', minLength: 1 }, '.dlq'],
  SLUICE_HTTP_HOST: [{ type: 'string', minLength: 1 }, '127.0.0.1'],
  SLUICE_HTTP_PORT: [{ type: 'integer', minimum: 0, maximum: 65535 }, 8080],
  SLUICE_SHUTDOWN_GRACE_MS: [{ type: 'integer', minimum: 0 }, 30000],
  SLUICE_LOG_LEVEL: [{ enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, 'info'],
  SLUICE_SQL_DIR: [{ type: 'string', minLength: 1 }, 'sql'],
  SLUICE_PIPELINES_DIR: [{ type: 'string', minLength: 1 }, 'pipelines'],
  SLUICE_SCHEMAS_DIR: [{ type: 'string', minLength: 1 }, 'pipelines/schemas'],
  SLUICE_S3_ENDPOINT: [{ type: 'string', pattern: '^(https?://.+)?$' }, ''],
  SLUICE_S3_REGION: [{ type: 'string', minLength: 1 }, 'us-east-1'],
  SLUICE_S3_BUCKET: [{ type: 'string', pattern: '^([a-z0-9][a-z0-9.-]{1,62})?$' }, ''],
  SLUICE_S3_ACCESS_KEY: [{ type: 'string' }, ''],
  SLUICE_S3_SECRET_KEY: [{ type: 'string' }, ''],
  SLUICE_S3_PREFIX: [{ type: 'string', pattern: '^([A-Za-z0-9._=-]+/)*$' }, ''],
  SLUICE_S3_PART_BYTES: [{ type: 'integer', minimum: 5 * 1024 * 1024, maximum: 1024 * 1024 * 1024 }, 8 * 1024 * 1024],
  SLUICE_S3_QUEUE_SIZE: [{ type: 'integer', minimum: 1, maximum: 16 }, 2],
  SLUICE_S3_MAX_ATTEMPTS: [{ type: 'integer', minimum: 1, maximum: 1000 }, 20],
  SLUICE_S3_CHUNK_TIMEOUT_MS: [{ type: 'integer', minimum: 1000 }, 15 * 60_000],
  SLUICE_S3_DUMP_SHARE_MS: [{ type: 'integer', minimum: 0, maximum: 3_600_000 }, 1000],
  // the document is rewritten up to once a second: listing every snapshot ever indexed made
  // each rewrite read, encode and upload the whole table (60 MB and 0.75 CPU s at 100,000 rows)
  SLUICE_S3_INDEX_ENTRIES: [{ type: 'integer', minimum: 1, maximum: 1_000_000 }, 1000],
  SLUICE_SNAPSHOTS_TOPIC: [{ type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' }, 'todo-snapshots'],
  SLUICE_INGEST_TOPIC: [{ type: 'string', pattern: '^([A-Za-z0-9._-]{1,249})?$' }, ''],
  SLUICE_INGEST_MAX_EVENTS: [{ type: 'integer', minimum: 1, maximum: 100000 }, 1000],
  SLUICE_INGEST_MAX_BODY_BYTES: [{ type: 'integer', minimum: 1024, maximum: 1073741824 }, 16 * 1024 * 1024],
  SLUICE_INGEST_MAX_QUEUED: [{ type: 'integer', minimum: 1, maximum: 10000000 }, 100000],
  SLUICE_INGEST_ACK_TIMEOUT_MS: [{ type: 'integer', minimum: 100, maximum: 300000 }, 10000],
  SLUICE_STREAM_MAX_CLIENTS: [{ type: 'integer', minimum: 1, maximum: 100000 }, 64],
  SLUICE_STREAM_BUFFER_BYTES: [{ type: 'integer', minimum: 1024, maximum: 1073741824 }, 1024 * 1024],
  SLUICE_STREAM_SLOW_CLIENT_MS: [{ type: 'integer', minimum: 100, maximum: 3600000 }, 10000],
  SLUICE_STREAM_HEARTBEAT_MS: [{ type: 'integer', minimum: 100, maximum: 3600000 }, 15000],
  SLUICE_API_AUTH: [{ enum: ['on', 'off'] }, 'on'],
  SLUICE_PROJECTION: [{ enum: ['on', 'off'] }, 'on'],
  SLUICE_API_TOKENS_FILE: [{ type: 'string' }, ''],
  SLUICE_API_JWT_KEY_FILE: [{ type: 'string' }, ''],
  SLUICE_API_JWT_ALGORITHM: [{ enum: ['HS256', 'RS256'] }, 'HS256'],
  SLUICE_API_RATE_LIMIT: [{ type: 'integer', minimum: 1, maximum: 1000000 }, 600],
  SLUICE_HEALTH_PORT: [{ type: 'integer', minimum: 0, maximum: 65535 }, undefined],
  SLUICE_CONTROL_POLL_MS: [{ type: 'integer', minimum: 100, maximum: 600000 }, 5000],
  SLUICE_DLQ_RETENTION_DAYS: [{ type: 'integer', minimum: 1, maximum: 36500 }, 30]
} as const

type VarName = keyof typeof VARS
type Raw = Record<VarName, any>

const schema = {
  type: 'object',
  required: ['SLUICE_KAFKA_BROKERS', 'SLUICE_PG_URL'],
  properties: Object.fromEntries(Object.entries(VARS).map(([k, [s, d]]) => [k, d === undefined ? s : { ...s, default: d }]))
}
const validate = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true, strict: false }).compile<Raw>(schema)

/** SLUICE_ALLOW_AFFECTED_RUNTIME alone, for the runtime check that starts before the configuration is read. */
export function allowsAffectedRuntime (env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SLUICE_ALLOW_AFFECTED_RUNTIME === 'true'
}

/** Variable names sluice reads, for the README check and `--help`. */
export const configVariables: readonly string[] = Object.keys(VARS)

/** `entity-events:a,b;audit:c` (pipeline per topic list) plus SLUICE_TOPICS for the default pipeline */
function parsePipelines (pipelines: string, topics: string): Map<string, string> {
  const out = new Map<string, string>()
  const add = (pipeline: string, topic: string): void => {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic)) throw new SluiceError('SLUICE_ERR_CONFIG', `"${topic}" is not a valid Kafka topic name`)
    if (!/^[a-z][a-z0-9-]*$/.test(pipeline)) throw new SluiceError('SLUICE_ERR_CONFIG', `"${pipeline}" is not a valid pipeline name (lowercase letters, digits, dashes)`)
    const prev = out.get(topic)
    if (prev !== undefined && prev !== pipeline) throw new SluiceError('SLUICE_ERR_CONFIG', `topic ${topic} is given to two pipelines (${prev}, ${pipeline})`)
    out.set(topic, pipeline)
  }
  for (const entry of pipelines.split(';').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^:]+):(.+)$/.exec(entry)
    if (m === null) throw new SluiceError('SLUICE_ERR_CONFIG', `SLUICE_PIPELINES entry "${entry}" must look like pipeline:topic1,topic2`)
    for (const t of (m[2] as string).split(',').map((s) => s.trim()).filter(Boolean)) add((m[1] as string).trim(), t)
  }
  for (const t of topics.split(',').map((s) => s.trim()).filter(Boolean)) add('entity-events', t)
  return out
}

function deepFreeze<T> (o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

export function loadConfig (env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const raw: Record<string, unknown> = {}
  for (const k of configVariables) if (env[k] !== undefined && env[k] !== '') raw[k] = env[k]
  if (!validate(raw)) {
    const why = (validate.errors ?? []).map((e) => {
      const name = e.instancePath.slice(1) || String(e.params.missingProperty ?? '')
      return `${name} ${e.message ?? 'is invalid'}${e.instancePath !== '' ? ` (got "${String(raw[e.instancePath.slice(1)])}")` : ''}`
    }).join('; ')
    throw new SluiceError('SLUICE_ERR_CONFIG', `invalid configuration: ${why}`)
  }
  const r = raw as Raw
  const pipelines = parsePipelines(r.SLUICE_PIPELINES, r.SLUICE_TOPICS)
  if (pipelines.size === 0) throw new SluiceError('SLUICE_ERR_CONFIG', 'no topic to consume: set SLUICE_TOPICS (default pipeline) or SLUICE_PIPELINES (pipeline:topic,...;...)')
  if (r.SLUICE_KAFKA_HEARTBEAT_MS * 3 > r.SLUICE_KAFKA_SESSION_TIMEOUT_MS) throw new SluiceError('SLUICE_ERR_CONFIG', 'SLUICE_KAFKA_HEARTBEAT_MS must be at most a third of SLUICE_KAFKA_SESSION_TIMEOUT_MS')
  if (r.SLUICE_RETRY_MAX_MS < r.SLUICE_RETRY_BASE_MS) throw new SluiceError('SLUICE_ERR_CONFIG', 'SLUICE_RETRY_MAX_MS must be at least SLUICE_RETRY_BASE_MS')
  const ingestTopic = r.SLUICE_INGEST_TOPIC === '' ? [...pipelines.keys()][0] as string : r.SLUICE_INGEST_TOPIC
  if (!pipelines.has(ingestTopic)) throw new SluiceError('SLUICE_ERR_CONFIG', `SLUICE_INGEST_TOPIC ${ingestTopic} is not a topic this worker consumes (SLUICE_TOPICS / SLUICE_PIPELINES): its pipeline validates what POST /events accepts`)
  if ((r.SLUICE_S3_ACCESS_KEY === '') !== (r.SLUICE_S3_SECRET_KEY === '')) throw new SluiceError('SLUICE_ERR_CONFIG', 'SLUICE_S3_ACCESS_KEY and SLUICE_S3_SECRET_KEY go together (set both, or neither for the AWS default credentials)')
  const config: Config = {
    kafka: { brokers: r.SLUICE_KAFKA_BROKERS, source: r.SLUICE_KAFKA_SOURCE, group: r.SLUICE_KAFKA_GROUP, clientId: r.SLUICE_CLIENT_ID, fetchBatch: r.SLUICE_FETCH_BATCH, fetchBatchBytes: r.SLUICE_FETCH_BATCH_BYTES, sessionTimeoutMs: r.SLUICE_KAFKA_SESSION_TIMEOUT_MS, heartbeatIntervalMs: r.SLUICE_KAFKA_HEARTBEAT_MS, prefetchBytes: r.SLUICE_KAFKA_PREFETCH_BYTES === 0 ? null : Math.max(r.SLUICE_KAFKA_PREFETCH_BYTES, 1048576), instanceId: r.SLUICE_KAFKA_INSTANCE_ID === '' ? null : r.SLUICE_KAFKA_INSTANCE_ID, debug: r.SLUICE_KAFKA_DEBUG === '' ? null : r.SLUICE_KAFKA_DEBUG, coordinatorTimeoutMs: r.SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS, downTimeoutMs: r.SLUICE_KAFKA_DOWN_TIMEOUT_MS },
    pipelines,
    pg: { url: r.SLUICE_PG_URL, schema: r.SLUICE_PG_SCHEMA, poolSize: r.SLUICE_PG_POOL_SIZE },
    batch: { maxRows: r.SLUICE_BATCH_MAX_ROWS, maxBytes: r.SLUICE_BATCH_MAX_BYTES, lingerMs: r.SLUICE_BATCH_LINGER_MS },
    inflight: { maxMessages: r.SLUICE_INFLIGHT_MAX_MESSAGES, maxBytes: r.SLUICE_INFLIGHT_MAX_BYTES, lowRatio: r.SLUICE_INFLIGHT_LOW_RATIO },
    retry: { baseMs: r.SLUICE_RETRY_BASE_MS, maxMs: r.SLUICE_RETRY_MAX_MS },
    flushConcurrency: r.SLUICE_FLUSH_CONCURRENCY,
    maxEventBytes: r.SLUICE_MAX_EVENT_BYTES,
    maxJsonDepth: r.SLUICE_MAX_JSON_DEPTH,
    projection: r.SLUICE_PROJECTION === 'on',
    allowAffectedRuntime: r.SLUICE_ALLOW_AFFECTED_RUNTIME === 'true',
    dlqTopicSuffix: r.SLUICE_DLQ_SUFFIX,
    http: { host: r.SLUICE_HTTP_HOST, port: r.SLUICE_HTTP_PORT },
    shutdownGraceMs: r.SLUICE_SHUTDOWN_GRACE_MS,
    logLevel: r.SLUICE_LOG_LEVEL,
    sqlDir: resolve(r.SLUICE_SQL_DIR),
    pipelinesDir: resolve(r.SLUICE_PIPELINES_DIR),
    schemasDir: resolve(r.SLUICE_SCHEMAS_DIR),
    s3: r.SLUICE_S3_BUCKET === ''
      ? null
      : {
          endpoint: r.SLUICE_S3_ENDPOINT === '' ? null : r.SLUICE_S3_ENDPOINT,
          region: r.SLUICE_S3_REGION,
          bucket: r.SLUICE_S3_BUCKET,
          accessKeyId: r.SLUICE_S3_ACCESS_KEY === '' ? null : r.SLUICE_S3_ACCESS_KEY,
          secretAccessKey: r.SLUICE_S3_SECRET_KEY === '' ? null : r.SLUICE_S3_SECRET_KEY,
          prefix: r.SLUICE_S3_PREFIX,
          partBytes: r.SLUICE_S3_PART_BYTES,
          queueSize: r.SLUICE_S3_QUEUE_SIZE,
          maxAttempts: r.SLUICE_S3_MAX_ATTEMPTS,
          chunkTimeoutMs: r.SLUICE_S3_CHUNK_TIMEOUT_MS,
          dumpShareMs: r.SLUICE_S3_DUMP_SHARE_MS,
          indexEntries: r.SLUICE_S3_INDEX_ENTRIES
        },
    snapshotsTopic: r.SLUICE_SNAPSHOTS_TOPIC,
    ingest: { topic: ingestTopic, maxEvents: r.SLUICE_INGEST_MAX_EVENTS, maxBodyBytes: r.SLUICE_INGEST_MAX_BODY_BYTES, maxQueued: r.SLUICE_INGEST_MAX_QUEUED, ackTimeoutMs: r.SLUICE_INGEST_ACK_TIMEOUT_MS },
    stream: { maxClients: r.SLUICE_STREAM_MAX_CLIENTS, bufferBytes: r.SLUICE_STREAM_BUFFER_BYTES, slowClientMs: r.SLUICE_STREAM_SLOW_CLIENT_MS, heartbeatMs: r.SLUICE_STREAM_HEARTBEAT_MS },
    api: {
      auth: r.SLUICE_API_AUTH,
      tokensFile: r.SLUICE_API_TOKENS_FILE === '' ? null : resolve(r.SLUICE_API_TOKENS_FILE),
      jwt: r.SLUICE_API_JWT_KEY_FILE === '' ? null : { keyFile: resolve(r.SLUICE_API_JWT_KEY_FILE), algorithm: r.SLUICE_API_JWT_ALGORITHM },
      rateLimitPerMinute: r.SLUICE_API_RATE_LIMIT,
      healthPort: r.SLUICE_HEALTH_PORT ?? null
    },
    control: { pollMs: r.SLUICE_CONTROL_POLL_MS, dlqRetentionDays: r.SLUICE_DLQ_RETENTION_DAYS }
  }
  return deepFreeze(config)
}

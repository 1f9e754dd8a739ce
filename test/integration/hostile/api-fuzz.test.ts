import fc from 'fast-check'
import { pino } from 'pino'
import { test } from 'tap'
import { routesOf } from '../../../src/api/errors-handler.ts'
import { buildApp } from '../../../src/app.ts'
import { loadConfig } from '../../../src/config/config.ts'
import { createSource } from '../../../src/kafka/create-source.ts'
import { loadPipelines } from '../../../src/pipeline/load-pipelines.ts'
import { writeTokens } from '../../helpers/api-tokens.ts'
import { fixture, waitFor } from '../../helpers/worker-harness.ts'

// Issue 8: the API never answers 5xx to bad input. Every route the app has (read from the app
// itself, so routes added later are fuzzed too) gets generated paths, queries and bodies built
// from its JSON Schemas, hostile values mixed in (NUL, lone surrogates, 1e400, times PostgreSQL
// refuses, malformed JSON, deep nesting); with a bearer token when the app checks them. Zero
// 5xx, and no answer carries PostgreSQL's error text.
// a fixed seed by default (CI runs what ran before it landed); SLUICE_FUZZ_SEED explores others
const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 366276644)
const PER_ROUTE = Number(process.env.SLUICE_FUZZ_PER_ROUTE ?? 60)
const PG_TEXT = /syntax error|invalid input|violates|relation "|column "|SQLSTATE|out of range for type|invalid byte sequence|unterminated|date\/time field|time zone displacement|numeric field overflow|value too long|pg_catalog|null value in column/i

type Schema = Record<string, any>

const hostileStrings = ['', 'a', 'Task', 'task_1', 's-1', '\u0000', 'a\u0000b', '\ud800', 'x\udfffy', '1e400', '-1', '💥', '\u202e', "'; DROP TABLE x; --", '%', '..', 'x'.repeat(300), '\\', '"']
const hostileTimes = ['0000-01-01T00:00:00Z', '2025-01-01T00:00:00+23:59', '2025-02-30T00:00:00Z', '2016-12-31T23:59:60Z', '2025-01-01T00:00:00Z', '9999-12-31T23:59:59-15:59', '0001-01-01T00:00:00+15:59', '2025-01-01T24:00:00Z', '2025-01-01T00:00:00.123456789Z']
const hostileNumbers = ['1e400', '-1e400', '1e-400', '-1', '0', '1', '9007199254740993', '1.5', 'NaN', '', 'abc', '9223372036854775808', '0x10']

/** A query or path value (text) for a property schema. */
function textFor (s: Schema | undefined): fc.Arbitrary<string> {
  const common = fc.oneof(fc.constantFrom(...hostileStrings), fc.string({ unit: 'binary', maxLength: 12 }))
  if (s === undefined) return common
  if (s.enum !== undefined) return fc.oneof(fc.constantFrom(...s.enum.map(String)), common)
  if (s.format === 'date-time') return fc.oneof(fc.constantFrom(...hostileTimes), common)
  if (s.type === 'integer' || s.type === 'number') return fc.oneof(fc.constantFrom(...hostileNumbers), fc.integer().map(String), common)
  if (s.type === 'boolean') return fc.oneof(fc.constantFrom('true', 'false', '1', 'yes'), common)
  return common
}

// JSON text the generator controls: markers replaced after JSON.stringify
const RAW: Record<string, string> = { '"@@1e400@@"': '1e400', '"@@lone@@"': '"\\ud800"', '"@@nul@@"': '"a\\u0000b"', '"@@deep@@"': '['.repeat(5000) + ']'.repeat(5000), '"@@big@@"': '123456789012345678901234567890' }

/** A body value for a schema: mostly its shape, with hostile values in its leaves. */
function valueFor (s: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(fc.constantFrom(...Object.keys(RAW).map((k) => k.slice(1, -1))), fc.constantFrom(...hostileStrings), fc.constantFrom(null, true, 0, -1, 1.5, 2 ** 53 + 2), fc.constantFrom(...hostileTimes))
  if (s === undefined || depth > 4) return leaf
  const variants = (s.oneOf ?? s.anyOf) as Schema[] | undefined
  if (variants !== undefined) return fc.oneof(...variants.map((v) => valueFor(v, depth + 1)), leaf)
  if (s.enum !== undefined) return fc.oneof(fc.constantFrom(...s.enum), leaf)
  if (s.type === 'object' || s.properties !== undefined) {
    const props = Object.entries((s.properties ?? {}) as Record<string, Schema>)
    return fc.oneof(
      {
        weight: 4,
        arbitrary: fc.tuple(...props.map(([, p]) => fc.option(valueFor(p, depth + 1), { freq: 3 })), fc.option(fc.tuple(fc.string({ maxLength: 6 }), leaf))).map((vals) => {
          const o: Record<string, unknown> = {}
          props.forEach(([k], i) => { if (vals[i] !== null) o[k] = vals[i] })
          const extra = vals[props.length] as [string, unknown] | null
          if (extra !== null) o[extra[0]] = extra[1]
          return o
        })
      },
      { weight: 1, arbitrary: leaf }
    )
  }
  if (s.type === 'array') return fc.oneof(fc.array(valueFor(s.items, depth + 1), { maxLength: 3 }), leaf)
  if (s.type === 'integer' || s.type === 'number') return fc.oneof(fc.integer(), leaf)
  if (s.format === 'date-time') return fc.oneof(fc.constantFrom(...hostileTimes), leaf)
  return leaf
}

/** encodeURIComponent, except that a lone surrogate becomes the bytes of an encoded surrogate (invalid UTF-8) */
function enc (s: string): string {
  let out = ''
  for (const ch of s) out += /^\p{Surrogate}$/u.test(ch) ? '%ED%A0%80' : encodeURIComponent(ch)
  return out
}

function bodyText (v: unknown): string {
  let text = JSON.stringify(v) ?? 'null'
  for (const [marker, raw] of Object.entries(RAW)) text = text.split(marker).join(raw)
  return text
}

const hostileBodies = ['{', '[]', 'null', '"x"', '{"a":1,"a":2}', '{"partitions":[{"topic":"x","partition":1e400}]}', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', '\u0000', '{"\\ud800":1}']

test(`a fuzz of every route from its schemas: no 5xx, no PostgreSQL text (seed ${SEED})`, { timeout: 600_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const { file, tokens } = writeTokens({ all: ['read', 'operate', 'ingest'] })
  const config = loadConfig({
    ...process.env,
    SLUICE_TOPICS: fx.topic,
    SLUICE_KAFKA_GROUP: fx.group,
    SLUICE_PG_URL: fx.pgUrl,
    SLUICE_PG_SCHEMA: fx.schema,
    SLUICE_API_AUTH: 'on',
    SLUICE_API_TOKENS_FILE: file,
    SLUICE_API_RATE_LIMIT: '1000000',
    SLUICE_KAFKA_SESSION_TIMEOUT_MS: '6000',
    SLUICE_KAFKA_HEARTBEAT_MS: '500'
  })
  const logger = pino({ level: 'silent' })
  const pipelines = await loadPipelines(config.pipelinesDir, config.pipelines, { maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth, schemasDir: config.schemasDir, s3: config.s3, snapshotsTopic: config.snapshotsTopic, retry: config.retry })
  const app = await buildApp({
    logger,
    brokers: config.kafka.brokers,
    group: config.kafka.group,
    clientId: config.kafka.clientId,
    source: await createSource(config, logger),
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
    api: config.api,
    control: config.control
  })
  t.teardown(async () => { await app.close(5000) })
  await app.runner.start()
  await waitFor('the worker to be in its group', () => app.runner.ready(), 240_000)
  // when the app checks tokens, the fuzz sends one with every scope (contract 3)
  const auth = config.api.auth === 'off' ? {} : { authorization: `Bearer ${tokens.all as string}` }

  const routes = routesOf(app.http).flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).map((method) => ({ method: String(method), url: r.url, schema: (r.schema ?? {}) as Schema })))
  t.ok(routes.length >= 10, `${routes.length} routes found in the app`)
  let total = 0
  const fives: string[] = []
  const leaks: string[] = []
  for (const [ri, r] of routes.entries()) {
    const paramNames = [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1] as string)
    const query = Object.entries((r.schema.querystring?.properties ?? {}) as Record<string, Schema>)
    const withBody = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)
    const arb = fc.record({
      params: fc.tuple(...paramNames.map((n) => fc.oneof(textFor(r.schema.params?.properties?.[n]).map(enc), fc.constantFrom('%00', 'a%00b', '%FF', '%ED%A0%80', '1e400', '%2F..')))),
      query: fc.tuple(...query.map(([, s]) => fc.option(textFor(s), { freq: 2 })), fc.option(fc.tuple(fc.constantFrom('x', 'limit', '__proto__'), textFor(undefined)))),
      body: withBody ? fc.oneof({ weight: 5, arbitrary: valueFor(r.schema.body).map(bodyText) }, { weight: 1, arbitrary: fc.constantFrom(...hostileBodies) }, { weight: 1, arbitrary: fc.constant(undefined) }) : fc.constant(undefined),
      type: fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain')
    })
    for (const req of fc.sample(arb, { seed: SEED + ri, numRuns: PER_ROUTE })) {
      let i = 0
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, () => req.params[i++] as string).replace(/\*$/, 'x')
      const qs = query.map(([k], k2) => [k, req.query[k2]] as const).filter(([, v]) => v !== null && v !== undefined)
      const extra = req.query[query.length] as [string, string] | null
      if (extra !== null) qs.push([extra[0], extra[1]])
      const url = path + (qs.length === 0 ? '' : '?' + qs.map(([k, v]) => `${enc(k)}=${enc(v as string)}`).join('&'))
      const res = await app.http.inject({ method: r.method as any, url, headers: { ...auth, ...(req.body === undefined ? {} : { 'content-type': req.type }) }, payload: req.body })
      total++
      if (res.statusCode >= 500 && !(res.statusCode === 503 && /S3 is not configured|unavailable/.test(res.body))) fives.push(`${r.method} ${url} ${req.body?.slice(0, 120) ?? ''} -> ${res.statusCode} ${res.body.slice(0, 300)}`)
      if (PG_TEXT.test(res.body) && !r.url.startsWith('/openapi') && !r.url.startsWith('/docs')) leaks.push(`${r.method} ${url} -> ${res.statusCode} ${res.body.slice(0, 300)}`)
    }
  }
  t.comment(`seed ${SEED}: ${total} requests over ${routes.length} routes`)
  t.same(fives.slice(0, 10), [], `no 5xx among ${total} requests (${fives.length} found; seed ${SEED})`)
  t.same(leaks.slice(0, 10), [], `no answer with PostgreSQL's error text (${leaks.length} found; seed ${SEED})`)
})

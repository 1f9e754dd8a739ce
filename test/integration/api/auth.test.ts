import { writeFileSync } from 'node:fs'
import { test } from 'tap'
import { api, hs256, writeTokens } from '../../helpers/api-tokens.ts'
import { fixture, freePort, startWorker, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

// Issue 10, auth: every mutating route refuses no token (401) and the wrong scope (403); read
// routes need `read`; health, readiness and metrics stay public (here on a port of their own);
// JWTs carry scopes too; each token is rate-limited; refused and accepted requests are audited;
// no token appears in the log; a bad tokens file stops the worker at start-up.
const RATE = 60

test('auth, scopes, rate limit, audit and the health port', { timeout: 180_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const { file, tokens } = writeTokens({ reader: ['read'], operator: ['read', 'operate'], ingester: ['ingest'], flood: ['read'] })
  const secret = uniqueName('jwt-secret')
  const keyFile = `${file}.key`
  writeFileSync(keyFile, secret)
  const healthPort = await freePort()
  const w = await startWorker(t, fx, {
    SLUICE_API_AUTH: 'on',
    SLUICE_API_TOKENS_FILE: file,
    SLUICE_API_JWT_KEY_FILE: keyFile,
    SLUICE_API_RATE_LIMIT: String(RATE),
    SLUICE_HEALTH_PORT: String(healthPort)
  }, { waitReady: false })
  await waitFor('the worker to be ready on its health port', async () => {
    if (w.proc.exitCode !== null) throw new Error(`worker exited: ${w.log().slice(-2000)}`)
    return (await api(healthPort, 'GET', '/health/ready')).status === 200
  }, 90_000)

  await t.test('public routes: health and metrics on the health port only, the OpenAPI document', async (t) => {
    t.equal((await api(healthPort, 'GET', '/health/live')).status, 200, 'GET /health/live on the health port: 200 without a token')
    t.equal((await api(healthPort, 'GET', '/health/ready')).status, 200, 'GET /health/ready on the health port: 200')
    t.equal((await api(healthPort, 'GET', '/metrics')).status, 200, 'GET /metrics on the health port: 200')
    t.equal((await api(w.port, 'GET', '/health/live')).status, 404, 'not served on the API port')
    t.equal((await api(w.port, 'GET', '/metrics')).status, 404, '/metrics not served on the API port')
    t.equal((await api(w.port, 'GET', '/openapi.json')).status, 200, 'GET /openapi.json: 200 without a token')
  })

  const doc = (await api(w.port, 'GET', '/openapi.json')).body
  const ops: Array<{ method: string, path: string, scope: string }> = []
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const scope = op.security?.[0]?.bearer?.[0]
      if (scope !== undefined) ops.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, '1'), scope })
    }
  }
  const mutating = ops.filter((o) => o.method !== 'GET' && o.method !== 'HEAD')
  t.ok(mutating.length >= 7, `the document lists ${mutating.length} mutating operations: ${mutating.map((o) => `${o.method} ${o.path}`).join(', ')}`)

  await t.test('every mutating route: 401 without a token or with a bad one, 403 without its scope', async (t) => {
    for (const o of mutating) {
      const none = await api(w.port, o.method, o.path, undefined, {})
      t.match(none, { status: 401, body: { statusCode: 401, code: 'SLUICE_ERR_UNAUTHORIZED', message: /bearer token/ } }, `${o.method} ${o.path} without a token: 401`)
      t.equal(none.headers.get('www-authenticate'), 'Bearer', 'with WWW-Authenticate: Bearer')
      t.match(await api(w.port, o.method, o.path, 'not-a-token', {}), { status: 401 }, `${o.method} ${o.path} with an unknown token: 401`)
      const other = o.scope === 'ingest' ? tokens.operator : tokens.reader
      t.match(await api(w.port, o.method, o.path, other, {}), { status: 403, body: { code: 'SLUICE_ERR_FORBIDDEN', message: new RegExp(`lacks the ${o.scope} scope`) } }, `${o.method} ${o.path} without the ${o.scope} scope: 403`)
    }
    for (const o of ops.filter((x) => x.method === 'GET')) {
      t.equal((await api(w.port, 'GET', o.path)).status, 401, `GET ${o.path} without a token: 401`)
      if (o.scope === 'read') t.equal((await api(w.port, 'GET', o.path, tokens.ingester)).status, 403, `GET ${o.path} with an ingest-only token: 403`)
    }
    t.equal((await api(w.port, 'GET', '/admin/status', tokens.reader)).status, 200, 'GET /admin/status with a read token: 200')
  })

  await t.test('an operator pauses and resumes; the audit has who, route, body and outcome', async (t) => {
    const body = { partitions: [{ topic: fx.topic, partition: 0 }] }
    t.equal((await api(w.port, 'POST', '/admin/pause', tokens.operator, body)).status, 200, 'POST /admin/pause as operator: 200')
    t.equal((await api(w.port, 'POST', '/admin/resume', tokens.operator, body)).status, 200, 'POST /admin/resume as operator: 200')
    t.equal((await api(w.port, 'GET', '/admin/audit', tokens.reader)).status, 403, 'GET /admin/audit needs operate: 403 for a reader')
    let audit: any
    await waitFor('the audit rows of the refused and accepted requests', async () => {
      audit = (await api(w.port, 'GET', '/admin/audit?limit=1000', tokens.operator)).body
      return audit.entries.filter((e: any) => e.outcome === 'refused').length >= 3 * mutating.length
    }, 15_000)
    const pause = audit.entries.find((e: any) => e.route === '/admin/pause' && e.outcome === 'ok')
    t.match(pause, { actor: 'operator', authMethod: 'token', method: 'POST', statusCode: 200, body }, 'the pause is audited with its actor and body')
    t.ok(audit.entries.some((e: any) => e.actor === 'unauthenticated' && e.statusCode === 401 && e.route === '/admin/pause'), 'a refused request without a token is audited as unauthenticated, 401')
    t.ok(audit.entries.some((e: any) => e.actor === 'reader' && e.statusCode === 403), 'a request without the scope is audited with its actor, 403')
    t.notOk(audit.entries.some((e: any) => e.method === 'GET'), 'reads are not audited')
  })

  await t.test('JWT (HS256): scopes from the claims, bad signature and expiry refused', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    const alice = hs256(secret, { sub: 'alice', scope: 'read operate', exp: now + 600 })
    const bob = hs256(secret, { sub: 'bob', scope: 'read', exp: now + 600 })
    t.equal((await api(w.port, 'POST', '/admin/resume', alice)).status, 200, 'a JWT with operate: 200')
    t.match(await api(w.port, 'POST', '/admin/resume', bob), { status: 403, body: { message: /jwt:bob lacks the operate scope/ } }, 'a JWT without operate: 403')
    t.equal((await api(w.port, 'POST', '/admin/resume', hs256('another secret', { sub: 'eve', scope: 'operate' }))).status, 401, 'a JWT signed with another key: 401')
    t.equal((await api(w.port, 'POST', '/admin/resume', hs256(secret, { sub: 'alice', scope: 'operate', exp: now - 60 }))).status, 401, 'an expired JWT: 401')
    const audit = (await api(w.port, 'GET', '/admin/audit?actor=jwt:alice', tokens.operator)).body
    t.match(audit.entries[0], { actor: 'jwt:alice', authMethod: 'jwt', route: '/admin/resume' }, 'the JWT subject is the audited actor')
  })

  await t.test(`rate limit: ${RATE} requests a minute per token, then 429 with Retry-After`, async (t) => {
    const codes: number[] = []
    for (let i = 0; i < RATE + 1; i++) codes.push((await api(w.port, 'GET', '/admin/offsets', tokens.flood)).status)
    t.same(codes.slice(0, RATE), new Array(RATE).fill(200), `the first ${RATE}: 200`)
    const over = await api(w.port, 'GET', '/admin/offsets', tokens.flood)
    t.match(over, { status: 429, body: { statusCode: 429, code: 'SLUICE_ERR_RATE_LIMITED' } }, 'then 429')
    t.ok(Number(over.headers.get('retry-after')) > 0, `Retry-After: ${over.headers.get('retry-after')}`)
    t.equal((await api(w.port, 'GET', '/admin/offsets', tokens.reader)).status, 200, 'another token is not limited by it')
  })

  t.test('no token or hash in the log', async (t) => {
    const log = w.log()
    for (const [name, token] of Object.entries(tokens)) t.notOk(log.includes(token), `${name}'s token is not in the log`)
    t.notOk(log.includes(secret), 'the JWT secret is not in the log')
  })
})

test('a tokens file with a bad entry stops the worker at start-up', { timeout: 90_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 1 })
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown scope', [{ name: 'ok', scopes: ['read'], sha256: 'a'.repeat(64) }, { name: 'typo', scopes: ['raed'], sha256: 'b'.repeat(64) }], /entry 1 \("typo"\) has an unknown scope "raed"/],
    ['a hash that is not sha256 hex', [{ name: 'short', scopes: ['read'], sha256: 'abc' }], /entry 0 \("short"\) needs "sha256"/],
    ['not JSON', 'name: x', /is not valid JSON/]
  ]
  for (const [what, content, message] of cases) {
    const file = `.sluice/test-tokens/${uniqueName('bad')}.json`
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
    const w = await startWorker(t, fx, { SLUICE_API_AUTH: 'on', SLUICE_API_TOKENS_FILE: file }, { waitReady: false })
    t.equal(await w.exited, 2, `${what}: exit code 2`)
    t.match(w.log(), /SLUICE_ERR_CONFIG: API tokens file/, `${what}: SLUICE_ERR_CONFIG naming the tokens file`)
    t.match(w.log(), message, `${what}: the entry and the reason are named`)
    if (typeof content !== 'string') t.notOk(w.log().includes('b'.repeat(64)), `${what}: no hash in the log`)
  }
})

test('auth on without credentials: reads open, every mutating route 401', { timeout: 90_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 1 })
  const w = await startWorker(t, fx, { SLUICE_API_AUTH: 'on' })
  t.equal((await api(w.port, 'GET', '/admin/status')).status, 200, 'GET /admin/status: 200')
  t.match(await api(w.port, 'POST', '/admin/pause'), { status: 401, body: { message: /no API credentials are configured/ } }, 'POST /admin/pause: 401 naming the missing configuration')
  t.notOk((await api(w.port, 'GET', '/admin/status')).body.pausedAll, 'nothing paused')
})

import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { test } from 'tap'
import { fixture, startWorker, uniqueName } from '../helpers/worker-harness.ts'

// The k6 scripts users run (bench/k6) go through a shim of the k6 API at a few iterations:
// a script that no longer matches the API, or the endpoints it calls, fails here.
const run = promisify(execFile)

interface Summary { requests: number, checks: Record<string, { passes: number, fails: number }>, thresholds: Array<{ metric: string, expr: string, value: number, ok: boolean }> }

async function k6 (script: string, env: Record<string, string>, extra: string[] = []): Promise<{ code: number, summary: Summary | null, stderr: string }> {
  const args = ['test/k6/shim/run.ts', script, '--vus', '2', '--iterations', '3', ...extra, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`])]
  try {
    const { stdout, stderr } = await run(process.execPath, args, { timeout: 300_000 })
    return { code: 0, summary: JSON.parse(stdout) as Summary, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    let summary: Summary | null = null
    try { summary = JSON.parse(e.stdout) as Summary } catch {}
    return { code: e.code, summary, stderr: e.stderr }
  }
}

test('bench/k6/ingest.js and read.js pass through the shim against a worker', { timeout: 400_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 3 })
  const w = await startWorker(t, fx)
  // latency bounds of a loaded CI machine at a handful of requests say nothing: the thresholds
  // are evaluated (and their figures printed) with a loose P95_MS; load runs use the scripts' own
  const env = { BASE_URL: `http://127.0.0.1:${w.port}`, VUS: '2', BATCH: '10', SLEEP: '0', ENTITIES: '3', EVENTS_PER_ENTITY: '5', P95_MS: '10000' }
  for (const script of ['bench/k6/ingest.js', 'bench/k6/read.js']) {
    const r = await k6(script, env)
    t.equal(r.code, 0, `${script}: exit 0${r.code === 0 ? '' : `: ${r.stderr.slice(-1500)}`}`)
    t.ok(r.summary !== null && r.summary.requests >= 6, `${script}: ${r.summary?.requests ?? 0} requests`)
    for (const [name, c] of Object.entries(r.summary?.checks ?? {})) t.equal(c.fails, 0, `${script}: check "${name}" passed ${c.passes} times`)
    for (const th of r.summary?.thresholds ?? []) t.ok(th.ok, `${script}: threshold ${th.metric} ${th.expr} (${th.value.toFixed(3)})`)
    t.ok((r.summary?.thresholds.length ?? 0) >= 3, `${script}: its thresholds were evaluated`)
  }
  const rows = await fx.pool.query("SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs WHERE entity = 'K6Load'")
  t.same(rows.rows[0], { n: 2 * 3 * 10, d: 2 * 3 * 10 }, 'ingest.js: 2 VUs x 3 iterations x 10 events stored once each')
})

test('the shim counts failed requests as k6: outside 200-399 by default, outside the expected statuses when a script names them', { timeout: 60_000 }, async (t) => {
  const server = createServer((req, res) => { res.statusCode = req.url === '/missing' ? 404 : 200; res.end('{}') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  mkdirSync('.sluice', { recursive: true })
  const file = `.sluice/${uniqueName('k6-expected')}.js`
  writeFileSync(file, `import http from 'k6/http'
export const options = { thresholds: { http_req_failed: ['rate<0.5'], 'http_req_failed{name:expected}': ['rate==0'], 'http_req_failed{name:default}': ['rate==1'] } }
const NOT_YET = http.expectedStatuses(200, { min: 404, max: 404 })
export default function () {
  http.get('${base}/missing', { tags: { name: 'expected' }, responseCallback: NOT_YET })
  http.get('${base}/missing', { tags: { name: 'default' } })
  http.get('${base}/', { tags: { name: 'expected' }, responseCallback: NOT_YET })
}
`)
  t.teardown(() => rmSync(file, { force: true }))
  const r = await k6(file, {})
  t.equal(r.code, 0, `exit 0${r.code === 0 ? '' : `: ${r.stderr.slice(-1500)}`}`)
  t.match(r.summary?.thresholds, [
    { metric: 'http_req_failed', value: 1 / 3, ok: true },
    { metric: 'http_req_failed{name:expected}', value: 0, ok: true },
    { metric: 'http_req_failed{name:default}', value: 1, ok: true }
  ], 'only the 404 without a responseCallback is a failed request')
})

test('the shim fails a script that no longer matches the k6 API it knows', { timeout: 60_000 }, async (t) => {
  mkdirSync('.sluice', { recursive: true })
  const bad = (name: string, body: string): string => {
    const file = `.sluice/${uniqueName(name)}.js`
    writeFileSync(file, body)
    t.teardown(() => rmSync(file, { force: true }))
    return file
  }
  const unknownMetric = bad('k6-metric', "import http from 'k6/http'\nexport const options = { thresholds: { http_req_durations: ['p(95)<200'] } }\nexport default function () {}\n")
  t.match(await k6(unknownMetric, {}), { code: 1, stderr: /unknown metric "http_req_durations"/ })
  const badExpr = bad('k6-expr', "export const options = { thresholds: { http_req_duration: ['p95 < 200'] } }\nexport default function () {}\n")
  t.match(await k6(badExpr, {}), { code: 1, stderr: /not an expression k6 reads/ })
  const missing = bad('k6-api', "import { group } from 'k6'\nexport default function () { group('x', () => {}) }\n")
  t.not((await k6(missing, {})).code, 0, 'an API the shim does not have (k6 group): fails')
  const unknownParam = bad('k6-param', "import http from 'k6/http'\nexport default function () { http.get('http://127.0.0.1:9/', { redirects: 0 }) }\n")
  t.match(await k6(unknownParam, {}), { code: 1, stderr: /request param "redirects" is not one the shim knows/ })
  const failing = bad('k6-threshold', "import { check } from 'k6'\nexport const options = { thresholds: { checks: ['rate>0.99'] } }\nexport default function () { check(1, { 'is two': (v) => v === 2 }) }\n")
  t.match(await k6(failing, {}), { code: 99, summary: { thresholds: [{ metric: 'checks', ok: false }] } }, 'a threshold that fails: exit 99, as k6')
})

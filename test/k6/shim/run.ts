// A small stand-in for `k6 run` (k6 itself is AGPL and stays out of the toolchain): runs a
// script of bench/k6 at a few iterations with the part of the k6 API it uses (`k6`, `k6/http`,
// __ENV/__VU/__ITER, options with stages and thresholds, setup/default/teardown), checks that
// its options are ones k6 understands, evaluates its thresholds, and exits like k6: 0, 99 when
// a threshold fails, 1 (here also for an exception in an iteration, and for an unknown option).
//   node test/k6/shim/run.ts <script> [--vus 2] [--iterations 2] [-e KEY=VALUE ...]
import { registerHooks } from 'node:module'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { checks, metrics } from './state.ts'

const SHIMS: Record<string, string> = { k6: new URL('./k6.ts', import.meta.url).href, 'k6/http': new URL('./http.ts', import.meta.url).href }
registerHooks({
  resolve (specifier, context, next) {
    const url = SHIMS[specifier]
    return url === undefined ? next(specifier, context) : { url, shortCircuit: true }
  }
})

const args = process.argv.slice(2)
let script = ''
let vus = 2
let iterations = 2
const env: Record<string, string> = {}
for (let i = 0; i < args.length; i++) {
  const a = args[i] as string
  if (a === '--vus') vus = Number(args[++i])
  else if (a === '--iterations') iterations = Number(args[++i])
  else if (a === '-e') { const [k, ...v] = (args[++i] ?? '').split('='); env[k as string] = v.join('=') } else script = a
}
if (script === '') { process.stderr.write('usage: run.ts <script> [--vus N] [--iterations N] [-e K=V]\n'); process.exit(1) }

const g = globalThis as Record<string, unknown>
g.__ENV = env
g.__VU = 0
g.__ITER = 0

const DURATION = /^(\d+(\.\d+)?(ms|s|m|h))+$/
const KNOWN_OPTIONS = new Set(['stages', 'vus', 'iterations', 'duration', 'thresholds', 'setupTimeout', 'teardownTimeout', 'noConnectionReuse', 'userAgent', 'insecureSkipTLSVerify', 'summaryTrendStats', 'tags'])
const THRESHOLD = /^(p\((\d+(\.\d+)?)\)|avg|min|max|med|rate|count)\s*(<=|>=|<|>|==)\s*(-?\d+(\.\d+)?)$/
const METRICS: Record<string, 'trend' | 'rate' | 'counter'> = { http_req_duration: 'trend', http_req_failed: 'rate', http_reqs: 'counter', checks: 'rate', iterations: 'counter' }

function problem (why: string): never {
  process.stderr.write(`k6 shim: ${script}: ${why}\n`)
  process.exit(1)
}

function validateOptions (o: Record<string, any>): void {
  for (const k of Object.keys(o)) if (!KNOWN_OPTIONS.has(k)) problem(`option "${k}" is not one the shim (or this script's k6 use) knows`)
  for (const s of o.stages ?? []) if (!DURATION.test(String(s.duration)) || !Number.isInteger(s.target) || s.target < 0) problem(`stage ${JSON.stringify(s)} is not {duration, target}`)
  for (const k of ['setupTimeout', 'teardownTimeout', 'duration']) if (o[k] !== undefined && !DURATION.test(String(o[k]))) problem(`${k} "${String(o[k])}" is not a duration`)
  for (const [name, list] of Object.entries(o.thresholds ?? {})) {
    const metric = name.replace(/\{.*\}$/, '')
    if (METRICS[metric] === undefined) problem(`threshold on unknown metric "${name}"`)
    for (const expr of list as unknown[]) if (typeof expr !== 'string' || !THRESHOLD.test(expr.trim())) problem(`threshold "${String(expr)}" on ${name} is not an expression k6 reads`)
  }
}

function stat (values: number[], agg: string, kind: string): number {
  if (agg === 'count') return values.length
  if (agg === 'rate') return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length
  if (kind !== 'trend') problem(`${agg} applies to trends only`)
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return 0
  if (agg === 'avg') return sorted.reduce((a, b) => a + b, 0) / sorted.length
  if (agg === 'min') return sorted[0] as number
  if (agg === 'max') return sorted[sorted.length - 1] as number
  const p = agg === 'med' ? 50 : Number(/p\((.*)\)/.exec(agg)?.[1])
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

function compare (a: number, op: string, b: number): boolean {
  return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : op === '>=' ? a >= b : a === b
}

const url = pathToFileURL(resolve(script)).href
const main = await import(url) as Record<string, any>
validateOptions(main.options ?? {})
if (typeof main.default !== 'function') problem('no default function')
const data = typeof main.setup === 'function' ? main.setup() : undefined
let errors = 0
for (let vu = 1; vu <= vus; vu++) {
  // each VU has its own module instance, as in k6
  const mod = await import(`${url}?vu=${vu}`) as Record<string, any>
  for (let iter = 0; iter < iterations; iter++) {
    g.__VU = vu
    g.__ITER = iter
    try {
      mod.default(data)
      metrics.set('iterations', { kind: 'counter', samples: [...(metrics.get('iterations')?.samples ?? []), { value: 1, tags: {} }] })
    } catch (err) {
      errors++
      process.stderr.write(`k6 shim: VU ${vu} iteration ${iter}: ${(err as Error).stack ?? String(err)}\n`)
    }
  }
}
g.__VU = 0
let teardownError = ''
try {
  if (typeof main.teardown === 'function') main.teardown(data)
} catch (err) {
  teardownError = (err as Error).message
}

const results: Array<{ metric: string, expr: string, value: number, ok: boolean }> = []
for (const [name, list] of Object.entries((main.options?.thresholds ?? {}) as Record<string, string[]>)) {
  const metric = name.replace(/\{.*\}$/, '')
  const filter = /\{(.*)\}$/.exec(name)?.[1]?.split(',').map((kv) => kv.split(':').map((s) => s.trim()) as [string, string]) ?? []
  const m = metrics.get(metric)
  const values = (m?.samples ?? []).filter((s) => filter.every(([k, v]) => s.tags[k] === v)).map((s) => s.value)
  for (const expr of list) {
    const [, agg, , , op, bound] = THRESHOLD.exec(expr.trim()) as RegExpExecArray
    const value = stat(values, agg as string, METRICS[metric] as string)
    results.push({ metric: name, expr, value, ok: compare(value, op as string, Number(bound)) })
  }
}
const summary = {
  script,
  vus,
  iterations,
  requests: metrics.get('http_reqs')?.samples.length ?? 0,
  checks: Object.fromEntries(checks),
  thresholds: results,
  iterationErrors: errors,
  teardownError
}
process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
process.exit(errors > 0 || teardownError !== '' ? 1 : results.every((r) => r.ok) ? 0 : 99)

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import { families, scrape } from '../../helpers/prom.ts'
import { fixture, startWorker } from '../../helpers/worker-harness.ts'
import { runTool, toolPath } from '../../helpers/k8s-tools.ts'

// The PrometheusRule's groups pass `promtool check rules` and `promtool test rules`
// (alerts.promtool.yaml fires every alert), and every metric the rules and the Grafana
// dashboard query is one a live worker exports.

const ruleFile = 'k8s/overlays/monitoring/prometheusrule.yaml'
const dashboardFile = 'k8s/overlays/monitoring/dashboard.json'

/** The rule groups of the PrometheusRule as a plain Prometheus rule file (its `spec`, dedented). */
function ruleGroups (): string {
  const text = readFileSync(ruleFile, 'utf8')
  const at = text.indexOf('\nspec:\n')
  if (at < 0) throw new Error(`${ruleFile} has no top-level spec`)
  return text.slice(at + '\nspec:\n'.length).split('\n').map((l) => l.replace(/^ {2}/, '')).join('\n')
}

function alertNames (): string[] {
  return [...ruleGroups().matchAll(/^\s+- alert: (\S+)/gm)].map((m) => m[1] as string)
}

/** The PromQL expressions of the rules and of the dashboard's panels. */
function expressions (): string[] {
  const rules = ruleGroups()
  const out: string[] = []
  for (const m of rules.matchAll(/expr: \|\n((?: {10,}.*\n)+)/g)) out.push(m[1] as string)
  for (const m of rules.matchAll(/expr: ([^|\n].*)$/gm)) out.push(m[1] as string)
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> }
  for (const p of dashboard.panels) for (const target of p.targets) out.push(target.expr)
  return out
}

test('promtool checks and tests the alert rules; every alert fires in a test', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'rules.yaml'), ruleGroups())
  copyFileSync('test/integration/k8s/alerts.promtool.yaml', join(dir, 'alerts.promtool.yaml'))
  const promtool = toolPath('promtool')

  const check = await runTool(promtool, ['check', 'rules', join(dir, 'rules.yaml')])
  t.equal(check.code, 0, `promtool check rules: ${check.stdout}${check.stderr}`)
  const names = alertNames()
  t.ok(names.length >= 5, `${names.length} alerts`)
  t.match(check.stdout, new RegExp(`SUCCESS: ${names.length} rules found`), 'promtool found every rule')

  const run = await runTool(promtool, ['test', 'rules', join(dir, 'alerts.promtool.yaml')])
  t.equal(run.code, 0, `promtool test rules: ${run.stdout}${run.stderr}`)

  // every alert has a test case where it is expected to fire (exp_alerts with labels)
  const cases = readFileSync('test/integration/k8s/alerts.promtool.yaml', 'utf8')
  for (const name of names) {
    t.match(cases, new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`), `${name} fires in a test`)
  }

  // and the test is not a formality: a rule that can never fire fails it
  writeFileSync(join(dir, 'rules.yaml'), ruleGroups().replace('up{job="sluice"} == 0', 'up{job="sluice"} == 2'))
  const broken = await runTool(promtool, ['test', 'rules', join(dir, 'alerts.promtool.yaml')])
  t.not(broken.code, 0, 'promtool test fails when SluiceWorkerDown cannot fire')
})

test('every metric the rules and the dashboard query is exported by a live worker', async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const w = await startWorker(t, fx)
  const exported = families(await scrape(w))
  const queried = new Set<string>()
  for (const expr of expressions()) {
    for (const m of expr.matchAll(/\b((?:sluice|process|nodejs)_[a-z0-9_]+)\b/g)) queried.add(m[1] as string)
  }
  t.ok(queried.size >= 12, `${queried.size} metrics queried`)
  for (const name of queried) {
    // a histogram's series are its family name plus _bucket, _sum and _count
    const family = name.replace(/_(bucket|sum|count)$/, '')
    t.ok(exported.has(name) || exported.has(family), `${name} is exported`)
  }
  // `up` is Prometheus' own per-target series; everything else must be the worker's
  for (const expr of expressions()) {
    t.ok(/\b(?:sluice|process|nodejs)_/.test(expr) || /^up\{/.test(expr.trim()), `the query names a worker metric: ${expr.trim()}`)
  }
  t.equal(await w.stop(), 0, 'worker stops cleanly')
})

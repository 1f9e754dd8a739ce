import { readFileSync } from 'node:fs'
import { test } from 'tap'
import { loadConfig } from '../../../src/config/config.ts'
import { build, kubeconform, overlays } from '../../helpers/k8s-tools.ts'

// Every kustomize overlay builds and passes kubeconform's strict validation (core schemas from
// kubernetes-validate, KEDA and prometheus-operator from their CRD models); a misspelled field
// and a wrong type are rejected, so the validation is not a formality. Then the settings that
// must agree with the worker: termination grace above its shutdown grace, no more replicas
// than partitions, probes on the worker's health routes.

/** partitions of the topic the overlays are written for (docs/kubernetes.md) */
const PARTITIONS = 12

for (const dir of overlays) {
  test(`k8s/${dir} builds and validates strictly`, async (t) => {
    const yaml = await build(dir)
    const r = await kubeconform(yaml)
    t.equal(r.code, 0, `kubeconform accepts k8s/${dir}: ${r.stdout}${r.stderr}`)
    t.ok(r.summary.valid >= 5, `${r.summary.valid} resources valid`)
    t.equal(r.summary.invalid + r.summary.errors + r.summary.skipped, 0, 'none invalid, missing a schema or skipped')
  })
}

/** [overlay, what, text in the built YAML, replacement, the kind that must be rejected] */
const broken: Array<[string, string, RegExp, string, string]> = [
  ['base', 'misspelled Deployment field', /terminationGracePeriodSeconds:/, 'terminationGracePeriodSecond:', 'Deployment'],
  ['base', 'misspelled container field', /readinessProbe:/, 'readynessProbe:', 'Deployment'],
  ['base', 'wrong type (replicas as a word)', /replicas: 2/, 'replicas: two', 'Deployment'],
  ['base', 'wrong type (port as a list)', /containerPort: 8080/, 'containerPort: [8080]', 'Deployment'],
  ['base', 'misspelled PodDisruptionBudget field', /maxUnavailable: 1\n {2}selector/, 'maxUnavailabe: 1\n  selector', 'PodDisruptionBudget'],
  ['overlays/hpa', 'misspelled HPA field', /maxReplicas: 12/, 'maxReplica: 12', 'HorizontalPodAutoscaler'],
  ['overlays/keda', 'misspelled ScaledObject field', /maxReplicaCount: 12/, 'maxReplicaCounts: 12', 'ScaledObject'],
  ['overlays/keda', 'wrong type in ScaledObject', /minReplicaCount: 1/, 'minReplicaCount: one', 'ScaledObject'],
  ['overlays/monitoring', 'misspelled PrometheusRule field', /- alert: SluiceWorkerDown/, '- alrt: SluiceWorkerDown', 'PrometheusRule'],
  ['overlays/monitoring', 'wrong type in ServiceMonitor', /interval: 15s/, 'interval: {a: 1}', 'ServiceMonitor']
]

for (const [dir, what, from, to, kind] of broken) {
  test(`kubeconform rejects k8s/${dir} with a ${what}`, async (t) => {
    const yaml = await build(dir)
    t.match(yaml, from, 'the text to break is there')
    const r = await kubeconform(yaml.replace(from, to))
    t.not(r.code, 0, 'kubeconform fails')
    t.equal(r.summary.invalid, 1, `exactly one resource invalid: ${r.stdout}`)
    const invalid = (JSON.parse(r.stdout) as { resources: Array<{ kind: string, status: string }> }).resources
      .filter((x) => x.status === 'statusInvalid').map((x) => x.kind)
    t.same(invalid, [kind], `the ${kind} is the one rejected`)
  })
}

test('the manifests agree with the worker', async (t) => {
  const base = await build('base')
  const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(base)?.[1])
  const env = Object.fromEntries([...base.matchAll(/^ {2}(SLUICE_[A-Z0-9_]+): "?([^"\n]*)"?$/gm)].map((m) => [m[1], m[2]]))
  // the ConfigMap's settings are valid for the worker's own configuration loader
  const config = loadConfig({ ...env, SLUICE_PG_URL: 'postgres://x@localhost/x' })
  t.ok(grace * 1000 > config.shutdownGraceMs, `termination grace ${grace} s above SLUICE_SHUTDOWN_GRACE_MS ${config.shutdownGraceMs}`)
  t.equal(config.http.host, '0.0.0.0', 'the API listens on the pod address')
  t.match(base, /readinessProbe:\n\s+failureThreshold: \d+\n\s+httpGet:\n\s+path: \/health\/ready/, 'readiness on /health/ready')
  t.match(base, /livenessProbe:\n\s+failureThreshold: \d+\n\s+httpGet:\n\s+path: \/health\/live/, 'liveness on /health/live')
  t.match(base, /containerPort: 8080/, 'container port is SLUICE_HTTP_PORT')
  t.equal(config.http.port, 8080)

  const keda = await build('overlays/keda')
  t.ok(Number(/maxReplicaCount: (\d+)/.exec(keda)?.[1]) <= PARTITIONS, 'KEDA: never more replicas than partitions')
  t.match(keda, /allowIdleConsumers: "false"/, 'KEDA: no idle consumers')
  const hpa = await build('overlays/hpa')
  t.ok(Number(/maxReplicas: (\d+)/.exec(hpa)?.[1]) <= PARTITIONS, 'HPA: never more replicas than partitions')

  const monitoring = await build('overlays/monitoring')
  const dashboard = JSON.parse(readFileSync('k8s/overlays/monitoring/dashboard.json', 'utf8'))
  t.ok(dashboard.panels.length >= 10, 'the dashboard has its panels')
  t.match(monitoring, /grafana_dashboard: "1"/, 'the dashboard ConfigMap carries the sidecar label')
})

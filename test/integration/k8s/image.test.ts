import { execFileSync } from 'node:child_process'
import { test } from 'tap'
import { runTool, toolPath } from '../../helpers/k8s-tools.ts'
import {
  assertStoredExactlyOnce, fixture, freePort, produceSample, uniqueName, waitAllHandled, waitFor
} from '../../helpers/worker-harness.ts'

// The container image, built with podman from the Dockerfile (scripts/image.sh; the test
// command builds it first, so the build here is the cached one), run with --network host
// against the local stack: it becomes ready, stores a sample workload exactly once and exits 0
// on SIGTERM within the shutdown grace. It runs as a non-root user, has no compiler, and its
// librdkafka has SSL, SASL, zstd and lz4. hadolint passes on the Dockerfile.

const IMAGE = process.env.SLUICE_IMAGE ?? 'localhost/sluice:dev'
const GRACE_MS = 30_000
const podman = async (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => runTool('scripts/image.sh', ['podman', ...args])

test('hadolint passes on the Dockerfile', async (t) => {
  const r = await runTool(toolPath('hadolint'), ['--no-color', 'Dockerfile'])
  t.equal(r.code, 0, `hadolint: ${r.stdout}${r.stderr}`)
})

test('the image builds (cached), runs as non-root, has no compiler and a complete librdkafka', async (t) => {
  const started = Date.now()
  const build = await runTool('scripts/image.sh', ['build', IMAGE])
  t.equal(build.code, 0, `scripts/image.sh build: ${build.stderr.slice(-3000)}`)
  t.comment(`build (warm) ${((Date.now() - started) / 1000).toFixed(1)} s`)
  const id = await podman(['run', '--rm', '--entrypoint', 'id', IMAGE, '-u'])
  t.equal(id.stdout.trim(), '10001', 'runs as uid 10001')
  const cc = await podman(['run', '--rm', '--entrypoint', 'bash', IMAGE, '-c', 'for c in gcc cc g++ c++ make; do command -v $c; done; true'])
  t.equal(cc.stdout.trim(), '', 'no compiler or make in the image')
  const features = await podman(['run', '--rm', '--entrypoint', 'node', IMAGE, '-e', "console.log(require('node-rdkafka').features.join(','))"])
  for (const f of ['ssl', 'sasl_gssapi', 'sasl_scram', 'zstd', 'lz4']) t.match(features.stdout, new RegExp(`\\b${f}\\b`), `librdkafka has ${f}`)
  const leftovers = await podman(['run', '--rm', '--entrypoint', 'bash', IMAGE, '-c', 'ls -d node_modules/node-rdkafka/deps node_modules/node-rdkafka/build/Release/obj.target 2>/dev/null; true'])
  t.equal(leftovers.stdout.trim(), '', "node-rdkafka's build leftovers are gone")
  const size = execFileSync('scripts/image.sh', ['podman', 'image', 'inspect', '--format', '{{.Size}}', IMAGE], { encoding: 'utf8' })
  t.comment(`image size ${(Number(size) / 1048576).toFixed(0)} MiB`)
})

test('the image, run with --network host, stores a workload exactly once and stops cleanly on SIGTERM', async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 3 })
  const port = await freePort()
  const name = uniqueName('sluice-image').toLowerCase()
  const env: Record<string, string> = {
    SLUICE_TOPICS: fx.topic,
    SLUICE_KAFKA_GROUP: fx.group,
    SLUICE_PG_SCHEMA: fx.schema,
    SLUICE_HTTP_HOST: '127.0.0.1',
    SLUICE_HTTP_PORT: String(port),
    SLUICE_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    SLUICE_KAFKA_SESSION_TIMEOUT_MS: '6000',
    SLUICE_KAFKA_HEARTBEAT_MS: '500',
    SLUICE_S3_PREFIX: `test/${fx.schema}/`
  }
  for (const k of ['SLUICE_KAFKA_BROKERS', 'SLUICE_PG_URL', 'SLUICE_S3_ENDPOINT', 'SLUICE_S3_REGION', 'SLUICE_S3_BUCKET', 'SLUICE_S3_ACCESS_KEY', 'SLUICE_S3_SECRET_KEY']) {
    const v = process.env[k]
    if (v !== undefined && v !== '') env[k] = v
  }
  const run = await podman(['run', '-d', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/tmp',
    ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), IMAGE])
  t.equal(run.code, 0, `podman run: ${run.stderr}`)
  t.teardown(async () => { await podman(['rm', '-f', '-t', '0', name]) })
  await waitFor('the container to be ready', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => null)
    if (res === null) {
      const state = await podman(['inspect', '--format', '{{.State.Status}}', name])
      if (state.stdout.trim() === 'exited') throw new Error(`container exited: ${(await podman(['logs', name])).stderr.slice(-2000)}`)
    }
    return res?.status === 200
  }, 120_000)

  const produced = await produceSample(fx.topic, { count: 3000, duplicateRatio: 0.01 })
  await waitAllHandled(fx, produced.messages)
  await assertStoredExactlyOnce(t, fx, produced)

  const stopped = Date.now()
  const kill = await podman(['kill', '--signal', 'TERM', name])
  t.equal(kill.code, 0, 'SIGTERM sent')
  const wait = await podman(['wait', name])
  const tookMs = Date.now() - stopped
  t.equal(wait.stdout.trim(), '0', `the worker exits 0 on SIGTERM: ${(await podman(['logs', '--tail', '20', name])).stdout}`)
  t.ok(tookMs < GRACE_MS, `within the grace (${tookMs} ms < ${GRACE_MS} ms)`)
})

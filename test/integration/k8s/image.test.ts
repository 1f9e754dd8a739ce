import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, openSync, readFileSync, statSync } from 'node:fs'
import { test } from 'tap'
import { runTool, toolPath } from '../../helpers/k8s-tools.ts'
import {
  assertStoredExactlyOnce, brokers, fixture, freePort, produceSample, storedOffsetSum, uniqueName,
  waitAllHandled, waitForProgress
} from '../../helpers/worker-harness.ts'

// The container image: hadolint passes on the Dockerfile; the image built by scripts/image.sh
// (keyed by its inputs: the test command builds it before tap, so here it is found, not built)
// runs with --network host against the local stack, as the Deployment runs it (read-only root,
// a tmpfs /tmp, no capabilities, its own non-root user), reaches ready, stores a sample workload
// exactly once, and exits 0 on SIGTERM within the shutdown grace.

const GRACE_MS = 30_000
const EVENTS = 5_000

/** podman with the project's configuration (scripts/image.sh podman). */
async function podman (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await runTool('scripts/image.sh', ['podman', ...args])
}

test('hadolint passes on the Dockerfile', async (t) => {
  const r = await runTool(toolPath('hadolint'), ['Dockerfile'])
  t.equal(r.code, 0, `hadolint: ${r.stdout}${r.stderr}`)
})

test('the image runs against the local stack: ready, exactly once, exit 0 on SIGTERM', async (t) => {
  // a no-op when the test command built it; otherwise a build with podman's layer cache
  const build = await new Promise<{ code: number | null, out: string }>((resolve) => {
    const p = spawn('scripts/image.sh', ['build'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    p.on('exit', (code) => { resolve({ code, out: code === 0 ? out.trim().split('\n').pop() ?? '' : err.slice(-3000) }) })
  })
  if (build.code !== 0) throw new Error(`scripts/image.sh build failed:\n${build.out}`)
  const image = build.out
  t.match(image, /^localhost\/sluice:in-[0-9a-f]{16}$/, `image ${image}`)

  const inspect = await podman('image', 'inspect', '--format', '{{.Size}} {{.Config.User}}', image)
  t.equal(inspect.code, 0, `podman image inspect ${inspect.stderr}`)
  const [size, user] = inspect.stdout.trim().split(' ')
  t.equal(user, '10001:10001', 'runs as the non-root user sluice')
  t.comment(`image size ${Math.round(Number(size) / 1048576)} MiB`)
  const compilers = await podman('run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', image, '-c', 'command -v gcc cc g++ c++ make || true')
  t.equal(compilers.code, 0, `a shell runs in the image ${compilers.stderr}`)
  t.equal(compilers.stdout.trim(), '', 'no compiler or make in the image')

  const fx = await fixture(t, 'rdkafka', { partitions: 6 })
  const port = await freePort()
  const name = uniqueName('sluice-image-test').replaceAll('_', '-')
  const env: Record<string, string> = {
    SLUICE_KAFKA_BROKERS: brokers,
    SLUICE_PG_URL: fx.pgUrl,
    SLUICE_PG_SCHEMA: fx.schema,
    SLUICE_TOPICS: fx.topic,
    SLUICE_KAFKA_GROUP: fx.group,
    SLUICE_CLIENT_ID: name,
    SLUICE_HTTP_HOST: '127.0.0.1',
    SLUICE_HTTP_PORT: String(port),
    SLUICE_KAFKA_SESSION_TIMEOUT_MS: '6000',
    SLUICE_KAFKA_HEARTBEAT_MS: '500',
    SLUICE_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    SLUICE_API_AUTH: 'off',
    SLUICE_S3_PREFIX: `test/${fx.schema}/`
  }
  for (const k of ['SLUICE_S3_ENDPOINT', 'SLUICE_S3_REGION', 'SLUICE_S3_BUCKET', 'SLUICE_S3_ACCESS_KEY', 'SLUICE_S3_SECRET_KEY']) {
    const v = process.env[k]
    if (v === undefined || v === '') throw new Error(`${k} is not set: the test command starts S3 (scripts/stack.sh env)`)
    env[k] = v
  }
  mkdirSync('.sluice/test-logs', { recursive: true })
  const logFile = `.sluice/test-logs/${name}.log`
  const out = openSync(logFile, 'a')
  // as the Deployment runs it: read-only root filesystem with a writable /tmp, no capabilities
  const run = spawn('scripts/image.sh', [
    'podman', 'run', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/tmp',
    '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    image
  ], { stdio: ['ignore', out, out] })
  const exited = once(run, 'exit').then(([code]) => code as number | null)
  t.teardown(async () => { await podman('rm', '--force', '--time', '0', name) })
  const log = (): string => readFileSync(logFile, 'utf8')

  // progress: the container's log grows while it starts (migrations, sinks, the group join)
  await waitForProgress(`the container to be ready (log ${logFile})`, async () => {
    if (run.exitCode !== null) throw new Error(`the container exited with ${run.exitCode}:\n${log().slice(-3000)}`)
    return (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => null))?.status === 200
  }, () => statSync(logFile).size)
  t.pass('ready')

  const top = await podman('top', name, 'pid', 'user', 'args')
  t.match(top.stdout, /\n\s*1\s+sluice\s+node /, 'the worker is node as PID 1, user sluice (it receives SIGTERM itself)', { found: top.stdout })

  const produced = await produceSample(fx.topic, { count: EVENTS, duplicateRatio: 0.01, poisonEvery: 1000 })
  await waitAllHandled(fx, produced.messages)
  t.equal(await storedOffsetSum(fx), produced.messages, `${produced.messages} messages durable`)
  await assertStoredExactlyOnce(t, fx, produced)
  const dlq = await fx.pool.query('SELECT count(*)::int AS n FROM sluice_dlq WHERE source_topic = $1', [fx.topic])
  t.equal(dlq.rows[0].n, produced.poison.length, `${produced.poison.length} poison messages dead-lettered`)

  const t0 = performance.now()
  const kill = await podman('kill', '--signal', 'TERM', name)
  t.equal(kill.code, 0, `podman kill --signal TERM ${kill.stderr}`)
  const code = await exited
  const tookMs = performance.now() - t0
  t.equal(code, 0, code === 0 ? 'exit code 0 on SIGTERM' : `exit code ${code} on SIGTERM; log:\n${log().slice(-3000)}`)
  t.ok(tookMs < GRACE_MS, `stopped in ${Math.round(tookMs)} ms, within the ${GRACE_MS} ms grace`)
  t.match(log(), /"reason":"SIGTERM"/, 'the worker logged the SIGTERM it received')
})

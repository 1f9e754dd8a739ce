import { test } from 'tap'
import { fixture, produceSample, startWorker, waitFor } from '../../helpers/worker-harness.ts'

// Fatal errors stop the worker with a one-line explanation and a non-zero exit:
// 2 for bad configuration or a failed start-up, 1 for a fatal error while running.

function explanation (log: string): string[] {
  return log.split('\n').filter((l) => l.startsWith('sluice: '))
}

test('a bad setting: exit 2 and one line naming the variable', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const w = await startWorker(t, fx, { SLUICE_BATCH_MAX_ROWS: 'lots' }, { waitReady: false })
  t.equal(await w.exited, 2)
  const lines = explanation(w.log())
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^sluice: SLUICE_ERR_CONFIG: invalid configuration: SLUICE_BATCH_MAX_ROWS must be integer \(got "lots"\)$/)
})

test('PostgreSQL refuses the credentials: exit 2 with SLUICE_ERR_PG_AUTH', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const url = new URL(fx.pgUrl)
  url.password = 'wrong-password'
  const w = await startWorker(t, fx, { SLUICE_PG_URL: url.toString() }, { waitReady: false })
  t.equal(await w.exited, 2)
  const lines = explanation(w.log())
  t.equal(lines.length, 1)
  t.match(lines[0], /^sluice: SLUICE_ERR_PG_AUTH: .*password authentication failed/)
  t.notMatch(w.log(), /wrong-password/, 'the password is not logged')
})

test('the event table disappears while running: exit 1 with SLUICE_ERR_PG_SCHEMA, offsets unmoved', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const w = await startWorker(t, fx)
  await fx.pool.query('DROP TABLE entity_event_logs CASCADE')
  await produceSample(fx.topic, { count: 50, seed: 5 })
  t.equal(await w.exited, 1)
  const lines = explanation(w.log())
  t.equal(lines.length, 1)
  t.match(lines[0], /^sluice: SLUICE_ERR_PG_SCHEMA: .*entity_event_logs/)
  const stored = await fx.pool.query('SELECT count(*)::int AS n FROM sluice_offsets')
  t.equal(stored.rows[0].n, 0, 'no offset moved past the failed batch')
})

test('a pipeline that does not exist: exit 2 with SLUICE_ERR_CONFIG', async (t) => {
  const fx = await fixture(t, 'rdkafka')
  const w = await startWorker(t, fx, { SLUICE_TOPICS: '', SLUICE_PIPELINES: `no-such-pipeline:${fx.topic}` }, { waitReady: false })
  await waitFor('the worker to exit', () => w.proc.exitCode !== null, 30_000)
  t.equal(await w.exited, 2)
  t.match(explanation(w.log())[0], /SLUICE_ERR_CONFIG: pipeline "no-such-pipeline" not found/)
})

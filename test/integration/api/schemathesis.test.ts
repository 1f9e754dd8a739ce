import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, writeFileSync } from 'node:fs'
import { test } from 'tap'
import { startReady, writeTokens } from '../../helpers/api-tokens.ts'
import { produceTickets, tickets } from '../../helpers/ticket-events.ts'
import { fixture, storedOffsetSum, waitFor } from '../../helpers/worker-harness.ts'

// Issue 10: Schemathesis (PyPI, scripts/schemathesis.sh) against a live worker with a token of
// every scope, over every operation of /openapi.json: no 5xx, no response that violates its
// schema. The number of generated cases is printed (the output is in .sluice/schemathesis.log).
// a fixed seed by default, so CI runs the cases that were run before it landed; set
// SLUICE_SCHEMATHESIS_SEED to explore others
const SEED = process.env.SLUICE_SCHEMATHESIS_SEED ?? '20261126'

test('schemathesis over every operation of /openapi.json', { timeout: 1_500_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 2 })
  const { file, tokens } = writeTokens({ all: ['read', 'operate', 'ingest'] })
  const w = await startReady(t, fx, { SLUICE_API_AUTH: 'on', SLUICE_API_TOKENS_FILE: file, SLUICE_API_RATE_LIMIT: '1000000' })
  // some data: stored events and dead letters for the routes to find
  await produceTickets(fx.topic, tickets(6, 1, 2), [{ key: 'bad', value: 'not json', partition: 0 }])
  await waitFor('the sample to be handled', async () => (await storedOffsetSum(fx)) === 7, 60_000)

  const st = spawn('scripts/schemathesis.sh', [`http://127.0.0.1:${w.port}`, tokens.all as string, '--max-examples', process.env.SLUICE_SCHEMATHESIS_EXAMPLES ?? '10', '--seed', SEED, '--workers', '1', '--no-color'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer): void => { out += d.toString(); appendFileSync('.sluice/schemathesis.log', d) }
  writeFileSync('.sluice/schemathesis.log', '')
  st.stdout.on('data', keep)
  st.stderr.on('data', keep)
  const [code] = await once(st, 'exit')
  const summary = out.split('\n').filter((l) => /generated|passed|failed|errored|Operations|Test cases|Failures|Errors/i.test(l)).slice(-12)
  for (const l of summary) t.comment(l.trim())
  t.equal(code, 0, `schemathesis passed (exit ${String(code)})${code === 0 ? '' : ':\n' + out.slice(-6000)}`)
  t.match(out, /\d+ generated/, 'the number of generated cases is reported')
  t.notOk(w.proc.exitCode !== null, 'the worker is still running')
})

import { test } from 'tap'
import type { Test } from 'tap'
import { api, startReady, writeTokens } from '../../helpers/api-tokens.ts'
import { produceTickets, tickets } from '../../helpers/ticket-events.ts'
import { fixture, sources, waitFor } from '../../helpers/worker-harness.ts'
import type { Fixture, SourceKind, Worker } from '../../helpers/worker-harness.ts'

// Issue 10, group-wide control: a pause sent to worker A stops a partition owned by worker B;
// it survives a rebalance (B killed, A takes its partitions and keeps it paused) and a restart
// of both; a resume sent to (new) B restarts it. The delay between request and effect is
// measured (printed as a comment and checked to be bounded).
const PARTITIONS = 4
const POLL_MS = 1000

async function rowsOf (fx: Fixture, partition: number): Promise<number> {
  return Number((await fx.pool.query('SELECT count(*)::int AS n FROM entity_event_logs WHERE source_partition = $1', [partition])).rows[0].n)
}

/** Partition -> owner (worker name), from a worker's group view. */
async function owners (w: Worker, token: string): Promise<Map<number, string>> {
  const s = (await api(w.port, 'GET', '/admin/status', token)).body
  const out = new Map<number, string>()
  for (const wk of s.group.workers) if (wk.alive) for (const p of wk.status.partitions) out.set(p.partition, wk.worker)
  return out
}

async function pausedOn (w: Worker, token: string, partition: number): Promise<boolean | undefined> {
  const s = (await api(w.port, 'GET', '/admin/status', token)).body
  return s.partitions.find((p: any) => p.partition === partition)?.paused
}

/** ms from `since` until the condition holds, polled every 10 ms */
async function delay (t: Test, what: string, since: number, cond: () => Promise<boolean>): Promise<number> {
  await waitFor(what, cond, 30_000, 10)
  const ms = Date.now() - since
  t.comment(`${what}: ${ms} ms after the request`)
  return ms
}

async function run (t: Test, source: SourceKind): Promise<void> {
  const fx = await fixture(t, source, { partitions: PARTITIONS })
  const { file, tokens } = writeTokens({ ops: ['read', 'operate'] })
  const tok = tokens.ops as string
  const env = (name: string): Record<string, string> => ({ SLUICE_API_AUTH: 'on', SLUICE_API_TOKENS_FILE: file, SLUICE_CONTROL_POLL_MS: String(POLL_MS), SLUICE_CLIENT_ID: `${fx.group}-${name}` })
  const a = await startReady(t, fx, env('a'))
  let b = await startReady(t, fx, env('b'))
  let own = new Map<number, string>()
  await waitFor('both workers to share the partitions', async () => {
    own = await owners(a, tok)
    return own.size === PARTITIONS && new Set(own.values()).size === 2
  }, 60_000)
  const target = [...own].find(([, w]) => w.endsWith('-b'))?.[0] as number
  t.comment(`partition ${target} is owned by worker b`)

  let batch = 0
  const produce = async (): Promise<void> => { await produceTickets(fx.topic, tickets(PARTITIONS * 5, 1, PARTITIONS, (batch++) * 1000)) }
  await produce()
  await waitFor('the first events to be stored', async () => Number((await fx.pool.query('SELECT count(*)::int AS n FROM entity_event_logs')).rows[0].n) === PARTITIONS * 5, 60_000)

  const t0 = Date.now()
  const paused = await api(a.port, 'POST', '/admin/pause', tok, { partitions: [{ topic: fx.topic, partition: target }] })
  t.equal(paused.status, 200, 'POST /admin/pause to worker a: 200')
  t.same(paused.body.group.desired.partitions.map((p: any) => [p.partition, p.pausedBy]), [[target, 'ops']], 'the desired pause is the group\'s, by ops')
  const pauseDelay = await delay(t, `partition ${target} paused on worker b`, t0, async () => (await pausedOn(b, tok, target)) === true)
  t.ok(pauseDelay < 3 * POLL_MS, `applied by worker b within ${3 * POLL_MS} ms (${pauseDelay} ms)`)

  await produce()
  await waitFor('the other partitions to store their new events', async () => {
    for (let p = 0; p < PARTITIONS; p++) if (p !== target && (await rowsOf(fx, p)) !== 10) return false
    return true
  }, 60_000)
  t.equal(await rowsOf(fx, target), 5, `partition ${target} stored nothing while paused`)

  // rebalance: b is killed, a takes every partition and keeps the paused one paused
  await b.kill()
  await waitFor('worker a to own every partition', async () => (await api(a.port, 'GET', '/admin/status', tok)).body.partitions.length === PARTITIONS, 60_000)
  t.equal(await pausedOn(a, tok, target), true, `after the rebalance, worker a has partition ${target} paused`)
  t.same((await api(a.port, 'GET', '/admin/status', tok)).body.partitions.find((p: any) => p.partition === target).pausedBy, ['admin'], 'paused by admin (the group\'s desired state)')
  await produce()
  await waitFor('the other partitions to store the third batch', async () => {
    for (let p = 0; p < PARTITIONS; p++) if (p !== target && (await rowsOf(fx, p)) !== 15) return false
    return true
  }, 60_000)
  t.equal(await rowsOf(fx, target), 5, `partition ${target} still stored nothing`)

  // restart of both
  t.equal(await a.stop(), 0, 'worker a stopped')
  const a2 = await startReady(t, fx, env('a2'))
  b = await startReady(t, fx, env('b2'))
  await waitFor('both restarted workers to share the partitions', async () => {
    own = await owners(a2, tok)
    return own.size === PARTITIONS && new Set(own.values()).size === 2 && [...own.values()].every((w) => w.endsWith('-a2') || w.endsWith('-b2'))
  }, 60_000)
  const holder = own.get(target)?.endsWith('-a2') === true ? a2 : b
  t.equal(await pausedOn(holder, tok, target), true, `after restarting both, partition ${target} is still paused (on ${own.get(target)})`)
  t.equal(await rowsOf(fx, target), 5, 'and has stored nothing')

  const t1 = Date.now()
  const resumed = await api(b.port, 'POST', '/admin/resume', tok, { partitions: [{ topic: fx.topic, partition: target }] })
  t.equal(resumed.status, 200, 'POST /admin/resume to worker b: 200')
  await delay(t, `partition ${target} resumed on its owner`, t1, async () => (await pausedOn(holder, tok, target)) === false)
  await delay(t, `partition ${target}'s 10 waiting events stored`, t1, async () => (await rowsOf(fx, target)) === 15)
  const c = await fx.pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs')
  t.same(c.rows[0], { n: PARTITIONS * 15, d: PARTITIONS * 15 }, 'every event stored exactly once')
}

for (const source of sources) {
  test(`group-wide pause across a rebalance and a restart (${source})`, { timeout: 300_000 }, async (t) => run(t, source))
}

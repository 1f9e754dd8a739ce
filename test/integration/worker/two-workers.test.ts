import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import type { Test } from 'tap'
import { committedOffsets } from '../../../src/kafka/admin.ts'
import {
  assertStoredExactlyOnce, brokers, fixture, produceSample, sources, stallMs, startWorker, waitAllHandled, waitFor, waitForProgress
} from '../../helpers/worker-harness.ts'
import type { Fixture, Produced, SourceKind, Worker } from '../../helpers/worker-harness.ts'

// Two replicas in one group share a 6-partition topic while events keep arriving; one of
// them is stopped gracefully mid-stream and the other takes its partitions over. Nothing is
// lost or stored twice, and the advisory Kafka commits follow the offsets stored in PostgreSQL.

const PARTITIONS = 6
const EVENTS = 60_000
/** production waits here (bounded) until A and B share the partitions, then until A owns them all */
const GATE_SPLIT = 10_000
const GATE_TAKEOVER = 40_000
/** B is stopped once this much is produced (and it stored batches of its own) */
const STOP_B_AT = 24_000
// a gate holds production back until the rebalance it waits for is seen, at most this long
const GATE_MAX_MS = stallMs

interface Deferred { promise: Promise<void>, resolve: () => void }
function deferred (): Deferred {
  let done!: () => void
  const promise = new Promise<void>((resolve) => { done = resolve })
  return { promise, resolve: done }
}

/** batches this worker made durable (its sluice_batch_rows histogram count) */
async function batchesStored (w: Worker): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text()
  return Number(/^sluice_batch_rows_count (\d+)/m.exec(text)?.[1] ?? 0)
}

async function owned (w: Worker): Promise<number[]> {
  const status = await w.get('/admin/status') as { partitions: Array<{ partition: number }> }
  return status.partitions.map((p) => p.partition).sort((a, b) => a - b)
}

async function storedOffsets (fx: Fixture): Promise<Map<number, number>> {
  const r = await fx.pool.query('SELECT partition, next_offset FROM sluice_offsets WHERE consumer_group = $1 AND topic = $2', [fx.group, fx.topic])
  return new Map(r.rows.map((row) => [Number(row.partition), Number(row.next_offset)]))
}

async function twoWorkersRun (t: Test, fx: Fixture): Promise<void> {
  const [a, b] = await Promise.all([startWorker(t, fx), startWorker(t, fx)])

  const shared = deferred()
  const takenOver = deferred()
  let gatesTimedOut = false
  const gate = async (d: Deferred): Promise<void> => {
    if (await Promise.race([d.promise.then(() => true), sleep(GATE_MAX_MS, false, { ref: false })]) === false) gatesTimedOut = true
  }
  let sentSoFar = 0
  // continuous production in the background: 2,000 per batch, small pauses in between
  const producing: Promise<Produced> = produceSample(fx.topic, { count: EVENTS, duplicateRatio: 0.01, seed: 7 }, async (sent) => {
    sentSoFar = sent
    await sleep(100)
    if (sent >= GATE_SPLIT && sent < GATE_SPLIT + 2000) await gate(shared)
    if (sent >= GATE_TAKEOVER && sent < GATE_TAKEOVER + 2000) await gate(takenOver)
  })
  let produced: Produced
  try {
    // both members got a share, together everything, nobody twice
    let split: [number[], number[]] = [[], []]
    await waitFor('A and B to share the 6 partitions', async () => {
      split = await Promise.all([owned(a), owned(b)])
      const all = [...split[0], ...split[1]].sort((x, y) => x - y)
      return split[0].length > 0 && split[1].length > 0 && all.join() === '0,1,2,3,4,5'
    }, stallMs, 200)
    t.pass(`A owns [${split[0].join()}], B owns [${split[1].join()}]`)
    shared.resolve()

    // B leaves once it has written batches of its own, while events keep arriving
    await waitForProgress('B to store a batch mid-stream', async () => sentSoFar >= STOP_B_AT && (await batchesStored(b)) > 0,
      async () => sentSoFar + await batchesStored(b), 50)
    t.comment(`stopping B after ${sentSoFar} of ${EVENTS} events were produced`)
    t.equal(await b.stop(), 0, 'B stops gracefully with exit code 0')
    t.notOk(a.proc.exitCode !== null || a.proc.signalCode !== null, 'A is still running')

    let aOwns: number[] = []
    await waitFor('A to own all 6 partitions', async () => (aOwns = await owned(a)).length === PARTITIONS, stallMs, 200)
    t.same(aOwns, [0, 1, 2, 3, 4, 5], 'A lists all 6 partitions after B left')
    takenOver.resolve()
  } finally {
    shared.resolve()
    takenOver.resolve()
    produced = await producing
  }
  t.notOk(gatesTimedOut, 'production went on around the stop of B (no gate timed out)')

  await waitAllHandled(fx, produced.messages)
  await assertStoredExactlyOnce(t, fx, produced)

  // the advisory group commit catches up with the offsets stored with the rows
  const stored = await storedOffsets(fx)
  t.equal(stored.size, PARTITIONS, 'every partition has a stored offset')
  let committed = new Map<number, number>()
  await waitFor('the Kafka group commits to reach the stored offsets', async () => {
    committed = await committedOffsets(brokers, fx.group, fx.topic)
    return [...stored].every(([p, o]) => committed.get(p) === o)
  }, 30_000, 250).catch(() => {})
  t.same(Object.fromEntries(committed), Object.fromEntries(stored), 'committed offsets == stored offsets')

  t.equal(await a.stop(), 0, 'A stops cleanly')
}

test('two workers in one group, one leaves mid-stream', async (t) => {
  for (const source of sources) {
    await t.test(source, async (t) => {
      const fx = await fixture(t, source as SourceKind, { partitions: PARTITIONS })
      await twoWorkersRun(t, fx)
    })
  }
})

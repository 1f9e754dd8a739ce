import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, MessagesStreamModes, stringDeserializers } from '@platformatic/kafka'
import { test } from 'tap'
import type { Test } from 'tap'
import { deleteGroups } from '../../../src/kafka/admin.ts'
import { parseBrokers } from '../../../src/kafka/brokers.ts'
import { poisonKinds } from '../../../src/workload/seed-mix.ts'
import type { PoisonKind } from '../../../src/workload/seed-mix.ts'
import {
  assertStoredExactlyOnce, brokers, fixture, produceSample, sources, startWorker, storedOffsetSum,
  uniqueName, waitAllHandled, waitForCount
} from '../../helpers/worker-harness.ts'
import type { Fixture, SourceKind } from '../../helpers/worker-harness.ts'

// Principle 1 end to end: the real worker is SIGKILLed three times while it writes (no
// graceful shutdown, no flush, no Kafka commit), restarted each time, and in the end the
// event log holds every valid event exactly once, in offset order per entity, and the DLQ
// table every poison message exactly once. The DLQ topic is at least once by design.

const EVENTS = 200_000
const POISON_EVERY = 20_000
const KILLS = 3
/** the first kill comes this long after the worker is ready (assignment, first fetches) */
const FIRST_KILL_MS: [number, number] = [0, 1500]
/** the later ones once this share of what is left has become durable since the restart */
const LATER_KILL_SHARE: [number, number] = [0.1, 0.35]

const CODE: Record<PoisonKind, string> = {
  'malformed-json': 'SLUICE_ERR_DECODE',
  'missing-event-type': 'SLUICE_ERR_ENVELOPE',
  'wrong-type': 'SLUICE_ERR_ENVELOPE',
  oversize: 'SLUICE_ERR_TOO_LARGE',
  'nul-byte': 'SLUICE_ERR_NUL',
  'bad-timestamp': 'SLUICE_ERR_TIMESTAMP'
}

/**
 * Reads `<topic>.dlq` from the beginning until `done` holds for the distinct
 * `key=error code` pairs seen (or the timeout): what the dead-letter topic holds.
 */
async function readDlqTopic (topic: string, done: (seen: Set<string>) => boolean, timeoutMs = 30_000): Promise<{ seen: Set<string>, messages: number }> {
  const group = uniqueName('e2e_dlq_reader')
  const consumer = new Consumer({
    clientId: uniqueName('e2e-dlq-reader'),
    bootstrapBrokers: parseBrokers(brokers),
    groupId: group,
    deserializers: stringDeserializers,
    autocommit: false
  })
  const seen = new Set<string>()
  let messages = 0
  try {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false })
    // a missing dead letter ends the loop (and fails the comparison) instead of hanging
    const guard = setTimeout(() => { stream.close().catch(() => {}) }, timeoutMs)
    try {
      for await (const m of stream) {
        messages++
        seen.add(`${String(m.key)}=${String(m.headers.get('sluice-error-code'))}`)
        if (done(seen)) break
      }
    } finally {
      clearTimeout(guard)
      await stream.close().catch(() => {})
    }
  } finally {
    await consumer.close(true).catch(() => {})
    await deleteGroups(brokers, [group]).catch(() => {})
  }
  return { seen, messages }
}

function between ([lo, hi]: [number, number]): number {
  return lo + Math.random() * (hi - lo)
}

async function killAndRestartRun (t: Test, fx: Fixture): Promise<number> {
  const produced = await produceSample(fx.topic, { count: EVENTS, duplicateRatio: 0.01, poisonEvery: POISON_EVERY })
  const total = produced.messages
  t.equal(new Set(produced.poison).size, poisonKinds.length, `the ${produced.poison.length} poison messages cover every kind`)
  t.ok(produced.messages > produced.eventIds.size + produced.poison.length, 'producer duplicates were sent')

  const started = Date.now()
  let worker = await startWorker(t, fx)
  for (let k = 0; k < KILLS; k++) {
    if (k === 0) {
      await sleep(Math.floor(between(FIRST_KILL_MS)))
    } else {
      const from = await storedOffsetSum(fx)
      const target = from + Math.floor(between(LATER_KILL_SHARE) * (total - from))
      await waitForCount(`kill ${k + 1}: messages durable (of ${total})`, async () => await storedOffsetSum(fx), target, 10)
      // a random extra moment, so the kill does not always land right after a commit
      await sleep(Math.floor(Math.random() * 80))
    }
    const before = await storedOffsetSum(fx)
    t.ok(before < total, `kill ${k + 1} lands while work is in progress (${before} of ${total} durable)`)
    await worker.kill()
    t.equal(worker.proc.signalCode, 'SIGKILL', `worker ${k + 1} was SIGKILLed`)
    worker = await startWorker(t, fx)
  }
  await waitAllHandled(fx, total)
  t.comment(`${fx.source}: ${total} messages handled across ${KILLS} kills in ${Date.now() - started} ms`)

  await assertStoredExactlyOnce(t, fx, produced)

  // each entity's events are stored in offset order (versions grow with the offset)
  const order = await fx.pool.query(`SELECT count(*)::int AS n FROM (
      SELECT version, lag(version) OVER (PARTITION BY source_partition, entity_id ORDER BY source_offset) AS prev
      FROM entity_event_logs) s
    WHERE prev IS NOT NULL AND version <= prev`)
  t.equal(order.rows[0].n, 0, 'versions increase with the offset for every entity')
  const spread = await fx.pool.query('SELECT count(DISTINCT entity_id)::int AS n FROM entity_event_logs')
  t.ok(spread.rows[0].n > 1000, `many entities checked (${spread.rows[0].n})`)

  // the DLQ table holds exactly the poison sent, each origin once, with its reason
  const expected = [...produced.poisonKeys].map(([key, kind]) => `${key}=${CODE[kind]}`).sort()
  const dlq = await fx.pool.query<{ message_key: Buffer, error_code: string }>('SELECT message_key, error_code FROM sluice_dlq')
  const origins = await fx.pool.query('SELECT count(DISTINCT (source_topic, source_partition, source_offset))::int AS n FROM sluice_dlq')
  t.equal(dlq.rows.length, produced.poison.length, `the DLQ table holds ${produced.poison.length} dead letters`)
  t.equal(origins.rows[0].n, dlq.rows.length, 'each origin once')
  t.same(dlq.rows.map((r) => `${r.message_key.toString()}=${r.error_code}`).sort(), expected, 'exactly the poison sent, each with its error code')

  // the DLQ topic holds at least the poison (a kill between produce and commit repeats one)
  const want = new Set(expected)
  const topic = await readDlqTopic(fx.dlqTopic, (seen) => [...want].every((e) => seen.has(e)))
  t.same([...topic.seen].sort(), expected, `the DLQ topic holds every poison message and nothing else (${topic.messages} read)`)

  t.equal(await worker.stop(), 0, 'the last worker stops cleanly')
  return total
}

test('exactly once across SIGKILLs', async (t) => {
  for (const source of sources) {
    await t.test(source, async (t) => {
      const fx = await fixture(t, source as SourceKind)
      await killAndRestartRun(t, fx)
    })
  }
})

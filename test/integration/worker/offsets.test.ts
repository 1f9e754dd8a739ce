import { test } from 'tap'
import { api, startReady, writeTokens } from '../../helpers/api-tokens.ts'
import { produceTickets, ticketSchemas, tickets } from '../../helpers/ticket-events.ts'
import { fixture, sources, storedOffsetSum, waitFor } from '../../helpers/worker-harness.ts'

// Issue 10, offsets (KIP-875-like): moved back by timestamp on a paused partition, then
// resumed: the stored rows are unchanged (nothing doubled) and an earlier dead letter whose
// cause was fixed (the schema) is now stored. Refused while the partition is not paused.
for (const source of sources) {
  test(`offsets moved back by timestamp (${source})`, { timeout: 240_000 }, async (t) => {
    const fx = await fixture(t, source, { partitions: 1 })
    const { file, tokens } = writeTokens({ ops: ['read', 'operate'] })
    const tok = tokens.ops as string
    const schemas = ticketSchemas(3)
    const env = { SLUICE_API_AUTH: 'on', SLUICE_API_TOKENS_FILE: file, SLUICE_SCHEMAS_DIR: schemas, SLUICE_CONTROL_POLL_MS: '500' }
    let w = await startReady(t, fx, env)

    const early = tickets(5, 1, 1)
    await produceTickets(fx.topic, early)
    await waitFor('the early events', async () => (await storedOffsetSum(fx)) === 5, 60_000)
    await new Promise((resolve) => setTimeout(resolve, 50)) // the next messages' timestamps are later than this one
    const since = new Date().toISOString()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const good = tickets(6, 2, 1, 10)
    const poison = tickets(3, 7, 1, 20)
    await produceTickets(fx.topic, [...good, ...poison])
    await waitFor('every message handled', async () => (await storedOffsetSum(fx)) === 14, 60_000)
    const count = async (sql: string): Promise<number> => Number((await fx.pool.query(sql)).rows[0].n)
    t.equal(await count('SELECT count(*) AS n FROM entity_event_logs'), 11, '11 events stored')
    t.equal(await count('SELECT count(*) AS n FROM sluice_dlq'), 3, '3 dead letters (priority over the schema\'s maximum)')
    const before = (await fx.pool.query('SELECT event_id, "timestamp", event_data, source_offset FROM entity_event_logs ORDER BY event_id')).rows

    // the schema is fixed; the worker restarted
    t.equal(await w.stop(), 0, 'worker stopped')
    ticketSchemas(10, schemas)
    w = await startReady(t, fx, env)

    const move = { partitions: [{ topic: fx.topic, partition: 0 }], to: { timestamp: since } }
    t.match(await api(w.port, 'POST', '/admin/offsets', tok, move), { status: 409, body: { code: 'SLUICE_ERR_NOT_PAUSED' } }, 'refused while the partition is not paused: 409')
    t.equal((await api(w.port, 'POST', '/admin/pause', tok, { partitions: [{ topic: fx.topic, partition: 0 }] })).status, 200, 'paused')
    let moved: any
    await waitFor('the offset move to be accepted (the partition settled)', async () => {
      moved = await api(w.port, 'POST', '/admin/offsets', tok, move)
      if (moved.status !== 409) return true
      t.equal(moved.body.code, 'SLUICE_ERR_NOT_SETTLED', 'a 409 while settling says so')
      return false
    }, 30_000, 250)
    t.match(moved, { status: 200, body: { moves: [{ topic: fx.topic, partition: 0, from: 14, to: 5 }] } }, 'POST /admin/offsets {to: {timestamp}}: moved from 14 back to 5')
    t.match((await api(w.port, 'GET', `/admin/offsets?topic=${fx.topic}`, tok)).body.offsets, [{ partition: 0, nextOffset: 5 }], 'GET /admin/offsets shows the stored offset moved')
    const audit = (await api(w.port, 'GET', '/admin/audit?route=/admin/offsets', tok)).body.entries
    t.match(audit.find((e: any) => e.statusCode === 200), { actor: 'ops', outcome: 'ok', detail: { moves: [{ from: 14, to: 5 }] } }, 'the move is audited (same transaction)')

    t.equal((await api(w.port, 'POST', '/admin/resume', tok)).status, 200, 'resumed')
    await waitFor('the re-read messages to be handled', async () => (await storedOffsetSum(fx)) === 14, 60_000)
    await waitFor('the formerly dead-lettered events to be stored', async () => (await count('SELECT count(*) AS n FROM entity_event_logs')) === 14, 60_000)
    const after = (await fx.pool.query('SELECT event_id, "timestamp", event_data, source_offset FROM entity_event_logs ORDER BY event_id')).rows
    const ids = new Set(poison.map((p) => p.eventId))
    t.same(after.filter((r) => !ids.has(r.event_id)), before, 'the rows stored before are unchanged, none doubled')
    t.equal(after.filter((r) => ids.has(r.event_id)).length, 3, 'the 3 events whose dead letters were fixed are stored now')
    t.equal(await count('SELECT count(*) - count(DISTINCT event_id) AS n FROM entity_event_logs'), 0, 'no event id twice')
  })
}

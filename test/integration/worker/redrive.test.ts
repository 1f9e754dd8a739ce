import { test } from 'tap'
import { api, startReady, writeTokens } from '../../helpers/api-tokens.ts'
import { produceTickets, ticketSchemas, tickets } from '../../helpers/ticket-events.ts'
import { fixture, sources, storedOffsetSum, waitFor } from '../../helpers/worker-harness.ts'

// Issue 10: poison caused by a per-type JSON Schema is dead-lettered; the schema is fixed and
// the worker restarted; a redrive stores each event exactly once and marks the dead letters
// redriven; the same request again produces nothing. A redriven message that is poison again
// becomes a new dead letter linked to the first. Discard with a reason.
const PARTITIONS = 3

for (const source of sources) {
  test(`redrive of fixed poison (${source})`, { timeout: 240_000 }, async (t) => {
    const fx = await fixture(t, source, { partitions: PARTITIONS })
    const { file, tokens } = writeTokens({ ops: ['read', 'operate'] })
    const schemas = ticketSchemas(3)
    const env = { SLUICE_API_AUTH: 'on', SLUICE_API_TOKENS_FILE: file, SLUICE_SCHEMAS_DIR: schemas }
    let w = await startReady(t, fx, env)

    const good = tickets(12, 2, PARTITIONS)
    const poison = tickets(9, 5, PARTITIONS, 100) // priority 5: over the schema's maximum of 3
    const garbage = [{ key: 'garbage-1', value: '{"eventId": "not json', partition: 0 }, { key: 'garbage-2', value: 'also not json', partition: 1 }]
    await produceTickets(fx.topic, [...good, ...poison], garbage)
    const total = good.length + poison.length + garbage.length
    await waitFor('every message handled', async () => (await storedOffsetSum(fx)) === total, 90_000)
    const count = async (sql: string): Promise<number> => Number((await fx.pool.query(sql)).rows[0].n)
    t.equal(await count('SELECT count(*) AS n FROM entity_event_logs'), good.length, `${good.length} valid events stored`)
    t.equal(await count("SELECT count(*) AS n FROM sluice_dlq WHERE error_code = 'SLUICE_ERR_SCHEMA' AND status = 'dead'"), poison.length, `${poison.length} schema violations dead-lettered`)

    const list = await api(w.port, 'GET', `/dlq?topic=${fx.topic}&code=SLUICE_ERR_SCHEMA&limit=4`, tokens.ops)
    t.equal(list.status, 200, 'GET /dlq with filters: 200')
    t.equal(list.body.deadLetters.length, 4, 'a page of 4')
    const page2 = await api(w.port, 'GET', `/dlq?topic=${fx.topic}&code=SLUICE_ERR_SCHEMA&limit=100&after=${list.body.next}`, tokens.ops)
    t.equal(page2.body.deadLetters.length, poison.length - 4, 'the next page (keyset) has the rest')
    t.equal(page2.body.next, null, 'and no further page')
    const one = await api(w.port, 'GET', `/dlq/${list.body.deadLetters[0].id}`, tokens.ops)
    t.match(one.body, { code: 'SLUICE_ERR_SCHEMA', stage: 'validate', status: 'dead', value: { encoding: 'utf8' }, key: { encoding: 'utf8' } }, 'GET /dlq/:id: the dead letter in full, its value as text')
    t.match(JSON.parse(one.body.value.data), { eventType: 'TICKET_OPENED' }, 'the value is the original message')

    // the schema is fixed; the worker restarted with it
    t.equal(await w.stop(), 0, 'worker stopped')
    ticketSchemas(10, schemas)
    w = await startReady(t, fx, env)

    const request = { filter: { topic: fx.topic, code: 'SLUICE_ERR_SCHEMA' } }
    const dry = await api(w.port, 'POST', '/dlq/redrive', tokens.ops, { ...request, dryRun: true })
    t.match(dry, { status: 200, body: { dryRun: true, matched: poison.length, redriven: [] } }, `dry run counts ${poison.length}`)
    t.equal(await count("SELECT count(*) AS n FROM sluice_dlq WHERE status = 'dead'"), poison.length + garbage.length, 'the dry run changed nothing')

    const first = await api(w.port, 'POST', '/dlq/redrive', tokens.ops, request, { 'idempotency-key': 'fix-42' })
    t.equal(first.status, 200, 'POST /dlq/redrive: 200')
    t.equal(first.body.redriven.length, poison.length, `${poison.length} dead letters redriven`)
    await waitFor('the redriven events to be stored', async () => (await count('SELECT count(*) AS n FROM entity_event_logs')) === good.length + poison.length, 60_000)

    const again = await api(w.port, 'POST', '/dlq/redrive', tokens.ops, request)
    t.match(again, { status: 200, body: { redriven: [], replayed: false } }, 'the same request again: nothing to redrive')
    const replay = await api(w.port, 'POST', '/dlq/redrive', tokens.ops, request, { 'idempotency-key': 'fix-42' })
    t.match(replay, { status: 200, body: { replayed: true, redriven: first.body.redriven } }, 'the same Idempotency-Key: the first answer, nothing produced')
    const produced = total + poison.length
    await waitFor('offsets to cover the redriven messages', async () => (await storedOffsetSum(fx)) === produced, 30_000)
    t.equal(await storedOffsetSum(fx), produced, `exactly ${poison.length} messages were produced by the three requests`)

    const rows = await fx.pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM entity_event_logs')
    t.same(rows.rows[0], { n: good.length + poison.length, d: good.length + poison.length }, 'each event stored exactly once')
    const ids = new Set((await fx.pool.query('SELECT event_id FROM entity_event_logs')).rows.map((r) => r.event_id))
    t.ok(poison.every((p) => ids.has(p.eventId)), 'every formerly poison event is stored')
    const marked = await fx.pool.query("SELECT status, status_by, redriven_to, count(*)::int AS n FROM sluice_dlq WHERE error_code = 'SLUICE_ERR_SCHEMA' GROUP BY 1, 2, 3")
    t.same(marked.rows, [{ status: 'redriven', status_by: 'ops', redriven_to: fx.topic, n: poison.length }], 'the dead letters are marked redriven, by whom and where')

    // garbage stays garbage: redriven, it is dead-lettered again, linked to the first
    const g = await api(w.port, 'POST', '/dlq/redrive', tokens.ops, { filter: { topic: fx.topic, code: 'SLUICE_ERR_DECODE', partition: 0 } })
    t.equal(g.body.redriven.length, 1, 'one undecodable dead letter redriven')
    await waitFor('the redriven garbage to be dead-lettered again', async () => (await count(`SELECT count(*) AS n FROM sluice_dlq WHERE redrive_of = ${Number(g.body.redriven[0])}`)) === 1, 60_000)
    const linked = (await api(w.port, 'GET', '/dlq?code=SLUICE_ERR_DECODE&status=dead&partition=0', tokens.ops)).body.deadLetters
    t.match(linked, [{ redriveOf: g.body.redriven[0], status: 'dead' }], 'a new dead letter whose redriveOf names the first')
    const full = (await api(w.port, 'GET', `/dlq/${linked[0].id}`, tokens.ops)).body
    t.equal(full.headers['sluice-redrive-of']?.data, String(g.body.redriven[0]), 'its headers name the dead letter it was redriven from')

    const dropped = await api(w.port, 'POST', '/dlq/discard', tokens.ops, { ids: [linked[0].id], reason: 'producer bug #7, not recoverable' })
    t.same(dropped.body, { dryRun: false, discarded: [linked[0].id] }, 'POST /dlq/discard by id')
    t.match((await api(w.port, 'GET', `/dlq/${linked[0].id}`, tokens.ops)).body, { status: 'discarded', discardReason: 'producer bug #7, not recoverable', statusBy: 'ops' }, 'discarded with its reason and by whom')
    const metrics = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text()
    t.match(metrics, new RegExp(`sluice_dead_letters\\{status="redriven",code="SLUICE_ERR_SCHEMA"\\} ${poison.length}`), 'gauge sluice_dead_letters by status and code')
  })
}

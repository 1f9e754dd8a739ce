import pg from 'pg'
import { test } from 'tap'
import type { Test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import type { EntityEvent } from '../../../src/model/event.ts'
import { loadOffsets, storeOffsets } from '../../../src/pipeline/offset-store.ts'
import type { DlqEntry } from '../../../src/sinks/dlq/dlq-entry.ts'
import { writeDlqRows } from '../../../src/sinks/dlq/dlq-table.ts'
import type { SinkBuffer, SinkWriteResult } from '../../../src/sinks/sink.ts'
import { TimescaleEventSink } from '../../../src/sinks/timescale/event-sink.ts'
import { compose } from '../../../src/pipeline/stage.ts'
import { decodeJson } from '../../../src/stages/decode-json.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'
import { migrate } from '../../../src/sinks/timescale/migrate.ts'
import { quoteIdent } from '../../../src/db/quote-ident.ts'
import { dropSchemaAtEnd } from '../../helpers/pg-schema.ts'
import { inTransaction } from '../../helpers/pg-transaction.ts'

// Against the real PostgreSQL of scripts/stack.sh; every test migrates its own schema.
const PG_URL = process.env.SLUICE_PG_URL
if (PG_URL === undefined || PG_URL === '') {
  throw new Error('SLUICE_PG_URL is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const GROUP = 'sluice-test'
const TOPIC = 'entity-events'

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

/** A migrated schema of its own and a pool whose connections use it; dropped at the end. */
async function setup (t: Test): Promise<pg.Pool> {
  const schema = uniqueName('t_sink')
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4, options: `-c search_path=${quoteIdent(schema)},public` })
  pool.on('error', () => {})
  dropSchemaAtEnd(t, PG_URL as string, schema, async () => { await pool.end() })
  await migrate(pool, schema, 'sql')
  return pool
}

let nextOffset = 0
function origin (partition = 0, offset = nextOffset++, value: string | null = null): KafkaMessage {
  const v = value === null ? null : Buffer.from(value)
  const key = Buffer.from(`key-${offset}`)
  // headers on a third of them: a buffer keeps such a message as it is, the others as bytes (origin-store.ts)
  return { topic: TOPIC, partition, offset, key, value: v, timestamp: 1740480300000 + offset, headers: offset % 3 === 1 ? { 'x-test': Buffer.from('1') } : undefined, size: key.length + (v?.length ?? 0) }
}

let seq = 0
function event (over: Partial<EntityEvent> = {}): EntityEvent {
  seq++
  return {
    eventId: `evt-${process.pid}-${seq}`,
    eventType: 'TASK_CREATED',
    timestamp: '2025-02-25T10:45:00.000Z',
    aggregateType: 'Task',
    entity: 'Task',
    entityId: `task_${seq}`,
    version: 1,
    userName: 'john.doe',
    workspace: 'default',
    payload: { entity: 'Task', entityId: `task_${seq}`, changes: { title: 'hello' } },
    metadata: { schemaVersion: '1', source: 'test' },
    correlationId: null,
    causationId: null,
    ...over
  } as unknown as EntityEvent
}

/** The lane's transaction: the sink's rows, the dead letters, the next offsets, one commit. */
async function commitBatch (pool: pg.Pool, sink: TimescaleEventSink, buffers: Array<SinkBuffer<EntityEvent>>,
  offsets: Array<{ topic: string, partition: number, offset: number }>, beforeCommit?: () => Promise<void>): Promise<SinkWriteResult> {
  return inTransaction(pool, async (client) => {
    const r = await sink.write(client, buffers)
    const dlq: DlqEntry[] = r.rejected.map((rej) => ({ pipeline: 'events', stage: `sink:${sink.name}`, code: rej.error.code, message: rej.error.message, attempts: 1, origin: rej.origin }))
    await writeDlqRows(client, dlq)
    await storeOffsets(client, GROUP, offsets)
    if (beforeCommit !== undefined) await beforeCommit()
    return r
  })
}

function buffer (sink: TimescaleEventSink, items: Array<[EntityEvent, KafkaMessage]>): SinkBuffer<EntityEvent> {
  const b = sink.createBuffer()
  for (const [e, o] of items) b.add(e, o)
  return b
}

/** What every sink reports (the duplicates' kinds are the event sink's own). */
function counts (r: SinkWriteResult): Pick<SinkWriteResult, 'stored' | 'duplicates' | 'rejected'> {
  return { stored: r.stored, duplicates: r.duplicates, rejected: r.rejected }
}

async function count (pool: pg.Pool, table: string): Promise<number> {
  return (await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n
}

const NASTY = [
  'tab\there', 'new\nline', 'carriage\rreturn', 'crlf\r\n', 'back\\slash', 'ends with a backslash\\',
  '\\N', '\\.', '\\', 'quotes \' " `', 'emoji 🚀👩‍💻🇫🇷', 'nbsp\u00a0and\u2028separators\u2029', '\u0001\u001f control', '',
  '|;,{}[]"\\t literally', 'ünïcödé Ωμέγα 漢字'
]

/** ASCII only, for assertion messages (a raw U+2028 would split a TAP line) */
function printable (s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`)
}

test('(a) awkward text and a ~1 MB payload round-trip exactly', async (t) => {
  const pool = await setup(t)
  const sink = new TimescaleEventSink()
  const big = {
    kind: 'big',
    // ~1 MiB of JSON, itself full of characters COPY must escape
    items: Array.from({ length: 5000 }, (_, i) => ({ i, s: NASTY[i % NASTY.length] as string, pad: 'x'.repeat(200) }))
  }
  t.ok(JSON.stringify(big).length > 1_000_000, 'the payload is over 1 MB')
  const events: EntityEvent[] = NASTY.map((s, i) => event({
    eventId: `nasty-${i}-${s}`,
    eventType: `TYPE_${i}${s}`.slice(0, 100),
    entity: s,
    entityId: s,
    userName: s,
    workspace: s,
    correlationId: s,
    causationId: s,
    payload: { s, nested: { s, list: [s, s] }, [s]: s },
    metadata: { s }
  } as Partial<EntityEvent>))
  events.push(event({ eventId: 'big-one', payload: big, entity: null, entityId: null, userName: null, workspace: null, version: null, metadata: null } as unknown as Partial<EntityEvent>))
  const items = events.map((e) => [e, origin()] as [EntityEvent, KafkaMessage])
  const r = await commitBatch(pool, sink, [buffer(sink, items)], [{ topic: TOPIC, partition: 0, offset: nextOffset }])
  t.same(counts(r), { stored: events.length, duplicates: 0, rejected: [] })

  const res = await pool.query(`SELECT event_id, event_type, entity, entity_id, version, user_name, workspace, event_data, metadata,
      correlation_id, causation_id, source_topic, source_partition, source_offset FROM entity_event_logs`)
  const byId = new Map(res.rows.map((row) => [row.event_id as string, row]))
  t.equal(byId.size, events.length)
  for (const [i, [e, o]] of items.entries()) {
    const ev = e as unknown as Record<string, unknown>
    const row = byId.get(ev.eventId as string)
    if (row === undefined) { t.fail(`event ${JSON.stringify(ev.eventId)} is missing`); continue }
    t.strictSame({
      event_type: row.event_type,
      entity: row.entity,
      entity_id: row.entity_id,
      version: row.version === null ? null : Number(row.version),
      user_name: row.user_name,
      workspace: row.workspace,
      correlation_id: row.correlation_id,
      causation_id: row.causation_id,
      source: [row.source_topic, row.source_partition, Number(row.source_offset)]
    }, {
      event_type: ev.eventType,
      entity: ev.entity,
      entity_id: ev.entityId,
      version: ev.version,
      user_name: ev.userName,
      workspace: ev.workspace,
      correlation_id: ev.correlationId,
      causation_id: ev.causationId,
      source: [o.topic, o.partition, o.offset]
    }, `text columns of event ${i} (${printable(NASTY[i] ?? 'big')})`)
    t.strictSame(row.event_data, ev.payload, `event_data of event ${i}`)
    t.strictSame(row.metadata, ev.metadata, `metadata of event ${i}`)
  }
  const bigRow = await pool.query("SELECT octet_length(event_data::text) AS n FROM entity_event_logs WHERE event_id = 'big-one'")
  t.ok(bigRow.rows[0].n > 1_000_000, 'the big payload is stored whole')
})

test('(b) the same event id is stored once whatever its timestamp or content, in one batch and across batches', async (t) => {
  const pool = await setup(t)
  const sink = new TimescaleEventSink()
  const dup = event({ eventId: 'dup-1', timestamp: '2025-02-25T10:45:00.000Z' } as Partial<EntityEvent>)
  const other = event()
  const o1 = origin(0)
  const o2 = origin(0)
  const o3 = origin(0)
  const first = await commitBatch(pool, sink, [buffer(sink, [[dup, o1], [other, o2], [dup, o3]])], [{ topic: TOPIC, partition: 0, offset: o3.offset + 1 }])
  t.same(counts(first), { stored: 2, duplicates: 1, rejected: [] }, 'a producer duplicate within the batch')
  t.same(first.duplicateKinds, { identical: 1 }, 'counted as identical')

  const restamped = { ...dup, timestamp: '2025-02-25T11:00:00.000Z' }
  const differing = { ...dup, payload: { ...dup.payload, changes: { title: 'another' } } }
  const o4 = origin(1)
  const o5 = origin(1)
  const o6 = origin(2)
  const second = await commitBatch(pool, sink, [buffer(sink, [[dup, o4], [restamped, o5]]), buffer(sink, [[differing, o6]]), buffer(sink, [[dup, o1]])],
    [{ topic: TOPIC, partition: 1, offset: o5.offset + 1 }, { topic: TOPIC, partition: 2, offset: o6.offset + 1 }])
  t.same(counts(second), { stored: 0, duplicates: 4, rejected: [] }, 'copies on other partitions, a later batch, and a redelivery')
  t.same(second.duplicateKinds, { identical: 1, restamped: 1, differing: 1, redelivered: 1 }, 'each counted by its kind')
  t.same(second.differing, [{ eventId: 'dup-1', kind: 'differing', stored: { topic: TOPIC, partition: 0, offset: o1.offset }, dropped: { topic: TOPIC, partition: 2, offset: o6.offset } }],
    'the copy with other content, with both origins')
  const rows = await pool.query("SELECT \"timestamp\", source_partition, source_offset FROM entity_event_logs WHERE event_id = 'dup-1'")
  t.same(rows.rows.map((r) => [(r.timestamp as Date).toISOString(), r.source_partition, Number(r.source_offset)]), [
    ['2025-02-25T10:45:00.000Z', 0, o1.offset]
  ], 'one row per event id: the first copy is kept')
  t.equal(await count(pool, 'entity_event_logs'), 2)

  // a first copy PostgreSQL rejects does not hide a later good copy of the same batch
  const poisoned = { ...event({ eventId: 'dup-2' } as Partial<EntityEvent>), timestamp: '2024-02-30T00:00:00Z' }
  const good = { ...poisoned, timestamp: '2025-03-01T00:00:00Z' }
  const o7 = origin(3)
  const o8 = origin(3)
  const third = await commitBatch(pool, sink, [buffer(sink, [[poisoned, o7], [good, o8]])], [{ topic: TOPIC, partition: 3, offset: o8.offset + 1 }])
  t.same([third.stored, third.duplicates, third.rejected.map((r) => r.origin.offset)], [1, 0, [o7.offset]], 'the rejected copy dead-lettered, the good one stored')
  const kept = await pool.query("SELECT source_offset FROM entity_event_logs WHERE event_id = 'dup-2'")
  t.same(kept.rows.map((r) => Number(r.source_offset)), [o8.offset])
})

test('(b2) a copy of a stored id is compared with the stored row: as stored, whatever its JSON text; no row: unverified', async (t) => {
  const pool = await setup(t)
  const sink = new TimescaleEventSink()
  const decode = compose(decodeJson({ maxBytes: 1 << 20 }), validateEnvelope())
  const envelope = '"eventId":"c-1","eventType":"TASK_UPDATED","entityId":"t1","metadata":{"m":[1,2.50]}'
  const copy = (json: string, partition: number): [EntityEvent, KafkaMessage] => {
    const o = origin(partition, nextOffset++, json)
    return [decode.run(o.value, o) as EntityEvent, o]
  }
  const kinds = async (json: string, partition: number): Promise<SinkWriteResult> => {
    const c = copy(json, partition)
    return await commitBatch(pool, sink, [buffer(sink, [c])], [{ topic: TOPIC, partition, offset: c[1].offset + 1 }])
  }
  const stored = await kinds(`{${envelope},"timestamp":"2025-02-25T10:45:00Z","payload":{"a":1,"b":[1,2]}}`, 4)
  t.equal(stored.stored, 1)
  const again = await kinds(`{ "payload" : { "b" : [ 1 , 2 ], "a" : 1.0 }, "timestamp":"2025-02-25T10:45:00Z", ${envelope.replace('2.50', '2.5')} }`, 5)
  t.same(again.duplicateKinds, { identical: 1 }, 'other spacing, member order and number text: the row it would store is the stored one')
  t.same((await kinds(`{${envelope},"timestamp":"2025-02-25T10:46:00Z","payload":{"a":1,"b":[1,2]}}`, 5)).duplicateKinds, { restamped: 1 }, 'another time')
  const other = await kinds(`{${envelope},"timestamp":"2025-02-25T10:45:00Z","payload":{"a":2,"b":[1,2]}}`, 6)
  t.same(other.duplicateKinds, { differing: 1 }, 'another payload')
  t.equal(other.differing?.[0]?.eventId, 'c-1', 'reported with its id')
  t.same((await kinds(`{${envelope},"timestamp":"2025-02-25T10:45:00Z","payload":{"a":1,"b":[1,2]},"more":true}`, 6)).duplicateKinds, { differing: 1 }, 'a member more')
  await pool.query("DELETE FROM entity_event_logs WHERE event_id = 'c-1'")
  t.same((await kinds(`{${envelope},"timestamp":"2025-02-25T10:45:00Z","payload":{"a":1,"b":[1,2]}}`, 7)).duplicateKinds, { unverified: 1 }, 'the stored row gone: unverified')
  t.equal(await count(pool, 'entity_event_logs'), 0, 'no copy stored')
})

test('(c) 3 rows PostgreSQL rejects among 1,000: exactly those are dead-lettered, 997 stored in the same transaction', async (t) => {
  const pool = await setup(t)
  const sink = new TimescaleEventSink()
  const bad = new Map<number, { over: Partial<EntityEvent>, message: RegExp }>([
    [0, { over: { timestamp: '2024-02-30T00:00:00Z' } as Partial<EntityEvent>, message: /\(column timestamp\).*out of range.*2024-02-30/ }],
    [437, { over: { entityId: 'e'.repeat(201) } as Partial<EntityEvent>, message: /\(column entity_id\).*value too long for type character varying\(200\)/ }],
    [999, { over: { timestamp: 'not-a-time' } as Partial<EntityEvent>, message: /\(column timestamp\).*invalid input syntax.*not-a-time/ }]
  ])
  // two partitions, as the lane passes one buffer per partition
  const b0 = sink.createBuffer()
  const b1 = sink.createBuffer()
  const origins: KafkaMessage[] = []
  for (let i = 0; i < 1000; i++) {
    const o = origin(i < 500 ? 0 : 1, i < 500 ? 10_000 + i : 20_000 + i, `message ${i}`)
    origins.push(o)
    ;(i < 500 ? b0 : b1).add(event(bad.get(i)?.over ?? {}), o)
  }
  const offsets = [{ topic: TOPIC, partition: 0, offset: 10_500 }, { topic: TOPIC, partition: 1, offset: 21_000 }]
  let seenBeforeCommit = -1
  const started = performance.now()
  const r = await commitBatch(pool, sink, [b0, b1], offsets, async () => {
    seenBeforeCommit = await count(pool, 'entity_event_logs')
  })
  t.comment(`1,000 rows with 3 rejected: ${Math.round(performance.now() - started)} ms`)
  t.equal(r.stored, 997)
  t.equal(r.duplicates, 0)
  t.same(r.rejected.map((x) => x.origin.offset).sort((a, b) => a - b), [...bad.keys()].map((i) => origins[i]?.offset), 'exactly the 3 bad rows')
  for (const rej of r.rejected) {
    const i = origins.findIndex((o) => o.partition === rej.origin.partition && o.offset === rej.origin.offset)
    const o = origins[i] as KafkaMessage
    t.ok(bad.has(i), `row ${i} is one of the bad ones`)
    t.same([rej.origin.key, rej.origin.value, rej.origin.timestamp, rej.origin.size, rej.origin.headers], [o.key, o.value, o.timestamp, o.size, o.headers], `row ${i}: its message as consumed`)
    t.equal(rej.error.code, 'SLUICE_ERR_ROW_REJECTED')
    t.ok(rej.error.poison)
    t.match(rej.error.message, bad.get(i)?.message as RegExp, `row ${i}: ${rej.error.message.slice(0, 160)}`)
  }
  t.equal(seenBeforeCommit, 0, 'nothing visible to others before the commit')
  t.equal(await count(pool, 'entity_event_logs'), 997)
  const dlq = await pool.query('SELECT source_partition, source_offset, error_code, stage, message_key, message_value, message_ts FROM sluice_dlq ORDER BY source_offset')
  t.same(dlq.rows.map((d) => [d.source_partition, Number(d.source_offset), d.error_code, d.stage]), [
    [0, 10_000, 'SLUICE_ERR_ROW_REJECTED', 'sink:timescale'],
    [0, 10_437, 'SLUICE_ERR_ROW_REJECTED', 'sink:timescale'],
    [1, 20_999, 'SLUICE_ERR_ROW_REJECTED', 'sink:timescale']
  ])
  t.same(dlq.rows[1].message_key, Buffer.from('key-10437'), 'the original key is kept')
  t.same(dlq.rows.map((d) => [d.message_value.toString(), d.message_ts.getTime()]), [[0, 10_000], [437, 10_437], [999, 20_999]].map(([i, off]) => [`message ${i}`, 1740480300000 + (off as number)]), 'and the value and time')
  t.same(await loadOffsets(pool, GROUP, [{ topic: TOPIC, partition: 0 }, { topic: TOPIC, partition: 1 }]).then((x) => x.sort((a, b) => a.partition - b.partition)), offsets)
})

test('(c2) many rejected rows: every one isolated, the rest stored', async (t) => {
  const pool = await setup(t)
  const sink = new TimescaleEventSink()
  const b = sink.createBuffer()
  const badOffsets: number[] = []
  for (let i = 0; i < 2000; i++) {
    const o = origin(0)
    const isBad = i % 20 === 7
    if (isBad) badOffsets.push(o.offset)
    b.add(event(isBad ? { timestamp: `2025-13-${i}` } as Partial<EntityEvent> : {}), o)
  }
  const started = performance.now()
  const r = await commitBatch(pool, sink, [b], [])
  t.comment(`2,000 rows with 100 rejected: ${Math.round(performance.now() - started)} ms`)
  t.equal(r.stored, 1900)
  t.same(r.rejected.map((x) => x.origin.offset).sort((x, y) => x - y), badOffsets)
  t.equal(await count(pool, 'entity_event_logs'), 1900)
})

test('(d) storeOffsets never moves an offset backwards', async (t) => {
  const pool = await setup(t)
  const store = async (offsets: Array<{ topic: string, partition: number, offset: number }>, group = GROUP): Promise<void> => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await storeOffsets(client, group, offsets)
      await client.query('COMMIT')
    } finally {
      client.release()
    }
  }
  const load = async (group = GROUP): Promise<Array<[number, number]>> =>
    (await loadOffsets(pool, group, [0, 1, 2].map((p) => ({ topic: TOPIC, partition: p }))))
      .map((o) => [o.partition, o.offset] as [number, number]).sort((a, b) => a[0] - b[0])

  await store([{ topic: TOPIC, partition: 0, offset: 100 }, { topic: TOPIC, partition: 1, offset: 5 }])
  t.same(await load(), [[0, 100], [1, 5]])
  await store([{ topic: TOPIC, partition: 0, offset: 50 }, { topic: TOPIC, partition: 1, offset: 6 }])
  t.same(await load(), [[0, 100], [1, 6]], 'a late commit of an older offset leaves the newer one')
  await store([{ topic: TOPIC, partition: 0, offset: 100 }])
  t.same(await load(), [[0, 100]].concat([[1, 6]]), 'the same offset again changes nothing')
  await store([{ topic: TOPIC, partition: 0, offset: 2 ** 40 }])
  t.same(await load(), [[0, 2 ** 40], [1, 6]], 'offsets beyond 32 bits')
  await store([{ topic: TOPIC, partition: 2, offset: 9 }, { topic: TOPIC, partition: 2, offset: 30 }, { topic: TOPIC, partition: 2, offset: 12 }])
  t.same(await load(), [[0, 2 ** 40], [1, 6], [2, 30]], 'a partition listed twice keeps its highest offset')
  await store([{ topic: TOPIC, partition: 0, offset: 1 }], 'another-group')
  t.same(await load('another-group'), [[0, 1]], 'groups are independent')
  t.same(await load(), [[0, 2 ** 40], [1, 6], [2, 30]])
})

test('(e) a rolled-back transaction leaves no rows, no dead letters and no offsets', async (t) => {
  const pool = await setup(t)
  const sink = new TimescaleEventSink()
  const client = await pool.connect()
  t.teardown(() => client.release())
  const items: Array<[EntityEvent, KafkaMessage]> = [[event(), origin(0)], [event({ timestamp: 'never' } as Partial<EntityEvent>), origin(0)], [event(), origin(0)]]

  await client.query('BEGIN')
  const r = await sink.write(client, [buffer(sink, items)])
  t.equal(r.stored, 2)
  t.equal(r.rejected.length, 1)
  await writeDlqRows(client, r.rejected.map((rej) => ({ pipeline: 'events', stage: 'sink:timescale', code: rej.error.code, message: rej.error.message, attempts: 1, origin: rej.origin })))
  await storeOffsets(client, GROUP, [{ topic: TOPIC, partition: 0, offset: 1000 }])
  await client.query('ROLLBACK')

  t.equal(await count(pool, 'entity_event_logs'), 0, 'no rows')
  t.equal(await count(pool, 'sluice_dlq'), 0, 'no dead letters')
  t.equal(await count(pool, 'sluice_offsets'), 0, 'no offsets')

  // the same connection is usable for the retry (the staging table of the rolled-back
  // transaction is gone with it) and the retry stores the batch exactly once
  await client.query('BEGIN')
  const again = await sink.write(client, [buffer(sink, items)])
  await client.query('COMMIT')
  t.same({ stored: again.stored, duplicates: again.duplicates, rejected: again.rejected.length }, { stored: 2, duplicates: 0, rejected: 1 })
  t.equal(await count(pool, 'entity_event_logs'), 2)
})

test('two writes in one transaction, to two tables: each stores only its own rows', async (t) => {
  const pool = await setup(t)
  await pool.query('CREATE TABLE entity_event_logs_archive (LIKE entity_event_logs INCLUDING ALL)')
  const main = new TimescaleEventSink()
  const archive = new TimescaleEventSink({ name: 'archive', table: 'entity_event_logs_archive' })
  const client = await pool.connect()
  t.teardown(() => client.release())
  await client.query('BEGIN')
  const a = await main.write(client, [buffer(main, [[event({ eventId: 'a1' } as Partial<EntityEvent>), origin()], [event({ eventId: 'a2' } as Partial<EntityEvent>), origin()]])])
  const a2 = await main.write(client, [buffer(main, [[event({ eventId: 'a3' } as Partial<EntityEvent>), origin()]])])
  const b = await archive.write(client, [buffer(archive, [[event({ eventId: 'b1' } as Partial<EntityEvent>), origin()]])])
  await client.query('COMMIT')
  t.same([a, a2, b].map(counts), [{ stored: 2, duplicates: 0, rejected: [] }, { stored: 1, duplicates: 0, rejected: [] }, { stored: 1, duplicates: 0, rejected: [] }])
  t.same((await pool.query('SELECT event_id FROM entity_event_logs ORDER BY 1')).rows.map((r) => r.event_id), ['a1', 'a2', 'a3'])
  t.same((await pool.query('SELECT event_id FROM entity_event_logs_archive ORDER BY 1')).rows.map((r) => r.event_id), ['b1'])
})

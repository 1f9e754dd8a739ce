import { test } from 'tap'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { brokers, fixture, sources, startWorker, storedOffsetSum, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

// Each message that used to stop the worker, alter a value or lose an event (issue 8) among
// good events, in one partition: each is dead-lettered with its own code, the worker keeps
// running, the partition's stored offset passes every one of them, the good events are
// stored as produced (numbers, extra members, the largest bigint version).

const envelope = (id: string, over: Record<string, string> = {}): string => {
  const m: Record<string, string> = {
    eventId: JSON.stringify(id),
    eventType: '"TASK_UPDATED"',
    timestamp: '"2025-02-25T10:45:00Z"',
    aggregateId: '"task_1"',
    version: '3',
    payload: '{"entity":"Task","entityId":"task_1","user":"ann","n":1}',
    ...over
  }
  return '{' + Object.entries(m).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',') + '}'
}

const deep = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)
const bytes = (before: string, bad: number[], after: string): Buffer => Buffer.concat([Buffer.from(before), Buffer.from(bad), Buffer.from(after)])
const utf8 = (id: string, bad: number[]): Buffer => bytes(envelope(id).slice(0, -2) + ',"note":"', bad, '"}}')

const poison: Array<[string, Buffer, string]> = [
  ['payload nested 10,000 deep', Buffer.from(envelope('p-deep', { payload: deep })), 'SLUICE_ERR_TOO_DEEP'],
  ['lone continuation byte', utf8('p-cont', [0x80]), 'SLUICE_ERR_UTF8'],
  ['overlong form', utf8('p-overlong', [0xc0, 0xaf]), 'SLUICE_ERR_UTF8'],
  ['truncated sequence', utf8('p-trunc', [0xe2, 0x82]), 'SLUICE_ERR_UTF8'],
  ['encoded surrogate', utf8('p-surr', [0xed, 0xa0, 0x80]), 'SLUICE_ERR_UTF8'],
  ['above U+10FFFF', utf8('p-big', [0xf4, 0x90, 0x80, 0x80]), 'SLUICE_ERR_UTF8'],
  ['Latin-1', utf8('p-latin1', [0xe9]), 'SLUICE_ERR_UTF8'],
  ['invalid UTF-8 in the event id', bytes('{"eventId":"p-id', [0xff], `"${envelope('x').slice(13)}`), 'SLUICE_ERR_UTF8'],
  ['lone surrogate escape', Buffer.from(envelope('p-lone', { payload: '{"entity":"Task","x":"\\ud800"}' })), 'SLUICE_ERR_UTF8'],
  ['version 1e400', Buffer.from(envelope('p-v400', { version: '1e400' })), 'SLUICE_ERR_VERSION'],
  ['version past bigint', Buffer.from(envelope('p-v64', { version: '9223372036854775808' })), 'SLUICE_ERR_VERSION'],
  ['leap second', Buffer.from(envelope('p-leap', { timestamp: '"2016-12-31T23:59:60Z"' })), 'SLUICE_ERR_TIMESTAMP'],
  ['nine fractional digits', Buffer.from(envelope('p-nano', { timestamp: '"2025-02-25T10:45:00.123456789Z"' })), 'SLUICE_ERR_TIMESTAMP'],
  ['24:00', Buffer.from(envelope('p-24', { timestamp: '"2025-02-25T24:00:00Z"' })), 'SLUICE_ERR_TIMESTAMP']
]

const goodPayload = '{"entity":"Task","entityId":"task_1","user":"ann","huge":1e400,"tiny":1e-400,"int":123456789012345678901234567890,"frac":0.1000000000000000000000000001}'
const good: Array<[string, string]> = [
  ['g-exact', envelope('g-exact', { version: '9223372036854775807', payload: goodPayload, data: '{"beside":"payload"}', source: '"crm"' })],
  ...Array.from({ length: 20 }, (_, i): [string, string] => [`g-${i}`, envelope(`g-${i}`, { version: String(i) })])
]

for (const source of sources) {
  test(`${source}: messages that used to be fatal or altered are dead letters; the worker runs on`, { timeout: 180_000 }, async (t) => {
    const fx = await fixture(t, source, { partitions: 1 })
    // good and poison interleaved, in one partition
    const values: Buffer[] = []
    for (let i = 0; i < Math.max(good.length, poison.length); i++) {
      if (i < good.length) values.push(Buffer.from((good[i] as [string, string])[1]))
      if (i < poison.length) values.push((poison[i] as [string, Buffer, string])[1])
    }
    const w = await startWorker(t, fx)
    const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('hostile-producer') })
    await producer.connect()
    await producer.produceBatch(values.map((value, i) => ({ topic: fx.topic, partition: 0, key: Buffer.from(`k${i}`), value })))
    await producer.close()
    await waitFor(`${values.length} messages durable`, async () => (await storedOffsetSum(fx)) >= values.length, 90_000, 200)

    t.equal(w.proc.exitCode, null, 'the worker is still running')
    t.equal((await fetch(`http://127.0.0.1:${w.port}/health/live`)).status, 200, 'and alive')
    t.equal(await storedOffsetSum(fx), values.length, 'the stored offset passed every message')

    const dlq = await fx.pool.query<{ error_code: string, error_message: string, message_value: Buffer }>('SELECT error_code, error_message, message_value FROM sluice_dlq ORDER BY source_offset')
    t.equal(dlq.rowCount, poison.length, `${poison.length} dead letters`)
    for (const [what, value, code] of poison) {
      const row = dlq.rows.find((r) => Buffer.compare(r.message_value, value) === 0)
      t.equal(row?.error_code, code, `${what}: ${code} (${row?.error_message.slice(0, 100) ?? 'no dead letter'})`)
    }

    const rows = await fx.pool.query('SELECT event_id FROM entity_event_logs ORDER BY source_offset')
    t.same(rows.rows.map((r) => r.event_id), good.map(([id]) => id), 'every good event stored once, in order')
    const exact = await fx.pool.query(`SELECT version::text AS v, event_data = $1::jsonb AS payload_same, event_data::text = $1::jsonb::text AS payload_text_same,
      extra = $2::jsonb AS extra_same FROM entity_event_logs WHERE event_id = 'g-exact'`, [goodPayload, '{"data":{"beside":"payload"},"source":"crm"}'])
    t.match(exact.rows[0], { v: '9223372036854775807', payload_same: true, payload_text_same: true, extra_same: true }, 'numbers, version and extra members as produced')
  })
}

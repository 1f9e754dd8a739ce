import fc from 'fast-check'
import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import type { EntityEvent } from '../../../src/model/event.ts'
import { compose } from '../../../src/pipeline/stage.ts'
import { eventCopyRow } from '../../../src/sinks/timescale/copy-encoder.ts'
import { CopyText } from '../../../src/sinks/timescale/copy-text.ts'
import { EventBuffer } from '../../../src/sinks/timescale/event-buffer.ts'
import type { BufferedRow } from '../../../src/sinks/timescale/event-ids.ts'
import { idLineOf } from '../../../src/sinks/timescale/event-ids.ts'
import { appendEventLine } from '../../../src/sinks/timescale/event-line.ts'
import { decodeJson } from '../../../src/stages/decode-json.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'

const stage = compose(decodeJson({ maxBytes: 1 << 20 }), validateEnvelope())
const origin: KafkaMessage = { topic: 'events.v1', partition: 4, offset: 90071992547409, key: null, value: null, timestamp: 0, headers: undefined, size: 0 }

// what COPY text escapes (backslash, tab, newline, carriage return) beside multi-byte UTF-8 and JSON's own quote
const text = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', 'é', '€', '\u{1F600}', '"', '/', '\\', '\t', '\n', '\r'), maxLength: 10 })
const plain = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', 'é', '€', '\u{1F600}', '/'), maxLength: 10 })
const value = (s: fc.Arbitrary<string>): fc.Arbitrary<unknown> => fc.oneof(s, fc.integer(), fc.constant('__BIG__'), fc.constant(null), fc.array(s, { maxLength: 3 }), fc.dictionary(s, s, { maxKeys: 3 }))

function envelope (s: fc.Arbitrary<string>): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    eventId: s.filter((x) => x.length > 0),
    eventType: fc.constantFrom('TASK_UPDATED', 'USER_LOGGED_IN', 'Group.created'),
    timestamp: fc.constantFrom('2025-02-25T10:45:00Z', '2025-02-25T10:45:00.123456+02:00'),
    entity: fc.option(s),
    entityId: fc.option(s),
    version: fc.option(fc.nat()),
    userName: fc.option(s),
    workspace: fc.option(s),
    payload: fc.dictionary(s, value(s), { maxKeys: 4 }),
    metadata: fc.option(fc.record({ correlationId: s, causationId: s, source: s }, { requiredKeys: [] })),
    // members no column holds: the `extra` column
    unknownMember: fc.option(value(s))
  }, { requiredKeys: ['eventId', 'eventType', 'timestamp', 'payload'] })
}

// the producer's text: compact or indented (whitespace COPY escapes), a number past 2^53 kept as
// written, the payload under the seeds' other name (`data`) for some
function message (e: Record<string, unknown>, indent: string | undefined): Buffer {
  const { payload, ...rest } = e
  const named = (e.eventId as string).length % 3 === 0 ? { ...rest, data: payload } : e
  return Buffer.from(JSON.stringify(named, null, indent).replaceAll('"__BIG__"', '12345678901234567890123.50'))
}

test('an event line is eventCopyRow\'s line byte for byte, with its id line, whether its JSON is copied as bytes or not', async (t) => {
  let copied = 0
  let encoded = 0
  const check = (env: Record<string, unknown>, indent: string | undefined, change: number): boolean => {
    const e = stage.run(message(env, indent), origin) as EntityEvent
    // a stage's own objects have no producer text: the line's other path
    if (change === 1) e.payload = { ...e.payload, added: 'by a stage\t\\' }
    if (change === 2 && e.metadata !== null) e.metadata = { made: true }
    if (e.source?.spans != null && change === 0) copied++
    else encoded++
    const lines = new CopyText()
    lines.append('an earlier line\n')
    const idLine = appendEventLine(lines, e, origin)
    const expected = eventCopyRow(e, origin)
    return lines.count === 2 && lines.bytes(1).equals(Buffer.from(expected)) && idLine === idLineOf(expected) &&
      lines.byteLength === Buffer.byteLength('an earlier line\n' + expected)
  }
  fc.assert(fc.property(envelope(text), fc.constantFrom(undefined, '', ' ', '\t', '\n'), fc.nat(2), check), { numRuns: 400 })
  fc.assert(fc.property(envelope(plain), fc.constantFrom(undefined, ''), fc.constant(0), check), { numRuns: 200 })
  t.ok(copied >= 200, `${copied} events had their JSON copied as bytes`)
  t.ok(encoded >= 200, `${encoded} events went through the line as a string`)
})

test('a message with a byte COPY escapes gives no spans; one without gives them', async (t) => {
  const run = (json: string): EntityEvent => stage.run(Buffer.from(json), origin) as EntityEvent
  const base = '{"eventId":"a","eventType":"T","timestamp":"2025-02-25T10:45:00Z","payload":{"n":1},"metadata":{"m":2}}'
  const spans = run(base).source?.spans
  t.ok(spans != null, 'compact, no backslash: spans')
  t.equal(spans?.buf.toString('utf8', spans.payloadStart, spans.payloadEnd), '{"n":1}')
  t.equal(spans?.buf.toString('utf8', spans.metadataStart, spans.metadataEnd), '{"m":2}')
  t.equal(run(base.replace('"n":1', '"n":"a\\u00e9"')).source?.spans, null, 'an escape anywhere: none')
  t.equal(run(base.replace('"eventId":"a"', '"eventId":"a\\\\b"')).source?.spans, null, 'an escaped backslash outside the payload: none')
  for (const ws of ['\t', '\n', '\r']) t.equal(run(base.replace(',"payload"', `,${ws}"payload"`)).source?.spans, null, `whitespace ${JSON.stringify(ws)}: none`)
  t.ok(run(base.replace(',"payload"', ', "payload"')).source?.spans != null, 'spaces: spans')
  const noMeta = run(base.replace(',"metadata":{"m":2}', '')).source?.spans
  t.equal(noMeta?.metadataStart, -1, 'no metadata member')
})

test('property: a buffered row reads its event id back from its id line, whatever COPY escapes in it', async (t) => {
  fc.assert(fc.property(fc.array(envelope(text), { minLength: 1, maxLength: 8 }), (envs) => {
    const buffer = new EventBuffer()
    const events = envs.map((env, i) => {
      const e = stage.run(Buffer.from(JSON.stringify(env)), origin) as EntityEvent
      buffer.add(e, { ...origin, offset: i })
      return e
    })
    const rows: BufferedRow[] = []
    buffer.rows(rows)
    return rows.length === events.length && rows.every((r, i) => r.eventId === events[i]?.eventId)
  }), { numRuns: 300 })
})

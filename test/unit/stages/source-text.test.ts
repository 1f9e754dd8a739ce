import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { compose } from '../../../src/pipeline/stage.ts'
import type { Stage } from '../../../src/pipeline/stage.ts'
import { EVENT_COLUMNS, eventCopyRow } from '../../../src/sinks/timescale/copy-encoder.ts'
import { decodeJson } from '../../../src/stages/decode-json.ts'
import { sourceOf } from '../../../src/stages/source-text.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'

const VERSION = EVENT_COLUMNS.indexOf('version')
const DATA = EVENT_COLUMNS.indexOf('event_data')

const text = '{"eventId":"e-1","eventType":"TASK_UPDATED","timestamp":"2025-02-25T10:45:00Z","version":7,"payload":{"n":1.50},"note":"extra"}'
const value = Buffer.from(text)
const origin: KafkaMessage = { topic: 't', partition: 0, offset: 0, key: null, value, timestamp: 0, headers: undefined, size: value.length }
const decode = decodeJson({ maxBytes: 1 << 20 })

test('the decoded object carries its source, invisibly to JSON, keys and copies', async (t) => {
  const parsed = decode.run(value, origin) as Record<string, unknown>
  t.equal(sourceOf(parsed)?.buf, value, 'the message bytes')
  t.same(Object.keys(parsed), ['eventId', 'eventType', 'timestamp', 'version', 'payload', 'note'])
  t.equal(JSON.stringify(parsed), JSON.stringify(JSON.parse(text)))
  t.equal(sourceOf({ ...parsed }), undefined, 'a spread copy has no source')
  t.equal(sourceOf(structuredClone(parsed)), undefined, 'nor a structured clone')
})

test('an object a stage makes from the decoded one is stored as that stage made it, not as the producer sent it', async (t) => {
  // a user's stage between decode and validate that changes the version and the payload
  const bump: Stage<unknown, unknown> = {
    name: 'bump',
    run: (o) => ({ ...(o as Record<string, unknown>), version: 8, payload: { n: 2 } })
  }
  const e = compose(decode, bump, validateEnvelope()).run(value, origin)
  t.equal(e.version, 8n, 'the version the stage set, not the producer\'s 7')
  t.equal(e.source, undefined, 'no producer text is used for it')
  const line = eventCopyRow(e, origin).split('\t')
  t.equal(line[VERSION], '8')
  t.equal(line[DATA], '{"n":2}')
  // the same without the stage: the producer's own text (1.50 kept as written)
  const own = compose(decode, validateEnvelope()).run(value, origin)
  t.equal(eventCopyRow(own, origin).split('\t')[DATA], '{"n":1.50}')
})

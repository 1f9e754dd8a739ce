import { getHeapStatistics } from 'node:v8'
import { test } from 'tap'
import type { KafkaMessage } from '../../../src/kafka/types.ts'
import { compose } from '../../../src/pipeline/stage.ts'
import { release } from '../../../src/pipeline/release.ts'
import { parseItem } from '../../../src/sinks/s3/snapshot-items.ts'
import type { ChunkItem } from '../../../src/sinks/s3/snapshot-items.ts'
import { decodeJson } from '../../../src/stages/decode-json.ts'
import { validateEnvelope } from '../../../src/stages/validate-envelope.ts'

// The default pipeline's stages (pipelines/entity-events.ts): a chunk's `data` stays bytes
const stage = compose(
  decodeJson({ maxBytes: 4 * 1024 * 1024, bulk: { key: 'data', minBytes: 64 * 1024 } }),
  validateEnvelope({ schemasDir: 'pipelines/schemas' })
)

function chunkMessage (seq: number, data: string): KafkaMessage {
  const value = Buffer.from(JSON.stringify({
    eventId: `chunk-${seq}`,
    eventType: 'SNAPSHOT_CHUNK',
    timestamp: '2025-02-25T10:45:00Z',
    aggregateType: 'Snapshot',
    aggregateId: 's-1',
    version: 1,
    payload: { entity: 'Snapshot', entityId: 's-1', snapshotId: 's-1', seq, last: false, data },
    metadata: { source: 'test' },
    note: 'kept in extra'
  }))
  return { topic: 't', partition: 0, offset: seq, key: null, value, timestamp: 0, headers: undefined, size: value.length }
}

test('the producer\'s text of the JSON columns is read from the message when asked, and not after the message was released', async (t) => {
  const data = Buffer.alloc(96 * 1024, 1).toString('base64')
  const m = chunkMessage(0, data)
  const e = stage.run(m.value, m)
  const text = (m.value as Buffer).toString('utf8')
  t.equal(e.source?.payloadJson, JSON.stringify(JSON.parse(text).payload), 'the payload text, byte for byte')
  t.equal(e.source?.metadataJson, '{"source":"test"}')
  t.equal(e.source?.extraJson, '{"note":"kept in extra"}')
  release(m.value as Buffer)
  t.throws(() => e.source?.payloadJson, /read after its Kafka message was released/, 'never an empty text in place of the producer\'s')
})

test('chunk messages taken in by the stages and the S3 sink\'s parser add no copy of their data to V8\'s heap', async (t) => {
  const n = 40
  const data = Buffer.alloc(512 * 1024, 7).toString('base64') // ~700 KB of base64, as a chunk of the snapshot tests
  const messages = Array.from({ length: n }, (_, i) => chunkMessage(i, data))
  const items: ChunkItem[] = []
  const before = getHeapStatistics().used_heap_size
  // every item is kept (as its batch keeps it until durable): whatever it holds is live
  for (const m of messages) items.push(parseItem(stage.run(m.value, m), m) as ChunkItem)
  const grown = getHeapStatistics().used_heap_size - before
  const carried = n * data.length
  t.equal(items.length, n)
  t.equal(items[0]?.data.length, data.length, 'each item carries its data as the message\'s bytes')
  t.ok(grown < carried / 8, `V8's heap grew by ${Math.round(grown / 1024)} KiB for ${n} chunks of ${Math.round(data.length / 1024)} KiB (${Math.round(carried / 1024)} KiB of data)`)
})

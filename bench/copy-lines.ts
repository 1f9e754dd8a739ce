import type { KafkaMessage } from '../src/kafka/types.ts'
import { compose } from '../src/pipeline/stage.ts'
import { eventCopyRow } from '../src/sinks/timescale/event-sink.ts'
import { decodeJson } from '../src/stages/decode-json.ts'
import { validateEnvelope } from '../src/stages/validate-envelope.ts'

const stage = compose(decodeJson({ maxBytes: 1 << 20 }), validateEnvelope())

/**
 * A Kafka value as the exact COPY line sluice's sink writes for it, so that the psql \copy
 * baseline loads the same rows into the same schema.
 */
export function normalizeRecordToCopyLine (value: Buffer, topic: string, partition: number, offset: number): string {
  return copyLineOf(originOf(value, topic, partition, offset))
}

/** The Kafka message a value would be, at that position. */
export function originOf (value: Buffer, topic: string, partition: number, offset: number): KafkaMessage {
  return { topic, partition, offset, key: null, value, timestamp: 0, headers: undefined, size: value.length }
}

/** normalizeRecordToCopyLine of a message. */
export function copyLineOf (origin: KafkaMessage): string {
  return eventCopyRow(stage.run(origin.value, origin), origin)
}

/**
 * Seed-mix records as the sink's COPY lines in ~5,000-line Buffers, each key on one partition
 * of `offsets.length` (its hash), at that partition's next offset (`offsets` advances).
 */
export function * seedCopyChunks (records: Iterable<{ key: Buffer, value: Buffer }>, topic: string, offsets: number[]): Generator<Buffer> {
  let parts: string[] = []
  for (const r of records) {
    const key = r.key.toString()
    let h = 0
    for (let j = 0; j < key.length; j++) h = (h * 31 + key.charCodeAt(j)) | 0
    const p = Math.abs(h) % offsets.length
    const offset = offsets[p] ?? 0
    offsets[p] = offset + 1
    parts.push(normalizeRecordToCopyLine(r.value, topic, p, offset))
    if (parts.length === 5000) { yield Buffer.from(parts.join('')); parts = [] }
  }
  if (parts.length > 0) yield Buffer.from(parts.join(''))
}

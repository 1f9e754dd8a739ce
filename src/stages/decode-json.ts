import { SluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'
import type { Stage } from '../pipeline/stage.ts'
import { parseWithBulkStrings } from './bulk-strings.ts'
import type { BulkOptions } from './bulk-strings.ts'

export interface DecodeJsonOptions {
  /** larger values are poison (SLUICE_ERR_TOO_LARGE) before any parsing */
  maxBytes: number
  /** long string values of this member come back as BulkString views of the message (see bulk-strings.ts) */
  bulk?: BulkOptions
}

/** Kafka value bytes to a JSON value. Empty values, bad UTF-8 JSON and oversize are poison. */
export function decodeJson (opts: DecodeJsonOptions): Stage<Buffer | null, unknown> {
  const max = opts.maxBytes
  const bulk = opts.bulk
  return {
    name: 'decode',
    run (value: Buffer | null, _origin: KafkaMessage): unknown {
      if (value === null || value.length === 0) throw new SluiceError('SLUICE_ERR_DECODE', 'empty message value (tombstone)')
      if (value.length > max) throw new SluiceError('SLUICE_ERR_TOO_LARGE', `message value is ${value.length} bytes, over the limit of ${max}`)
      try {
        return bulk === undefined ? JSON.parse(value.toString('utf8')) : parseWithBulkStrings(value, bulk)
      } catch (err) {
        throw new SluiceError('SLUICE_ERR_DECODE', `malformed JSON: ${(err as Error).message}`, { cause: err })
      }
    }
  }
}

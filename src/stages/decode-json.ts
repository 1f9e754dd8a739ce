import { SluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'
import type { Stage } from '../pipeline/stage.ts'
import { parseBulk } from './bulk-strings.ts'
import type { BulkOptions } from './bulk-strings.ts'
import { scanJson } from './json-scan.ts'
import { rememberSource } from './source-text.ts'

/** SLUICE_MAX_JSON_DEPTH's default */
export const DEFAULT_MAX_JSON_DEPTH = 512

export interface DecodeJsonOptions {
  /** larger values are poison (SLUICE_ERR_TOO_LARGE) before any parsing */
  maxBytes: number
  /** deeper nesting of objects and arrays is poison (SLUICE_ERR_TOO_DEEP) before any parsing */
  maxDepth?: number
  /** long string values of this member come back as BulkString views of the message (see bulk-strings.ts) */
  bulk?: BulkOptions
}

/**
 * Kafka value bytes to a JSON value. Poison: an empty value, oversize, bytes that are not
 * UTF-8, nesting past the limit, `\u0000` and lone surrogate escapes (json-scan.ts), and
 * malformed JSON. A top-level object remembers its bytes (source-text.ts), so that what is
 * stored of it is the producer's own text.
 */
export function decodeJson (opts: DecodeJsonOptions): Stage<Buffer | null, unknown> {
  const max = opts.maxBytes
  const scanOpts = { maxDepth: opts.maxDepth ?? DEFAULT_MAX_JSON_DEPTH, bulk: opts.bulk }
  const bulkKey = opts.bulk?.key ?? ''
  return {
    name: 'decode',
    run (value: Buffer | null, _origin: KafkaMessage): unknown {
      if (value === null || value.length === 0) throw new SluiceError('SLUICE_ERR_DECODE', 'empty message value (tombstone)')
      if (value.length > max) throw new SluiceError('SLUICE_ERR_TOO_LARGE', `message value is ${value.length} bytes, over the limit of ${max}`)
      const scan = scanJson(value, scanOpts)
      let parsed: unknown
      try {
        parsed = parseBulk(value, scan.bulk, bulkKey)
      } catch (err) {
        throw new SluiceError('SLUICE_ERR_DECODE', `malformed JSON: ${(err as Error).message}`, { cause: err })
      }
      if (scan.members !== null && typeof parsed === 'object' && parsed !== null) rememberSource(parsed, { buf: value, members: scan.members, copyPlain: scan.copyPlain })
      return parsed
    }
  }
}

/**
 * sluice's error taxonomy. Every error the worker acts on carries a stable code, a kind
 * that decides what happens next, and the cause it wraps:
 *   poison    - fails the same way every time: dead-lettered, the partition moves on
 *   transient - network, restart, throttling: retried with capped, jittered backoff
 *   fatal     - configuration, missing table, authentication: the worker stops
 * Every code is documented in docs/errors.md (test/unit/errors.test.ts checks it).
 */
export type ErrorKind = 'poison' | 'transient' | 'fatal'

export const errorCodes = {
  SLUICE_ERR_CONFIG: 'fatal',
  SLUICE_ERR_PIPELINE: 'fatal',
  SLUICE_ERR_RUNTIME: 'fatal',
  SLUICE_ERR_DECODE: 'poison',
  SLUICE_ERR_ENVELOPE: 'poison',
  SLUICE_ERR_SCHEMA: 'poison',
  SLUICE_ERR_TOO_LARGE: 'poison',
  SLUICE_ERR_ROUTE: 'poison',
  SLUICE_ERR_UTF8: 'poison',
  SLUICE_ERR_TOO_DEEP: 'poison',
  SLUICE_ERR_NUL: 'poison',
  SLUICE_ERR_VERSION: 'poison',
  SLUICE_ERR_TIMESTAMP: 'poison',
  SLUICE_ERR_STAGE: 'poison',
  SLUICE_ERR_ENCODE: 'poison',
  SLUICE_ERR_ROW_REJECTED: 'poison',
  SLUICE_ERR_PG_UNAVAILABLE: 'transient',
  SLUICE_ERR_PG_FATAL: 'fatal',
  SLUICE_ERR_PG_AUTH: 'fatal',
  SLUICE_ERR_PG_SCHEMA: 'fatal',
  SLUICE_ERR_MIGRATION: 'fatal',
  SLUICE_ERR_KAFKA_TRANSIENT: 'transient',
  SLUICE_ERR_KAFKA_FATAL: 'fatal',
  SLUICE_ERR_DLQ_PRODUCE: 'transient',
  SLUICE_ERR_S3_UNAVAILABLE: 'transient',
  SLUICE_ERR_S3_UPLOAD: 'poison',
  SLUICE_ERR_S3_REJECTED: 'poison',
  SLUICE_ERR_S3_FATAL: 'fatal',
  SLUICE_ERR_SNAPSHOT_INVALID: 'poison',
  SLUICE_ERR_SNAPSHOT_CHUNK: 'poison',
  SLUICE_ERR_SNAPSHOT_NO_STATE: 'poison',
  SLUICE_ERR_SHUTDOWN_TIMEOUT: 'fatal',
  SLUICE_ERR_INGEST_BODY: 'poison',
  SLUICE_ERR_INGEST_UNAVAILABLE: 'transient',
  SLUICE_ERR_STREAM_CURSOR: 'poison',
  SLUICE_ERR_STREAM_LIMIT: 'transient'
} as const satisfies Record<string, ErrorKind>

export type ErrorCode = keyof typeof errorCodes

export class SluiceError extends Error {
  readonly code: ErrorCode
  readonly kind: ErrorKind

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SluiceError'
    this.code = code
    this.kind = errorCodes[code]
  }

  get poison (): boolean { return this.kind === 'poison' }
  get transient (): boolean { return this.kind === 'transient' }
  get fatal (): boolean { return this.kind === 'fatal' }
}

export function isSluiceError (err: unknown): err is SluiceError {
  return err instanceof SluiceError
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

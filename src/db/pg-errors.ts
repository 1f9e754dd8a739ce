import { SluiceError } from '../errors.ts'

/** SQLSTATE classes and codes that decide what a PostgreSQL error means to the worker. */
const TRANSIENT_CODES = new Set([
  '40001', '40P01', // serialization failure, deadlock
  '53000', '53100', '53200', '53300', // insufficient resources, too many connections
  '55P03', // lock not available
  '57P01', '57P02', '57P03', // admin/crash shutdown, cannot connect now
  '57014' // query cancelled (statement timeout)
])
const AUTH_CODES = new Set(['28000', '28P01'])
const SCHEMA_CODES = new Set(['42P01', '42703', '3F000', '3D000', '42501', '42804'])
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

export function pgCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** A row the database rejects for its content: invalid input, out of range, too long, NUL... */
export function isRowRejection (err: unknown): boolean {
  const code = pgCode(err)
  return code !== undefined && code.length === 5 && (code.startsWith('22') || code === '23502' || code === '23514')
}

export function classifyPgError (err: unknown, doing: string): SluiceError {
  if (err instanceof SluiceError) return err
  const code = pgCode(err)
  const message = `${doing}: ${(err as Error)?.message ?? String(err)}`
  if (code !== undefined && AUTH_CODES.has(code)) return new SluiceError('SLUICE_ERR_PG_AUTH', message, { cause: err })
  if (code !== undefined && SCHEMA_CODES.has(code)) return new SluiceError('SLUICE_ERR_PG_SCHEMA', message, { cause: err })
  if (code !== undefined && (TRANSIENT_CODES.has(code) || code.startsWith('08'))) {
    return new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', message, { cause: err })
  }
  if (code !== undefined && NETWORK_ERRNOS.has(code)) return new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', message, { cause: err })
  // pg's own client-side failures: connection terminated, timeout while connecting...
  if (code === undefined && /Connection terminated|connection timeout|timeout exceeded|Client has encountered a connection error|not queryable|ECONNRESET/i.test(message)) {
    return new SluiceError('SLUICE_ERR_PG_UNAVAILABLE', message, { cause: err })
  }
  return new SluiceError('SLUICE_ERR_PG_FATAL', message, { cause: err })
}

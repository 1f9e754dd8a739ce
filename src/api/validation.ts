import type { FastifyReply, FastifySchemaValidationError } from 'fastify'

/** Schemas shared by the state endpoints (Fastify validates with ajv and ajv-formats). */
// date-time (ajv-formats) checks the calendar; the pattern keeps out what PostgreSQL refuses
// beside it: year 0000 and offsets past ±15:59
export const isoTime = { type: 'string', format: 'date-time', pattern: '^(?!0000)[0-9]{4}-.*([Zz]|[+-](0[0-9]|1[0-5]):?[0-5][0-9])$', maxLength: 64 } as const
export const entityType = { type: 'string', minLength: 1, maxLength: 100 } as const
export const entityId = { type: 'string', minLength: 1, maxLength: 200 } as const
export const versionNumber = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const

const HINTS: Record<string, string> = {
  'date-time': 'an ISO-8601 time with a zone, e.g. 2025-02-25T10:45:00Z'
}

/** "querystring/at must be an ISO-8601 time with a zone, e.g. ... (got "yesterday")": one sentence per error. */
export function schemaErrorFormatter (errors: FastifySchemaValidationError[], dataVar: string): Error {
  return new Error(errors.map((e) => {
    const p = e.params as { format?: string, additionalProperty?: string }
    const what = `${dataVar}${e.instancePath}`
    if (e.keyword === 'format' && p.format !== undefined && HINTS[p.format] !== undefined) return `${what} must be ${HINTS[p.format]}`
    if (e.keyword === 'pattern' && (e.params as { pattern?: string }).pattern === isoTime.pattern) return `${what} must be ${HINTS['date-time'] as string}, that PostgreSQL holds (year 0001 to 9999, an offset up to ±15:59)`
    if (p.additionalProperty !== undefined) return `${what} ${e.message ?? 'is invalid'}: "${p.additionalProperty}"`
    return `${what} ${e.message ?? 'is invalid'}`
  }).join(', '))
}

export interface ApiError { statusCode: number, error: string, message: string }

export function sendError (reply: FastifyReply, statusCode: number, error: string, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, error, message } satisfies ApiError)
}

import type { FastifyReply } from 'fastify'

/** The API's 4xx answers (contract 4): `message` names the field or the reason. */
export interface ApiErrorBody { statusCode: number, code: string, error: string, message: string }

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  429: 'Too Many Requests',
  503: 'Service Unavailable'
}

export function apiError (reply: FastifyReply, statusCode: number, code: string, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, code, error: REASONS[statusCode] ?? 'Error', message } satisfies ApiErrorBody)
}

/** JSON Schema of an error answer, for the routes' `response` (and so OpenAPI). */
export const errorSchema = {
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
    requestId: { type: 'string' }
  }
} as const

/** Error answers every scoped route may give: bad input, no or bad token, missing scope, rate limit. */
export const scopedErrors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema } as const

/** PostgreSQL refused a value of the request (SQLSTATE class 22: out of range, bad encoding...). */
export function isPgInputError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('22')
}

/** Runs a handler's query; a value PostgreSQL refuses is a 400 naming it, not a 500. */
export async function orBadInput<T> (reply: FastifyReply, what: string, fn: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await fn()
  } catch (err) {
    // the field is named; PostgreSQL's own text stays in the log (contract: no SQL text in answers)
    if (isPgInputError(err)) return apiError(reply, 400, 'SLUICE_ERR_BAD_REQUEST', `${what}: a value PostgreSQL cannot hold (out of range or malformed)`)
    throw err
  }
}

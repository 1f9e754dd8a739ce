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

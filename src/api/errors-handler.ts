import type { FastifyError, FastifyInstance, RouteOptions } from 'fastify'
import { isSluiceError } from '../errors.ts'
import { isPgInputError } from './api-error.ts'
import type { ApiErrorBody } from './api-error.ts'

/** What a 500 says: a request id to find the detail in the log, never the detail (SQL text...). */
export interface InternalErrorBody extends ApiErrorBody { requestId: string }

const REASONS: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' }

// every route of every instance, in registration order: what the fuzz tests iterate
const routes = new WeakMap<FastifyInstance, RouteOptions[]>()

/** The routes registered on `app` after installErrorHandling (their methods, URLs and schemas). */
export function routesOf (app: FastifyInstance): readonly RouteOptions[] {
  return routes.get(app) ?? []
}

/**
 * Contract 4 for every route, present and future: a 4xx is `{ statusCode, code, error, message }`
 * whose message names the field (Fastify's validation message, prefixed with where the field
 * is); a value PostgreSQL refuses (SQLSTATE class 22) is a 400; PostgreSQL or S3 away is a 503;
 * anything else is `500 { ..., code: 'SLUICE_ERR_INTERNAL', message: 'internal error', requestId }`
 * with the detail in the log only. Unknown routes answer the same 404 shape. Installed before
 * the routes (it records them too).
 */
export function installErrorHandling (app: FastifyInstance): void {
  const list: RouteOptions[] = []
  routes.set(app, list)
  app.addHook('onRoute', (r) => { list.push(r) })

  app.setNotFoundHandler(async (req, reply) => {
    return await reply.code(404).send({ statusCode: 404, code: 'SLUICE_ERR_NOT_FOUND', error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]?.slice(0, 200) ?? ''}` } satisfies ApiErrorBody)
  })

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500
    if (err.validation !== undefined) {
      return reply.code(400).send({ statusCode: 400, code: err.code ?? 'FST_ERR_VALIDATION', error: 'Bad Request', message: err.message } satisfies ApiErrorBody)
    }
    if (status >= 400 && status < 500) {
      // Fastify's own refusals (malformed JSON body, bad content type, bad URL...): their code and message name the problem
      return reply.code(status).send({ statusCode: status, code: err.code ?? 'SLUICE_ERR_BAD_REQUEST', error: REASONS[status] ?? 'Bad Request', message: err.message } satisfies ApiErrorBody)
    }
    if (isPgInputError(err)) {
      req.log.warn({ err }, 'PostgreSQL refused a value of the request')
      return reply.code(400).send({ statusCode: 400, code: 'SLUICE_ERR_BAD_REQUEST', error: 'Bad Request', message: 'a value of the request is out of PostgreSQL\'s range (its path, query or body)' } satisfies ApiErrorBody)
    }
    if (isSluiceError(err) && err.transient) {
      req.log.warn({ err }, 'a service the request needs is unavailable')
      return reply.code(503).send({ statusCode: 503, code: err.code, error: 'Service Unavailable', message: 'a service the request needs is unavailable; retry later' } satisfies ApiErrorBody)
    }
    req.log.error({ err, requestId: req.id, method: req.method, url: req.url }, 'request failed')
    return reply.code(500).send({ statusCode: 500, code: 'SLUICE_ERR_INTERNAL', error: 'Internal Server Error', message: 'internal error', requestId: String(req.id) } satisfies InternalErrorBody)
  })
}

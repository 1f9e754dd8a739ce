import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Pool } from 'pg'
import { listAudit, outcomeOf, writeAudit } from '../control/audit.ts'
import type { AuditRecord } from '../control/audit.ts'
import { errorSchema, orBadInput, scopedErrors } from './api-error.ts'
import { isoTime, schemaErrorFormatter } from './validation.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** set by a handler that wrote its own audit row inside its transaction */
    audited: boolean
  }
}

const READ_ONLY = new Set(['GET', 'HEAD', 'OPTIONS'])

export function auditRecord (req: FastifyRequest, statusCode: number, worker: string, detail?: unknown): AuditRecord {
  const p = req.principal
  return {
    actor: p?.name ?? 'unauthenticated',
    authMethod: p?.method ?? 'none',
    method: req.method,
    route: req.routeOptions.url ?? req.url.split('?')[0] ?? '',
    url: req.url,
    // ingest bodies are events, not operator intent: their size only
    body: req.routeOptions.config.scope === 'ingest' ? { bytes: Number(req.headers['content-length'] ?? 0) } : req.body,
    statusCode,
    outcome: outcomeOf(statusCode),
    detail,
    requestId: String(req.id),
    worker
  }
}

/**
 * Every mutating request (not GET/HEAD/OPTIONS) to a scoped route is a row of sluice_audit
 * once answered, refused ones (401, 403, 400, 429) included. Handlers that change state in a
 * transaction write their row in it and set `req.audited`.
 */
export function installAudit (app: FastifyInstance, pool: Pool, worker: string, logger: Logger): void {
  app.decorateRequest('audited', false)
  app.addHook('onResponse', async (req, reply) => {
    if (READ_ONLY.has(req.method) || req.audited || req.routeOptions.config.scope === undefined) return
    try {
      await writeAudit(pool, auditRecord(req, reply.statusCode, worker))
    } catch (err) {
      logger.error({ err, route: req.routeOptions.url, requestId: req.id }, 'cannot write the audit row of a request')
    }
  })
}

const auditEntry = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    actor: { type: 'string' },
    authMethod: { type: 'string' },
    method: { type: 'string' },
    route: { type: 'string' },
    url: { type: 'string' },
    body: {},
    statusCode: { type: 'integer' },
    outcome: { enum: ['ok', 'refused', 'failed'] },
    detail: {},
    requestId: { type: 'string' },
    worker: { type: 'string' }
  }
} as const

/** GET /admin/audit: the audit, newest first (scope operate). */
export async function auditRoutes (app: FastifyInstance, opts: { pool: Pool }): Promise<void> {
  app.get<{ Querystring: { before?: number, limit: number, actor?: string, route?: string, since?: string, until?: string } }>('/admin/audit', {
    config: { scope: 'operate' },
    schema: {
      summary: 'The audit of mutating requests, newest first',
      tags: ['audit'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          before: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'keyset: the `next` of the previous page' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          actor: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' },
          route: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' },
          since: isoTime,
          until: isoTime
        }
      },
      response: {
        200: { type: 'object', properties: { entries: { type: 'array', items: auditEntry }, next: { type: ['integer', 'null'] } } },
        ...scopedErrors,
        500: errorSchema
      }
    },
    schemaErrorFormatter
  }, async (req, reply) => await orBadInput(reply, 'querystring', async () => await listAudit(opts.pool, req.query)))
}

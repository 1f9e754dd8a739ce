import type { FastifyInstance } from 'fastify'
import type { Pool } from 'pg'
import { diffStates } from '../state/diff.ts'
import { entityCurrentState, entityHistory, entityStateAt, fieldTimeline } from '../state/queries.ts'
import type { StateBound } from '../state/queries.ts'
import { entityId, entityType, isoTime, schemaErrorFormatter, sendError, versionNumber } from './validation.ts'

export interface EntitiesOptions {
  pool: Pool
}

const params = {
  type: 'object',
  required: ['type', 'id'],
  additionalProperties: false,
  properties: { type: entityType, id: entityId }
} as const

interface Params { type: string, id: string }

/**
 * Time travel over one entity's events (src/state/queries.ts, the SQL fold):
 *   GET /entities/:type/:id/history?limit&after      events in fold order, paginated by seq
 *   GET /entities/:type/:id/state[?at=|?version=]    the projection, or the fold up to a time / version
 *   GET /entities/:type/:id/diff?from=&to=           fields added, removed, changed between two versions
 *   GET /entities/:type/:id/timeline/:field          every change of one field
 */
export async function entityRoutes (app: FastifyInstance, opts: EntitiesOptions): Promise<void> {
  const { pool } = opts
  const notFound = (p: Params, what = 'no events'): string => `${p.type}/${p.id}: ${what}`

  app.get<{ Params: Params, Querystring: { limit: number, after: number } }>('/entities/:type/:id/history', {
    config: { scope: 'read' },
    schema: {
      params,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, after: { ...versionNumber, default: 0 } }
      }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const k = { entity: req.params.type, entityId: req.params.id }
    const h = await entityHistory(pool, k, req.query.after, req.query.limit)
    if (h.total === 0) return sendError(reply, 404, 'Not Found', notFound(req.params))
    const last = h.events.at(-1)
    return { entity: k.entity, entityId: k.entityId, total: h.total, events: h.events, next: h.more && last !== undefined ? last.seq : null }
  })

  app.get<{ Params: Params, Querystring: { at?: string, version?: number } }>('/entities/:type/:id/state', {
    config: { scope: 'read' },
    schema: {
      params,
      querystring: { type: 'object', additionalProperties: false, properties: { at: isoTime, version: versionNumber } }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const { at, version } = req.query
    const k = { entity: req.params.type, entityId: req.params.id }
    if (at !== undefined && version !== undefined) return sendError(reply, 400, 'Bad Request', 'give either at or version, not both')
    if (at === undefined && version === undefined) {
      const cur = await entityCurrentState(pool, k)
      if (cur === null) return sendError(reply, 404, 'Not Found', notFound(req.params, 'no state (never created, or events without an entity id)'))
      return { ...cur, source: 'projection' }
    }
    const bound: StateBound = at !== undefined ? { at } : { version: version as number }
    const s = await entityStateAt(pool, k, bound)
    if (s === null) return sendError(reply, 404, 'Not Found', notFound(req.params, at !== undefined ? `no events at or before ${at}` : `no events up to version ${String(version)}`))
    return { ...s, source: 'fold', upTo: bound }
  })

  app.get<{ Params: Params, Querystring: { from: number, to: number } }>('/entities/:type/:id/diff', {
    config: { scope: 'read' },
    schema: {
      params,
      querystring: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: { from: versionNumber, to: versionNumber } }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const k = { entity: req.params.type, entityId: req.params.id }
    const [a, b] = await Promise.all([
      entityStateAt(pool, k, { version: req.query.from }),
      entityStateAt(pool, k, { version: req.query.to })
    ])
    if (a === null || b === null) {
      return sendError(reply, 404, 'Not Found', notFound(req.params, `no events up to version ${String(a === null ? req.query.from : req.query.to)}`))
    }
    return {
      entity: k.entity,
      entityId: k.entityId,
      from: { version: req.query.from, lastVersion: a.version, deleted: a.deleted, events: a.events },
      to: { version: req.query.to, lastVersion: b.version, deleted: b.deleted, events: b.events },
      ...diffStates(a.state, b.state)
    }
  })

  app.get<{ Params: Params & { field: string } }>('/entities/:type/:id/timeline/:field', {
    config: { scope: 'read' },
    schema: {
      params: { ...params, required: [...params.required, 'field'], properties: { ...params.properties, field: { type: 'string', minLength: 1, maxLength: 200 } } }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const k = { entity: req.params.type, entityId: req.params.id }
    const changes = await fieldTimeline(pool, k, req.params.field)
    if (changes === null) return sendError(reply, 404, 'Not Found', notFound(req.params))
    return { entity: k.entity, entityId: k.entityId, field: req.params.field, changes }
  })
}

import type { FastifyInstance } from 'fastify'
import { isSluiceError } from '../errors.ts'
import type { EventStreamHub } from '../ingest/event-stream.ts'
import { decodeCursor } from '../ingest/stream-cursor.ts'
import type { Cursor } from '../ingest/stream-cursor.ts'
import { entityId, entityType, schemaErrorFormatter } from './validation.ts'

export interface EventStreamRouteOptions {
  hub: EventStreamHub
}

interface Query { eventType?: string, entityType?: string, entityId?: string, lastEventId?: string }

const problem = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } }
} as const

/**
 * GET /events/stream (docs/ingest.md): Server-Sent Events of the events as they become durable,
 * optionally filtered; `Last-Event-ID` (or `?lastEventId=`, for clients that cannot set
 * headers) resumes after the last event received, without gap or repeat.
 */
export async function eventStreamRoutes (app: FastifyInstance, opts: EventStreamRouteOptions): Promise<void> {
  const { hub } = opts
  app.get<{ Querystring: Query, Headers: { 'last-event-id'?: string } }>('/events/stream', {
    config: { scope: 'read' },
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          eventType: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$' },
          entityType,
          entityId,
          lastEventId: { type: 'string', maxLength: 16384 }
        }
      },
      headers: { type: 'object', properties: { 'last-event-id': { type: 'string', maxLength: 16384 } } },
      response: {
        200: { type: 'string', description: 'text/event-stream: one `data:` JSON event per durable event, its `id:` a position to resume from; a final `event: close` says why the worker ended the stream' },
        400: problem,
        503: problem
      }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const text = req.headers['last-event-id'] ?? req.query.lastEventId
    let cursor: Cursor | null = null
    if (text !== undefined) {
      try {
        cursor = decodeCursor(text)
      } catch (err) {
        if (!isSluiceError(err)) throw err
        return reply.code(400).send({ statusCode: 400, code: err.code, error: 'Bad Request', message: err.message })
      }
    }
    if (!hub.reserve()) {
      return reply.code(503).header('retry-after', '5').send({ statusCode: 503, code: 'SLUICE_ERR_STREAM_LIMIT', error: 'Service Unavailable', message: `${hub.o.maxClients} streams are open (SLUICE_STREAM_MAX_CLIENTS); retry later` })
    }
    reply.hijack()
    const { eventType, entityType: et, entityId: id } = req.query
    await hub.open(reply.raw, cursor, { eventType, entityType: et, entityId: id }).catch((err) => {
      req.log.warn({ err }, 'event stream: could not start')
      if (!reply.raw.headersSent) reply.raw.writeHead(500, { 'content-type': 'application/json' })
      reply.raw.end(JSON.stringify({ statusCode: 500, code: 'SLUICE_ERR_INTERNAL', error: 'Internal Server Error', message: 'internal error', requestId: req.id }))
    })
  })
}

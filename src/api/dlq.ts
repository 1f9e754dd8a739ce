import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { ControlError } from '../control/control-error.ts'
import { countDeadLetters, discardDeadLetters, dlqStatuses, getDeadLetter, listDeadLetters } from '../control/dlq-store.ts'
import type { DlqFilter } from '../control/dlq-store.ts'
import { redrive } from '../control/redrive.ts'
import type { RedriveProducer } from '../control/redrive.ts'
import { apiError, errorSchema, orBadInput, scopedErrors } from './api-error.ts'
import { isoTime, schemaErrorFormatter } from './validation.ts'

export interface DlqRoutesOptions {
  pool: Pool
  producer: RedriveProducer
  brokers: string
  logger: Logger
}

// PostgreSQL text cannot hold NUL: refused as input rather than failing in the query
const NO_NUL = '^[^\\u0000]*$'
const topicName = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' } as const
const id = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const
const filterProps = {
  topic: topicName,
  partition: { type: 'integer', minimum: 0, maximum: 1000000 },
  code: { type: 'string', minLength: 1, maxLength: 100, pattern: NO_NUL },
  stage: { type: 'string', minLength: 1, maxLength: 100, pattern: NO_NUL },
  since: isoTime,
  until: isoTime
} as const
const filterSchema = { type: 'object', additionalProperties: false, minProperties: 1, properties: filterProps, description: 'dead letters matching every given field (status `dead`)' } as const
const encoded = { type: ['object', 'null'], required: ['encoding', 'data'], properties: { encoding: { enum: ['utf8', 'base64'] }, data: { type: 'string' } } } as const
const summary = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    deadLetteredAt: { type: 'string', format: 'date-time' },
    pipeline: { type: 'string' },
    stage: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
    attempts: { type: 'integer' },
    topic: { type: 'string' },
    partition: { type: 'integer' },
    offset: { type: 'integer' },
    status: { enum: [...dlqStatuses] },
    statusAt: { type: ['string', 'null'], format: 'date-time' },
    statusBy: { type: ['string', 'null'] },
    redrivenTo: { type: ['string', 'null'] },
    redrivenPartition: { type: ['integer', 'null'] },
    discardReason: { type: ['string', 'null'] },
    redriveOf: { type: ['integer', 'null'] },
    valueBytes: { type: ['integer', 'null'] }
  }
} as const
const full = {
  type: 'object',
  properties: {
    ...summary.properties,
    key: encoded,
    value: encoded,
    headers: { type: 'object', additionalProperties: encoded },
    timestamp: { type: ['string', 'null'], format: 'date-time' }
  }
} as const
const selection = {
  ids: { type: 'array', minItems: 1, maxItems: 10000, uniqueItems: true, items: id },
  filter: filterSchema,
  dryRun: { type: 'boolean', default: false, description: 'count what would be affected, change nothing' },
  limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000, description: 'at most this many dead letters per request (oldest first)' }
} as const
const oneOfSelection = { oneOf: [{ required: ['ids'] }, { required: ['filter'] }] } as const

interface Selection { ids?: number[], filter?: DlqFilter, dryRun: boolean, limit: number }

function filterOf (b: Selection): DlqFilter {
  return b.ids !== undefined ? { ids: b.ids } : { ...b.filter }
}

function controlError (reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ControlError) return apiError(reply, err.statusCode, err.code, err.message)
  throw err
}

/**
 * Dead letters (sluice_dlq):
 *   GET  /dlq?topic&partition&code&stage&since&until&status&after&limit   list, keyset by id
 *   GET  /dlq/:id                                                         one, in full
 *   POST /dlq/redrive {ids | filter, topic?, dryRun?, limit?, retryInterrupted?}
 *   POST /dlq/discard {ids | filter, reason, dryRun?, limit?}
 */
export async function dlqRoutes (app: FastifyInstance, opts: DlqRoutesOptions): Promise<void> {
  const { pool } = opts

  app.get<{ Querystring: DlqFilter & { after: number, limit: number } }>('/dlq', {
    config: { scope: 'read' },
    schema: {
      summary: 'List dead letters, oldest first (keyset pagination: pass `next` as `after`)',
      tags: ['dead letters'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...filterProps, status: { enum: [...dlqStatuses] }, after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }
      },
      response: { 200: { type: 'object', properties: { deadLetters: { type: 'array', items: summary }, next: { type: ['integer', 'null'] } } }, ...scopedErrors }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const { after, limit, ...filter } = req.query
    return await orBadInput(reply, 'querystring', async () => await listDeadLetters(pool, filter, after, limit))
  })

  app.get<{ Params: { id: number } }>('/dlq/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'One dead letter in full: origin, key, headers, value (text when valid UTF-8, else base64), error, status',
      tags: ['dead letters'],
      params: { type: 'object', required: ['id'], additionalProperties: false, properties: { id } },
      response: { 200: full, ...scopedErrors, 404: errorSchema }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const d = await getDeadLetter(pool, req.params.id)
    if (d === null) return apiError(reply, 404, 'SLUICE_ERR_NOT_FOUND', `dead letter ${req.params.id} does not exist`)
    return d
  })

  app.post<{ Body: Selection & { topic?: string, retryInterrupted: boolean } }>('/dlq/redrive', {
    config: { scope: 'operate' },
    schema: {
      summary: 'Redrive dead letters to their origin topic (and partition) or a named topic, at most once per request',
      description: 'An `Idempotency-Key` header makes a retried request answer what the first one did, producing nothing again. Without it, dead letters are still produced at most once: a repeated request finds them `redriven`.',
      tags: ['dead letters'],
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200, pattern: NO_NUL } } },
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { ...selection, topic: { ...topicName, description: 'default: each dead letter\'s origin topic' }, retryInterrupted: { type: 'boolean', default: false, description: 'also take dead letters an interrupted redrive left `redriving`' } },
        ...oneOfSelection
      },
      response: {
        200: { type: 'object', properties: { dryRun: { type: 'boolean' }, matched: { type: 'integer' }, redriven: { type: 'array', items: { type: 'integer' } }, topic: { type: ['string', 'null'] }, replayed: { type: 'boolean' } } },
        ...scopedErrors,
        404: errorSchema,
        503: errorSchema
      }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    const b = req.body
    const key = req.headers['idempotency-key']
    try {
      return await orBadInput(reply, 'body/filter', async () => await redrive(pool, opts.producer, opts.brokers, opts.logger, {
        filter: filterOf(b),
        topic: b.topic ?? null,
        dryRun: b.dryRun,
        limit: b.limit,
        retryInterrupted: b.retryInterrupted,
        by: req.principal?.name ?? 'anonymous',
        requestKey: typeof key === 'string' ? `key:${key}` : `req:${randomUUID()}`
      }))
    } catch (err) {
      return controlError(reply, err)
    }
  })

  app.post<{ Body: Selection & { reason: string } }>('/dlq/discard', {
    config: { scope: 'operate' },
    schema: {
      summary: 'Discard dead letters (status `dead`) with a reason',
      tags: ['dead letters'],
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['reason'],
        properties: { ...selection, reason: { type: 'string', minLength: 1, maxLength: 1000, pattern: NO_NUL } },
        ...oneOfSelection
      },
      response: {
        200: { type: 'object', properties: { dryRun: { type: 'boolean' }, matched: { type: 'integer' }, discarded: { type: 'array', items: { type: 'integer' } } } },
        ...scopedErrors
      }
    },
    schemaErrorFormatter
  }, async (req, reply) => await orBadInput(reply, 'body/filter', async () => {
    const b = req.body
    const filter = filterOf(b)
    if (b.dryRun) return { dryRun: true, matched: Math.min(await countDeadLetters(pool, { ...filter, status: 'dead' }), b.limit), discarded: [] }
    const c = await pool.connect()
    try {
      await c.query('BEGIN')
      const ids = await discardDeadLetters(c, filter, b.limit, req.principal?.name ?? 'anonymous', b.reason)
      await c.query('COMMIT')
      return { dryRun: false, discarded: ids }
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }))
}

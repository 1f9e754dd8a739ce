import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify'
import { ControlError } from '../control/control-error.ts'
import type { GroupControl } from '../control/group-control.ts'
import { topicPartitionCounts } from '../control/kafka-offsets.ts'
import { moveOffsets, storedOffsets } from '../control/offsets.ts'
import type { OffsetTarget } from '../control/offsets.ts'
import type { TopicPartition } from '../kafka/types.ts'
import type { PipelineRunner } from '../pipeline/runner.ts'
import { apiError, errorSchema, scopedErrors } from './api-error.ts'
import { auditRecord } from './audit.ts'
import { isoTime } from './validation.ts'

export interface AdminOptions {
  runner: PipelineRunner
  /** the topics the group consumes: pausing or resuming another is a 404 */
  topics: readonly string[]
  control: GroupControl
  brokers: string
  group: string
  worker: string
}

const topicPartition = {
  type: 'object',
  additionalProperties: false,
  required: ['topic', 'partition'],
  properties: {
    topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
    partition: { type: 'integer', minimum: 0, maximum: 1000000 }
  }
} as const

const partitionsBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    partitions: { type: 'array', minItems: 1, maxItems: 10000, items: topicPartition }
  }
} as const

interface PartitionsBody { partitions?: TopicPartition[] }

const partitionStatus = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    partition: { type: 'integer' },
    position: { type: ['integer', 'null'] },
    storedOffset: { type: ['integer', 'null'] },
    highWatermark: { type: ['integer', 'null'] },
    lag: { type: ['integer', 'null'] },
    paused: { type: 'boolean' },
    pausedBy: { type: 'array', items: { type: 'string' } }
  }
} as const

const runnerStatus = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    inflight: { type: 'object', properties: { messages: { type: 'integer' }, bytes: { type: 'integer' }, overBudget: { type: 'boolean' } } },
    pausedAll: { type: 'boolean' },
    partitions: { type: 'array', items: partitionStatus }
  }
} as const

const groupStatus = {
  type: 'object',
  properties: {
    group: { type: 'string' },
    /** false when the group's view could not be read from PostgreSQL (this worker's own part above still answers) */
    available: { type: 'boolean' },
    error: { type: 'string' },
    desired: {
      type: 'object',
      properties: {
        pausedAll: { type: 'boolean' },
        all: { type: ['object', 'null'], properties: { pausedBy: { type: 'string' }, pausedAt: { type: 'string' } } },
        partitions: { type: 'array', items: { type: 'object', properties: { topic: { type: 'string' }, partition: { type: 'integer' }, pausedBy: { type: 'string' }, pausedAt: { type: 'string' } } } }
      }
    },
    workers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          worker: { type: 'string' },
          host: { type: 'string' },
          pid: { type: 'integer' },
          startedAt: { type: 'string' },
          heartbeatAt: { type: 'string' },
          alive: { type: 'boolean' },
          status: runnerStatus
        }
      }
    }
  }
} as const

/** This worker's status (as before), plus the whole group's. */
const statusResponse = { type: 'object', properties: { ...runnerStatus.properties, worker: { type: 'string' }, group: groupStatus } } as const

// ajv's messages, with the name of an unknown property (ajv leaves it in params only)
const schemaErrorFormatter = (errors: FastifySchemaValidationError[], dataVar: string): Error => new Error(errors.map((e) => {
  const extra = (e.params as { additionalProperty?: unknown }).additionalProperty
  return `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}${typeof extra === 'string' ? `: "${extra}"` : ''}`
}).join(', '))

const partitionsRoute = (summary: string) => ({
  config: { scope: 'operate' as const },
  schema: { summary, tags: ['control'], body: partitionsBody, response: { 200: statusResponse, ...scopedErrors, 404: errorSchema, 500: errorSchema } },
  // no body at all means every partition (the schema alone would refuse a missing body)
  preValidation: async (req: FastifyRequest) => { req.body ??= {} },
  schemaErrorFormatter
})

const offsetTarget = {
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['offset'], properties: { offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } } },
    { type: 'object', additionalProperties: false, required: ['timestamp'], properties: { timestamp: isoTime } },
    { type: 'object', additionalProperties: false, required: ['position'], properties: { position: { enum: ['earliest', 'latest'] } } }
  ]
} as const

/**
 * Group-wide control (src/control/group-control.ts): the desired state is stored in
 * PostgreSQL and applied by every worker of the group to the partitions it owns, now and
 * after each rebalance. Pause/resume take `{ "partitions": [{ "topic", "partition" }] }` or no
 * body for everything.
 */
export async function adminRoutes (app: FastifyInstance, opts: AdminOptions): Promise<void> {
  const { runner, control } = opts
  const status = async (): Promise<unknown> => {
    const local = await runner.status()
    await control.heartbeat(local).catch((err) => { app.log.warn({ err }, 'heartbeat failed') }) // this worker's row fresh in the group view
    // the group's view lives in PostgreSQL: during an outage this worker's own status (paused
    // for backpressure, in-flight budget) is what the operator needs, so it still answers
    try {
      const [desired, workers] = await Promise.all([control.desired(), control.workers()])
      return { ...local, worker: opts.worker, group: { group: opts.group, available: true, desired, workers } }
    } catch (err) {
      app.log.warn({ err }, 'group status unavailable')
      const code = (err as { code?: unknown }).code
      return { ...local, worker: opts.worker, group: { group: opts.group, available: false, error: `the group's state could not be read from PostgreSQL${typeof code === 'string' ? ` (${code})` : ''}` } }
    }
  }

  app.get('/admin/status', {
    config: { scope: 'read' },
    schema: { summary: 'This worker\'s partitions and the whole group\'s: each worker\'s assignment, lag, pauses and why', tags: ['control'], response: { 200: statusResponse, ...scopedErrors } }
  }, status)

  /** null when every partition named exists in a topic the group consumes, else the 404's message naming the first that does not. */
  const unknownPartition = async (tps: readonly TopicPartition[] | undefined): Promise<string | null> => {
    if (tps === undefined) return null
    const foreign = tps.find((tp) => !opts.topics.includes(tp.topic))
    if (foreign !== undefined) return `body/partitions: topic ${foreign.topic} is not consumed by group ${opts.group} (it consumes ${opts.topics.join(', ')})`
    const counts = await topicPartitionCounts(opts.brokers, [...new Set(tps.map((tp) => tp.topic))])
    const missing = tps.find((tp) => tp.partition >= (counts.get(tp.topic) ?? 0))
    return missing === undefined ? null : `body/partitions: partition ${missing.partition} of topic ${missing.topic} does not exist (the topic has ${counts.get(missing.topic) ?? 0} partitions)`
  }

  app.post<{ Body: PartitionsBody | undefined }>('/admin/pause', partitionsRoute('Pause partitions (or all) for the whole consumer group'), async (req, reply) => {
    const unknown = await unknownPartition(req.body?.partitions)
    if (unknown !== null) return apiError(reply, 404, 'SLUICE_ERR_NOT_FOUND', unknown)
    await control.pause(req.body?.partitions, req.principal?.name ?? 'anonymous')
    return await status()
  })

  app.post<{ Body: PartitionsBody | undefined }>('/admin/resume', partitionsRoute('Resume partitions (or everything) for the whole consumer group'), async (req, reply) => {
    const unknown = await unknownPartition(req.body?.partitions)
    if (unknown !== null) return apiError(reply, 404, 'SLUICE_ERR_NOT_FOUND', unknown)
    await control.resume(req.body?.partitions)
    return await status()
  })

  app.get<{ Querystring: { topic?: string } }>('/admin/offsets', {
    config: { scope: 'read' },
    schema: {
      summary: 'The next offsets stored with the data, per partition (what the group resumes from)',
      tags: ['offsets'],
      querystring: { type: 'object', additionalProperties: false, properties: { topic: topicPartition.properties.topic } },
      response: {
        200: { type: 'object', properties: { group: { type: 'string' }, offsets: { type: 'array', items: { type: 'object', properties: { topic: { type: 'string' }, partition: { type: 'integer' }, nextOffset: { type: 'integer' }, updatedAt: { type: 'string' } } } } } },
        ...scopedErrors
      }
    },
    schemaErrorFormatter
  }, async (req) => ({ group: opts.group, offsets: await storedOffsets(control.pool, opts.group, req.query.topic) }))

  app.post<{ Body: { partitions: TopicPartition[], to: OffsetTarget } }>('/admin/offsets', {
    config: { scope: 'operate' },
    schema: {
      summary: 'Move the stored offsets of paused partitions to an offset, a time, earliest or latest',
      description: 'Only for partitions paused for the group (409 otherwise). One transaction with the audit row; the owner seeks at once. Re-read events are stored once (event ids); dead-lettered ones are processed again.',
      tags: ['offsets'],
      body: { type: 'object', additionalProperties: false, required: ['partitions', 'to'], properties: { partitions: { type: 'array', minItems: 1, maxItems: 1000, items: topicPartition }, to: offsetTarget } },
      response: {
        200: { type: 'object', properties: { moves: { type: 'array', items: { type: 'object', properties: { topic: { type: 'string' }, partition: { type: 'integer' }, from: { type: ['integer', 'null'] }, to: { type: 'integer' } } } } } },
        ...scopedErrors,
        404: errorSchema,
        409: errorSchema
      }
    },
    schemaErrorFormatter
  }, async (req, reply) => {
    try {
      const moves = await moveOffsets(control, opts.brokers, opts.group, req.body.partitions, req.body.to, (detail) => auditRecord(req, 200, opts.worker, detail))
      req.audited = true
      return { moves }
    } catch (err) {
      return refuse(reply, err)
    }
  })
}

function refuse (reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ControlError) return apiError(reply, err.statusCode, err.code, err.message)
  throw err
}

import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify'
import type { TopicPartition } from '../kafka/types.ts'
import type { PipelineRunner } from '../pipeline/runner.ts'

export interface AdminOptions {
  runner: PipelineRunner
}

const partitionsBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    partitions: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['topic', 'partition'],
        properties: {
          topic: { type: 'string', minLength: 1, maxLength: 249 },
          partition: { type: 'integer', minimum: 0 }
        }
      }
    }
  }
} as const

interface PartitionsBody { partitions?: TopicPartition[] }

const partitionsRoute = {
  schema: { body: partitionsBody },
  // no body at all means every partition (the schema alone would refuse a missing body)
  preValidation: async (req: FastifyRequest) => { req.body ??= {} },
  // ajv's messages, with the name of an unknown property (ajv leaves it in params only)
  schemaErrorFormatter: (errors: FastifySchemaValidationError[], dataVar: string) => new Error(errors.map((e) => {
    const extra = (e.params as { additionalProperty?: unknown }).additionalProperty
    return `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}${typeof extra === 'string' ? `: "${extra}"` : ''}`
  }).join(', '))
}

/**
 * Operator endpoints. Pause/resume take `{ "partitions": [{ "topic", "partition" }] }` or no
 * body for everything; a paused partition stays paused across rebalances of this worker.
 */
export async function adminRoutes (app: FastifyInstance, opts: AdminOptions): Promise<void> {
  app.get('/admin/status', async () => opts.runner.status())

  app.post<{ Body: PartitionsBody | undefined }>('/admin/pause', partitionsRoute, async (req) => {
    opts.runner.pause(req.body?.partitions)
    return opts.runner.status()
  })

  app.post<{ Body: PartitionsBody | undefined }>('/admin/resume', partitionsRoute, async (req) => {
    opts.runner.resume(req.body?.partitions)
    return opts.runner.status()
  })
}

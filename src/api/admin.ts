import type { FastifyInstance } from 'fastify'
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

/**
 * Operator endpoints. Pause/resume take `{ "partitions": [{ "topic", "partition" }] }` or no
 * body for everything; a paused partition stays paused across rebalances of this worker.
 */
export async function adminRoutes (app: FastifyInstance, opts: AdminOptions): Promise<void> {
  app.get('/admin/status', async () => opts.runner.status())

  app.post<{ Body: PartitionsBody | undefined }>('/admin/pause', { schema: { body: partitionsBody } }, async (req) => {
    opts.runner.pause(req.body?.partitions)
    return opts.runner.status()
  })

  app.post<{ Body: PartitionsBody | undefined }>('/admin/resume', { schema: { body: partitionsBody } }, async (req) => {
    opts.runner.resume(req.body?.partitions)
    return opts.runner.status()
  })
}

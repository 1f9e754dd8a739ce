import type { FastifyInstance } from 'fastify'
import type { Pool } from 'pg'
import type { PipelineRunner } from '../pipeline/runner.ts'

export interface HealthOptions {
  runner: PipelineRunner
  pool: Pool
}

/** Liveness (the process answers) and readiness (in the group, PostgreSQL reachable). */
export async function healthRoutes (app: FastifyInstance, opts: HealthOptions): Promise<void> {
  app.get('/health/live', async () => ({ status: 'ok' }))

  app.get('/health/ready', async (_req, reply) => {
    const consumer = opts.runner.ready()
    let database = false
    try {
      await opts.pool.query('SELECT 1')
      database = true
    } catch {
      database = false
    }
    const ready = consumer && database
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', consumer, database })
  })
}

import type { FastifyInstance } from 'fastify'
import type { SluiceMetrics } from '../metrics/metrics.ts'
import type { PipelineRunner } from '../pipeline/runner.ts'

export interface MetricsOptions {
  runner: PipelineRunner
  metrics: SluiceMetrics
}

/** Prometheus exposition; lag and in-flight gauges are refreshed at scrape time. */
export async function metricsRoutes (app: FastifyInstance, opts: MetricsOptions): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    await opts.runner.status()
    reply.header('content-type', opts.metrics.registry.contentType)
    return opts.metrics.registry.metrics()
  })
}

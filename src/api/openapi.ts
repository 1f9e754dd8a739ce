import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { errorSchema } from './api-error.ts'

const SCOPES: Record<string, string> = {
  read: 'status, offsets, entities, snapshots, dead letters',
  operate: 'pause, resume, offsets, redrive, discard, restore, audit',
  ingest: 'the HTTP ingest endpoint'
}

/**
 * OpenAPI 3.1 generated from the routes' JSON Schemas (@fastify/swagger): each route's scope
 * becomes its security requirement (`bearer: [scope]`) and a line of its description; routes
 * without a scope are public. Served as GET /openapi.json, with a docs page at /docs.
 * Registered before the routes (the plugin records them as they are added).
 */
export async function openapi (app: FastifyInstance, version: string): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sluice operator API',
        version,
        description: 'Control plane of a sluice consumer group. Bearer tokens (tokens file or JWT) carry scopes: ' +
          Object.entries(SCOPES).map(([s, what]) => `\`${s}\` (${what})`).join(', ') + '. 401 without a valid token, 403 without the scope, 429 over the rate limit (with Retry-After).'
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token of SLUICE_API_TOKENS_FILE, or a JWT' } },
        schemas: { Error: errorSchema as unknown as Record<string, unknown> }
      }
    },
    transform: ({ schema, url, route }) => {
      const scope = (route.config as { scope?: string } | undefined)?.scope
      const s = { ...(schema ?? {}) } as Record<string, unknown>
      if (scope === undefined) {
        s.security = []
      } else {
        s.security = [{ bearer: [scope] }]
        s.description = `${typeof s.description === 'string' ? s.description + '\n\n' : ''}Scope: \`${scope}\`.`
      }
      return { schema: s as never, url }
    }
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

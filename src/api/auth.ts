import { readFileSync } from 'node:fs'
// types only (the request's jwtVerify): the plugin is imported when a JWT key is configured
import type {} from '@fastify/jwt'
import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { ApiConfig } from '../config/config.ts'
import { SluiceError, errorMessage } from '../errors.ts'
import { loadTokens, matchToken, scopes } from '../control/tokens.ts'
import type { Scope, TokenEntry } from '../control/tokens.ts'
import { apiError } from './api-error.ts'

/** Who made a request, as the audit and the redrive status record it. */
export interface Principal {
  name: string
  method: 'token' | 'jwt' | 'anonymous'
  scopes: ReadonlySet<Scope>
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the scope a route needs (contract 3); no scope: a public route */
    scope?: Scope
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}

export interface AuthSetup {
  tokens: TokenEntry[]
  jwtKey: Buffer | null
}

/**
 * Reads the credentials named by the configuration. A bad tokens file or an unreadable key is
 * SLUICE_ERR_CONFIG (fatal): the worker stops at start-up with the entry named.
 */
export function loadAuth (api: ApiConfig): AuthSetup {
  const tokens = api.tokensFile === null ? [] : loadTokens(api.tokensFile)
  let jwtKey: Buffer | null = null
  if (api.jwt !== null) {
    try {
      jwtKey = readFileSync(api.jwt.keyFile)
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_CONFIG', `SLUICE_API_JWT_KEY_FILE ${api.jwt.keyFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { cause: err })
    }
    if (jwtKey.length === 0) throw new SluiceError('SLUICE_ERR_CONFIG', `SLUICE_API_JWT_KEY_FILE ${api.jwt.keyFile} is empty`)
  }
  return { tokens, jwtKey }
}

const ALL: ReadonlySet<Scope> = new Set(scopes)
const ANONYMOUS_OFF: Principal = { name: 'anonymous', method: 'anonymous', scopes: ALL }
const ANONYMOUS_READ: Principal = { name: 'anonymous', method: 'anonymous', scopes: new Set(['read']) }

function jwtScopes (claims: Record<string, unknown>): Set<Scope> {
  const raw = typeof claims.scope === 'string' ? claims.scope.split(' ') : Array.isArray(claims.scopes) ? claims.scopes : []
  return new Set(raw.filter((s): s is Scope => scopes.includes(s as Scope)))
}

/**
 * Authentication and authorization of every route that declares `config.scope`: a bearer
 * token of the tokens file (sha256, constant-time), else a JWT (HS256/RS256, claims `sub` and
 * `scope` or `scopes`). 401 without valid credentials, 403 without the scope. Then the rate
 * limit per principal (429 with Retry-After). Routes without a scope are public.
 */
export async function installAuth (app: FastifyInstance, api: ApiConfig, setup: AuthSetup, logger: Logger): Promise<void> {
  const configured = setup.tokens.length > 0 || setup.jwtKey !== null
  if (api.auth === 'off') logger.warn('SLUICE_API_AUTH=off: every API request is allowed without credentials')
  else if (!configured) logger.warn('no API credentials (SLUICE_API_TOKENS_FILE, SLUICE_API_JWT_KEY_FILE): read routes are open, every other route answers 401')
  if (setup.jwtKey !== null && api.jwt !== null) {
    // imported only then: 16-42 ms of every start-up otherwise
    const { default: fastifyJwt } = await import('@fastify/jwt')
    await app.register(fastifyJwt, { secret: { public: setup.jwtKey, private: '' }, verify: { algorithms: [api.jwt.algorithm] } })
  }
  app.decorateRequest('principal', null)

  const authenticate = async (req: FastifyRequest): Promise<Principal | string> => {
    if (api.auth === 'off') return ANONYMOUS_OFF
    const header = req.headers.authorization
    if (header === undefined) return configured ? 'a bearer token is required (Authorization: Bearer <token>)' : ANONYMOUS_READ
    const m = /^Bearer +([\x21-\x7e]{1,4096})$/i.exec(header)
    if (m === null) return 'the Authorization header must be "Bearer <token>"'
    const token = m[1] as string
    const entry = matchToken(setup.tokens, token)
    if (entry !== null) return { name: entry.name, method: 'token', scopes: entry.scopes }
    if (setup.jwtKey !== null && token.split('.').length === 3) {
      try {
        const claims = await req.jwtVerify<Record<string, unknown>>()
        const sub = typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub.slice(0, 200) : 'jwt'
        return { name: `jwt:${sub}`, method: 'jwt', scopes: jwtScopes(claims) }
      } catch (err) {
        return `the token is not valid: ${errorMessage(err).slice(0, 200)}`
      }
    }
    return 'the token is not valid'
  }

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const scope = req.routeOptions.config.scope
    if (scope === undefined) return
    const who = await authenticate(req)
    if (typeof who === 'string') {
      reply.header('www-authenticate', 'Bearer')
      return apiError(reply, 401, 'SLUICE_ERR_UNAUTHORIZED', configured || api.auth === 'off'
        ? who
        : `${req.method} ${req.routeOptions.url ?? ''} needs the ${scope} scope and no API credentials are configured (SLUICE_API_TOKENS_FILE or SLUICE_API_JWT_KEY_FILE; SLUICE_API_AUTH=off to allow it without)`)
    }
    req.principal = who
    if (!who.scopes.has(scope)) {
      if (who.method === 'anonymous') {
        reply.header('www-authenticate', 'Bearer')
        return apiError(reply, 401, 'SLUICE_ERR_UNAUTHORIZED', `${req.method} ${req.routeOptions.url ?? ''} needs the ${scope} scope and no API credentials are configured (SLUICE_API_TOKENS_FILE or SLUICE_API_JWT_KEY_FILE; SLUICE_API_AUTH=off to allow it without)`)
      }
      return apiError(reply, 403, 'SLUICE_ERR_FORBIDDEN', `${who.name} lacks the ${scope} scope that ${req.method} ${req.routeOptions.url ?? ''} needs`)
    }
  })

  await app.register(fastifyRateLimit, {
    global: true,
    max: api.rateLimitPerMinute,
    timeWindow: 60_000,
    // after authentication: the key is the principal, not the address
    hook: 'preHandler',
    keyGenerator: (req) => req.principal !== null && req.principal.method !== 'anonymous' ? `p:${req.principal.name}` : `ip:${req.ip}`,
    allowList: (req) => req.routeOptions.config.scope === undefined,
    errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, code: 'SLUICE_ERR_RATE_LIMITED', error: 'Too Many Requests', message: `rate limit of ${ctx.max} requests per minute exceeded, retry in ${ctx.after}` })
  })
}

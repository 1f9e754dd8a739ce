import type { FastifyInstance } from 'fastify'
import { apiError } from './api-error.ts'

/** The first string of `v` (a request's params, query or body) no column can hold, as `where`: why. */
function badString (v: unknown, where: string): string | null {
  const todo: Array<[unknown, string]> = [[v, where]]
  for (let n = 0; todo.length > 0 && n < 100_000; n++) {
    const [x, at] = todo.pop() as [unknown, string]
    if (typeof x === 'string') {
      if (x.includes('\u0000')) return `${at} contains U+0000 (NUL), which PostgreSQL text cannot hold`
      if (/\p{Surrogate}/u.test(x)) return `${at} contains a lone surrogate (\\ud800-\\udfff alone), which is not a Unicode character`
    } else if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) todo.push([x[i], `${at}/${i}`])
    } else if (typeof x === 'object' && x !== null) {
      for (const [k, val] of Object.entries(x)) {
        if (k.includes('\u0000') || /\p{Surrogate}/u.test(k)) return `${at} has a member name with U+0000 or a lone surrogate`
        todo.push([val, `${at}/${k}`])
      }
    }
  }
  return null
}

/**
 * Every route, present and future: a NUL or a lone surrogate anywhere in the path parameters,
 * the query or the body is a 400 naming the field, before validation and before PostgreSQL
 * (which would refuse the NUL with a 500's worth of error, or store U+FFFD for the surrogate).
 */
export function installInputGuard (app: FastifyInstance): void {
  app.addHook('preValidation', async (req, reply) => {
    const why = badString(req.params, 'params') ?? badString(req.query, 'querystring') ?? badString(req.body, 'body')
    if (why !== null) return apiError(reply, 400, 'SLUICE_ERR_BAD_REQUEST', why)
  })
}

import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Pool } from 'pg'
import { pipeline } from 'node:stream/promises'
import { PassThrough } from 'node:stream'
import { RestoreError, restoreState } from '../state/restore.ts'
import type { RestoreRequest } from '../state/restore.ts'
import { check, getSnapshot, HashTap, listSnapshots, MissingObjectError, TamperedError } from '../state/snapshot-store.ts'
import type { SnapshotInfo, SnapshotObjects } from '../state/snapshot-store.ts'
import { isoTime, schemaErrorFormatter, sendError } from './validation.ts'

export interface SnapshotsOptions {
  pool: Pool
  /** sluice's schema (the live entity_state) */
  schema: string
  /** null: S3 is not configured (downloads and snapshot restores answer 503) */
  objects: SnapshotObjects | null
}

const snapshotId = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$' } as const
const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: snapshotId } } as const

const restoreBody = (needsAt: boolean): Record<string, unknown> => ({
  type: 'object',
  additionalProperties: false,
  required: [...(needsAt ? ['at'] : []), 'target', 'requestedBy'],
  properties: {
    at: isoTime,
    target: { enum: ['live', 'audit'] },
    auditSchema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
    requestedBy: { type: 'string', minLength: 1, maxLength: 200 },
    useSnapshots: { type: 'boolean' }
  },
  if: { properties: { target: { const: 'audit' } } },
  then: { required: ['auditSchema'] }
})

type RestoreBody = Omit<RestoreRequest, 'snapshotId' | 'at'> & { at?: string }

/**
 * The snapshot index and restores:
 *   GET  /snapshots?before=&kind=&limit=        the index, newest first
 *   GET  /snapshots/:id[?download=1]             metadata, or the object (checked, see below)
 *   GET  /snapshots/:id/object                   the object: read once to check its sha256 and
 *        size against the index (a mismatch is a 409 and nothing is served), then streamed
 *        (that same version, If-Match) while hashed again; a change in between cuts the stream
 *   POST /restore {at, target, auditSchema?, requestedBy, useSnapshots?}
 *   POST /snapshots/:id/restore {target, auditSchema?, requestedBy, at? (default as_of)}
 */
export async function snapshotRoutes (app: FastifyInstance, opts: SnapshotsOptions): Promise<void> {
  const { pool, objects } = opts

  app.get<{ Querystring: { before?: string, kind?: string, limit: number } }>('/snapshots', {
    config: { scope: 'read' },
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { before: isoTime, kind: { enum: ['inline', 'chunked', 'state'] }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }
      }
    },
    schemaErrorFormatter
  }, async (req) => ({ snapshots: await listSnapshots(pool, req.query) }))

  const serveObject = async (s: SnapshotInfo, reply: FastifyReply): Promise<FastifyReply> => {
    if (objects === null) return sendError(reply, 503, 'Service Unavailable', 'S3 is not configured (SLUICE_S3_BUCKET): snapshot objects cannot be read')
    let etag: string | undefined
    let body
    try {
      etag = await objects.verify(s)
      body = (await objects.open(s, etag)).body
    } catch (err) {
      return objectError(reply, err)
    }
    const tap = new HashTap()
    const out = new PassThrough()
    // the object was checked a moment ago; if what streams now differs, the response is cut
    pipeline(body, tap, out).then(() => {
      try { check(s, tap) } catch (err) { out.destroy(err as Error) }
    }).catch((err: unknown) => out.destroy(err as Error))
    return reply
      .header('content-type', s.kind === 'state' ? 'application/gzip' : 'application/octet-stream')
      .header('content-length', String(s.sizeBytes))
      .header('x-sluice-checksum', s.checksum)
      .header('content-disposition', `attachment; filename="${s.objectKey.split('/').at(-1) ?? s.snapshotId}"`)
      .send(out)
  }

  app.get<{ Params: { id: string }, Querystring: { download?: string } }>('/snapshots/:id', {
    config: { scope: 'read' },
    schema: { params: idParams, querystring: { type: 'object', additionalProperties: false, properties: { download: { enum: ['1', '0', 'true', 'false'] } } } },
    schemaErrorFormatter
  }, async (req, reply) => {
    const s = await getSnapshot(pool, req.params.id)
    if (s === null) return sendError(reply, 404, 'Not Found', `snapshot ${req.params.id} is not in the index`)
    return req.query.download === '1' || req.query.download === 'true' ? await serveObject(s, reply) : s
  })

  app.get<{ Params: { id: string } }>('/snapshots/:id/object', { config: { scope: 'read' }, schema: { params: idParams }, schemaErrorFormatter }, async (req, reply) => {
    const s = await getSnapshot(pool, req.params.id)
    if (s === null) return sendError(reply, 404, 'Not Found', `snapshot ${req.params.id} is not in the index`)
    return await serveObject(s, reply)
  })

  const restore = async (reply: FastifyReply, r: RestoreRequest): Promise<unknown> => {
    try {
      return await restoreState({ pool, schema: opts.schema, objects }, r)
    } catch (err) {
      if (err instanceof RestoreError) return sendError(reply, err.statusCode, err.statusCode === 400 ? 'Bad Request' : err.statusCode === 404 ? 'Not Found' : 'Service Unavailable', err.message)
      return objectError(reply, err)
    }
  }

  app.post<{ Body: RestoreBody & { at: string } }>('/restore', { config: { scope: 'operate' }, schema: { body: restoreBody(true) }, schemaErrorFormatter }, async (req, reply) =>
    await restore(reply, req.body))

  app.post<{ Params: { id: string }, Body: RestoreBody }>('/snapshots/:id/restore', { config: { scope: 'operate' }, schema: { params: idParams, body: restoreBody(false) }, schemaErrorFormatter }, async (req, reply) => {
    let at = req.body.at
    if (at === undefined) {
      const s = await getSnapshot(pool, req.params.id)
      if (s === null) return sendError(reply, 404, 'Not Found', `snapshot ${req.params.id} is not in the index`)
      if (s.asOf === null) return sendError(reply, 400, 'Bad Request', `snapshot ${req.params.id} is a '${s.kind}' snapshot: only 'state' snapshots (entity_state dumps) can be restored`)
      at = s.asOf
    }
    return await restore(reply, { ...req.body, at, snapshotId: req.params.id })
  })
}

/** Integrity failures as answers; anything else goes to Fastify's error handler (500). */
function objectError (reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof TamperedError) {
    reply.log.error({ expected: err.expected, actual: err.actual }, err.message)
    return reply.code(409).send({ statusCode: 409, error: 'Conflict', code: 'SNAPSHOT_TAMPERED', message: err.message, expected: err.expected, actual: err.actual })
  }
  if (err instanceof MissingObjectError) return reply.code(409).send({ statusCode: 409, error: 'Conflict', code: 'SNAPSHOT_MISSING', message: err.message })
  throw err
}

import type { Pool, PoolClient } from 'pg'

/** One audited request (sluice_audit). */
export interface AuditRecord {
  actor: string
  authMethod: 'token' | 'jwt' | 'anonymous' | 'none'
  method: string
  route: string
  url: string
  body: unknown
  statusCode: number
  outcome: 'ok' | 'refused' | 'failed'
  detail?: unknown
  requestId: string
  worker: string
}

export interface AuditRow {
  id: number
  at: string
  actor: string
  authMethod: string
  method: string
  route: string
  url: string
  body: unknown
  statusCode: number
  outcome: string
  detail: unknown
  requestId: string
  worker: string
}

const MAX_BODY = 64 * 1024

/** The body as JSON text, capped; what cannot be parsed back is kept as a string. */
function bodyText (body: unknown): string | null {
  if (body === undefined || body === null) return null
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  return text.length > MAX_BODY ? text.slice(0, MAX_BODY) : text
}

export function outcomeOf (statusCode: number): AuditRecord['outcome'] {
  return statusCode < 400 ? 'ok' : statusCode < 500 ? 'refused' : 'failed'
}

export async function writeAudit (db: Pool | PoolClient, r: AuditRecord): Promise<number> {
  const res = await db.query(
    `INSERT INTO sluice_audit (actor, auth_method, method, route, url, body, status_code, outcome, detail, request_id, worker)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11) RETURNING id`,
    [r.actor, r.authMethod, r.method, r.route, r.url.slice(0, 2048), bodyText(r.body)?.replaceAll('\u0000', '\\u0000') ?? null, r.statusCode, r.outcome,
      r.detail === undefined ? null : JSON.stringify(r.detail).replaceAll('\\u0000', ''), r.requestId, r.worker]
  )
  return Number(res.rows[0].id)
}

export interface AuditQuery { before?: number, limit: number, actor?: string, route?: string, since?: string, until?: string }

/** Newest first, keyset-paginated by id (`before` = the last id of the previous page). */
export async function listAudit (pool: Pool, q: AuditQuery): Promise<{ entries: AuditRow[], next: number | null }> {
  const where: string[] = []
  const args: unknown[] = []
  const add = (sql: string, v: unknown): void => { args.push(v); where.push(sql.replace('?', `$${args.length}`)) }
  if (q.before !== undefined) add('id < ?', q.before)
  if (q.actor !== undefined) add('actor = ?', q.actor)
  if (q.route !== undefined) add('route = ?', q.route)
  if (q.since !== undefined) add('at >= ?', q.since)
  if (q.until !== undefined) add('at < ?', q.until)
  args.push(q.limit + 1)
  const res = await pool.query(
    `SELECT id, at, actor, auth_method, method, route, url, body, status_code, outcome, detail, request_id, worker
     FROM sluice_audit ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT $${args.length}`, args)
  const rows = res.rows.slice(0, q.limit).map((r): AuditRow => {
    let body: unknown = r.body
    if (typeof r.body === 'string') try { body = JSON.parse(r.body) } catch { body = r.body }
    return {
      id: Number(r.id),
      at: (r.at as Date).toISOString(),
      actor: r.actor,
      authMethod: r.auth_method,
      method: r.method,
      route: r.route,
      url: r.url,
      body,
      statusCode: r.status_code,
      outcome: r.outcome,
      detail: r.detail,
      requestId: r.request_id,
      worker: r.worker
    }
  })
  return { entries: rows, next: res.rows.length > q.limit ? (rows.at(-1)?.id ?? null) : null }
}

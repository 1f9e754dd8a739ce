import type { Pool, PoolClient } from 'pg'

export const dlqStatuses = ['dead', 'redriving', 'redriven', 'discarded'] as const
export type DlqStatus = typeof dlqStatuses[number]

/** Which dead letters: every given field narrows the set. */
export interface DlqFilter {
  ids?: number[]
  topic?: string
  partition?: number
  code?: string
  stage?: string
  since?: string
  until?: string
  status?: DlqStatus
}

export interface DlqSummary {
  id: number
  deadLetteredAt: string
  pipeline: string
  stage: string
  code: string
  message: string
  attempts: number
  topic: string
  partition: number
  offset: number
  status: DlqStatus
  statusAt: string | null
  statusBy: string | null
  redrivenTo: string | null
  redrivenPartition: number | null
  discardReason: string | null
  redriveOf: number | null
  valueBytes: number | null
}

export interface Encoded { encoding: 'utf8' | 'base64', data: string }

export interface DlqFull extends DlqSummary {
  key: Encoded | null
  value: Encoded | null
  headers: Record<string, Encoded>
  timestamp: string | null
}

/** What a redrive produces from one dead letter. */
export interface DlqMessage {
  id: number
  topic: string
  partition: number
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, Buffer>
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** Text when the bytes are valid UTF-8, else base64. */
export function encodeBytes (b: Buffer): Encoded {
  try {
    return { encoding: 'utf8', data: decoder.decode(b) }
  } catch {
    return { encoding: 'base64', data: b.toString('base64') }
  }
}

/** WHERE clause of a filter; parameters appended to args. */
export function filterSql (f: DlqFilter, args: unknown[]): string {
  const where: string[] = []
  const add = (sql: string, v: unknown): void => { args.push(v); where.push(sql.replace('?', `$${args.length}`)) }
  if (f.ids !== undefined) add('id = ANY(?::bigint[])', f.ids.map(String))
  if (f.topic !== undefined) add('source_topic = ?', f.topic)
  if (f.partition !== undefined) add('source_partition = ?', f.partition)
  if (f.code !== undefined) add('error_code = ?', f.code)
  if (f.stage !== undefined) add('stage = ?', f.stage)
  if (f.since !== undefined) add('dead_lettered_at >= ?::timestamptz', f.since)
  if (f.until !== undefined) add('dead_lettered_at < ?::timestamptz', f.until)
  if (f.status !== undefined) add('status = ?', f.status)
  return where.length > 0 ? where.join(' AND ') : 'true'
}

const SUMMARY = `id, dead_lettered_at, pipeline, stage, error_code, error_message, attempts, source_topic,
  source_partition, source_offset, status, status_at, status_by, redriven_to, redriven_partition,
  discard_reason, redrive_of, octet_length(message_value) AS value_bytes`

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

function summary (r: any): DlqSummary {
  return {
    id: Number(r.id),
    deadLetteredAt: (r.dead_lettered_at as Date).toISOString(),
    pipeline: r.pipeline,
    stage: r.stage,
    code: r.error_code,
    message: r.error_message,
    attempts: r.attempts,
    topic: r.source_topic,
    partition: r.source_partition,
    offset: Number(r.source_offset),
    status: r.status,
    statusAt: iso(r.status_at),
    statusBy: r.status_by,
    redrivenTo: r.redriven_to,
    redrivenPartition: r.redriven_partition,
    discardReason: r.discard_reason,
    redriveOf: r.redrive_of === null ? null : Number(r.redrive_of),
    valueBytes: r.value_bytes === null ? null : Number(r.value_bytes)
  }
}

/** Oldest first, keyset-paginated by id (`after` = the last id of the previous page). */
export async function listDeadLetters (pool: Pool, f: DlqFilter, after: number, limit: number): Promise<{ deadLetters: DlqSummary[], next: number | null }> {
  const args: unknown[] = []
  const where = filterSql(f, args)
  args.push(after, limit + 1)
  const res = await pool.query(`SELECT ${SUMMARY} FROM sluice_dlq WHERE ${where} AND id > $${args.length - 1} ORDER BY id LIMIT $${args.length}`, args)
  const rows = res.rows.slice(0, limit).map(summary)
  return { deadLetters: rows, next: res.rows.length > limit ? (rows.at(-1)?.id ?? null) : null }
}

function headersOf (j: unknown): Record<string, Buffer> {
  const out: Record<string, Buffer> = {}
  if (typeof j !== 'object' || j === null) return out
  for (const [k, v] of Object.entries(j)) if (typeof v === 'string') out[k] = Buffer.from(v, 'base64')
  return out
}

export async function getDeadLetter (pool: Pool, id: number): Promise<DlqFull | null> {
  const res = await pool.query(`SELECT ${SUMMARY}, message_key, message_value, message_headers, message_ts FROM sluice_dlq WHERE id = $1`, [id])
  const r = res.rows[0]
  if (r === undefined) return null
  const headers: Record<string, Encoded> = {}
  for (const [k, v] of Object.entries(headersOf(r.message_headers))) headers[k] = encodeBytes(v)
  return {
    ...summary(r),
    key: r.message_key === null ? null : encodeBytes(r.message_key),
    value: r.message_value === null ? null : encodeBytes(r.message_value),
    headers,
    timestamp: iso(r.message_ts)
  }
}

export async function countDeadLetters (db: Pool | PoolClient, f: DlqFilter): Promise<number> {
  const args: unknown[] = []
  const res = await db.query(`SELECT count(*)::bigint AS n FROM sluice_dlq WHERE ${filterSql(f, args)}`, args)
  return Number(res.rows[0].n)
}

/**
 * Claims dead letters for a redrive in the caller's transaction: `dead` (and, when `retry`,
 * `redriving` ones a crashed redrive left) become `redriving` under this request. A second
 * request for the same rows finds none left, so nothing is produced twice.
 */
export async function claimForRedrive (client: PoolClient, f: DlqFilter, limit: number, by: string, requestId: string, retry: boolean): Promise<DlqMessage[]> {
  const args: unknown[] = []
  const where = filterSql({ ...f, status: undefined }, args)
  args.push(retry ? ['dead', 'redriving'] : ['dead'], limit, by, requestId)
  const n = args.length
  const res = await client.query(
    `UPDATE sluice_dlq SET status = 'redriving', status_at = now(), status_by = $${n - 1}, redrive_request = $${n}
     WHERE id IN (SELECT id FROM sluice_dlq WHERE ${where} AND status = ANY($${n - 3}::text[]) ORDER BY id LIMIT $${n - 2} FOR UPDATE SKIP LOCKED)
     RETURNING id, source_topic, source_partition, message_key, message_value, message_headers`, args)
  return res.rows.map((r) => ({ id: Number(r.id), topic: r.source_topic, partition: r.source_partition, key: r.message_key, value: r.message_value, headers: headersOf(r.message_headers) }))
    .sort((a, b) => a.id - b.id)
}

export async function markRedriven (pool: Pool, ids: number[], topic: string | null, partitions: Map<number, number | null>): Promise<void> {
  await pool.query(
    `UPDATE sluice_dlq d SET status = 'redriven', status_at = now(), redriven_to = coalesce($2, d.source_topic), redriven_partition = x.p
     FROM unnest($1::bigint[], $3::int[]) AS x(id, p) WHERE d.id = x.id`,
    [ids.map(String), topic, ids.map((id) => partitions.get(id) ?? null)])
}

export async function discardDeadLetters (client: PoolClient, f: DlqFilter, limit: number, by: string, reason: string): Promise<number[]> {
  const args: unknown[] = []
  const where = filterSql({ ...f, status: undefined }, args)
  args.push(limit, by, reason)
  const n = args.length
  const res = await client.query(
    `UPDATE sluice_dlq SET status = 'discarded', status_at = now(), status_by = $${n - 1}, discard_reason = $${n}
     WHERE id IN (SELECT id FROM sluice_dlq WHERE ${where} AND status = 'dead' ORDER BY id LIMIT $${n - 2} FOR UPDATE SKIP LOCKED)
     RETURNING id`, args)
  return res.rows.map((r) => Number(r.id)).sort((a, b) => a - b)
}

/** Deletes redriven and discarded dead letters whose status is older than the retention. */
export async function expireDeadLetters (pool: Pool, days: number): Promise<number> {
  const res = await pool.query(
    "DELETE FROM sluice_dlq WHERE status IN ('redriven', 'discarded') AND status_at < now() - make_interval(days => $1)", [days])
  return res.rowCount ?? 0
}

export async function deadLetterCounts (pool: Pool): Promise<Array<{ status: string, code: string, n: number }>> {
  const res = await pool.query('SELECT status, error_code, count(*)::bigint AS n FROM sluice_dlq GROUP BY 1, 2')
  return res.rows.map((r) => ({ status: r.status, code: r.error_code, n: Number(r.n) }))
}

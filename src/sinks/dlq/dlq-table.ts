import type { PoolClient } from 'pg'
import type { DlqEntry } from './dlq-entry.ts'

/**
 * Inserts dead letters into sluice_dlq inside the batch's transaction (so the table holds each
 * poison message exactly once: a redelivered one hits the unique origin and is skipped).
 */
export async function writeDlqRows (client: PoolClient, entries: readonly DlqEntry[]): Promise<number> {
  if (entries.length === 0) return 0
  const n = entries.length
  const pipeline = new Array<string>(n)
  const stage = new Array<string>(n)
  const code = new Array<string>(n)
  const message = new Array<string>(n)
  const attempts = new Array<number>(n)
  const topic = new Array<string>(n)
  const partition = new Array<number>(n)
  const offset = new Array<string>(n)
  const key = new Array<Buffer | null>(n)
  const value = new Array<Buffer | null>(n)
  const ts = new Array<string | null>(n)
  const headers = new Array<string | null>(n)
  const redriveOf = new Array<string | null>(n)
  for (let i = 0; i < n; i++) {
    const e = entries[i] as DlqEntry
    pipeline[i] = e.pipeline
    stage[i] = e.stage
    code[i] = e.code
    // PostgreSQL text cannot hold NUL; the raw bytes keep the original
    message[i] = e.message.replaceAll('\u0000', '\\u0000')
    attempts[i] = e.attempts
    topic[i] = e.origin.topic
    partition[i] = e.origin.partition
    offset[i] = String(e.origin.offset)
    key[i] = e.origin.key
    value[i] = e.origin.value
    ts[i] = Number.isFinite(e.origin.timestamp) && e.origin.timestamp > 0 ? new Date(e.origin.timestamp).toISOString() : null
    headers[i] = headersJson(e.origin.headers)
    redriveOf[i] = redriveOrigin(e.origin.headers)
  }
  const res = await client.query(
    `INSERT INTO sluice_dlq (pipeline, stage, error_code, error_message, attempts, source_topic,
       source_partition, source_offset, message_key, message_value, message_ts, message_headers, redrive_of)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
       $7::int[], $8::bigint[], $9::bytea[], $10::bytea[], $11::timestamptz[], $12::jsonb[], $13::bigint[])
     ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING`,
    [pipeline, stage, code, message, attempts, topic, partition, offset, key, value, ts, headers, redriveOf]
  )
  return res.rowCount ?? 0
}

/** Kafka headers as a JSON object of base64 values (names are JSON-escaped, values kept as bytes). */
function headersJson (h: Record<string, Buffer> | undefined): string | null {
  if (h === undefined) return null
  const out: Record<string, string> = {}
  let any = false
  for (const name in h) {
    const v = h[name]
    out[name.replaceAll('\u0000', '')] = Buffer.isBuffer(v) ? v.toString('base64') : Buffer.from(String(v)).toString('base64')
    any = true
  }
  return any ? JSON.stringify(out) : null
}

/** The dead letter a redriven message came from (header set by the redrive API). */
function redriveOrigin (h: Record<string, Buffer> | undefined): string | null {
  const v = h?.['sluice-redrive-of']?.toString('latin1')
  return v !== undefined && /^[1-9][0-9]{0,17}$/.test(v) ? v : null
}

import type { Pool } from 'pg'
import type { TopicPartition } from '../kafka/types.ts'
import { writeAudit } from './audit.ts'
import type { AuditRecord } from './audit.ts'
import { ControlError } from './control-error.ts'
import type { GroupControl } from './group-control.ts'
import { partitionBounds, topicPartitionCounts } from './kafka-offsets.ts'

export type OffsetTarget = { offset: number } | { timestamp: string } | { position: 'earliest' | 'latest' }

export interface StoredOffset { topic: string, partition: number, nextOffset: number, updatedAt: string }

export interface OffsetMove { topic: string, partition: number, from: number | null, to: number }

/** The next offsets sluice stored with the data (what a worker resumes from), per partition. */
export async function storedOffsets (pool: Pool, group: string, topic?: string): Promise<StoredOffset[]> {
  const res = await pool.query(
    `SELECT topic, partition, next_offset, updated_at FROM sluice_offsets
     WHERE consumer_group = $1 AND ($2::text IS NULL OR topic = $2) ORDER BY topic, partition`, [group, topic ?? null])
  return res.rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: Number(r.next_offset), updatedAt: (r.updated_at as Date).toISOString() }))
}

interface Quiet { paused: boolean, position: number | null, storedOffset: number | null }

/**
 * Moves the stored offsets of paused partitions (KIP-875's alter offsets): the target is an
 * offset, the first offset at or after a time, or earliest / latest. Refused (409) unless
 * every partition is paused for the group and its owner (if any) reports it paused with
 * nothing in flight since the pause. One transaction: sluice_offsets, the move rows the
 * owner seeks by, the audit row, the notification.
 */
export async function moveOffsets (control: GroupControl, brokers: string, group: string, tps: TopicPartition[], to: OffsetTarget, audit: (detail: unknown) => AuditRecord): Promise<OffsetMove[]> {
  const seen = new Set<string>()
  for (const tp of tps) {
    const k = `${tp.topic}:${tp.partition}`
    if (seen.has(k)) throw new ControlError(400, 'SLUICE_ERR_BAD_REQUEST', `body/partitions lists ${k} twice`)
    seen.add(k)
  }
  const counts = await topicPartitionCounts(brokers, tps.map((tp) => tp.topic))
  for (const tp of tps) {
    const n = counts.get(tp.topic)
    if (n === undefined) throw new ControlError(404, 'SLUICE_ERR_NOT_FOUND', `topic ${tp.topic} does not exist in Kafka`)
    if (tp.partition >= n) throw new ControlError(404, 'SLUICE_ERR_NOT_FOUND', `topic ${tp.topic} has ${n} partitions: there is no partition ${tp.partition}`)
  }
  const ts = 'timestamp' in to ? Date.parse(to.timestamp) : undefined
  if (ts !== undefined && !Number.isFinite(ts)) throw new ControlError(400, 'SLUICE_ERR_BAD_REQUEST', 'body/to/timestamp is not a time')
  const bounds = await partitionBounds(brokers, tps, ts === undefined ? undefined : Math.max(0, ts))
  const targets = tps.map((tp) => {
    const k = `${tp.topic}:${tp.partition}`
    const b = bounds.get(k)
    if (b === undefined) throw new ControlError(404, 'SLUICE_ERR_NOT_FOUND', `partition ${k} does not exist in Kafka`)
    let off: number
    if ('offset' in to) {
      if (to.offset < b.earliest || to.offset > b.latest) throw new ControlError(400, 'SLUICE_ERR_BAD_REQUEST', `body/to/offset ${to.offset} is outside ${k}'s offsets ${b.earliest}..${b.latest}`)
      off = to.offset
    } else if ('timestamp' in to) off = b.atTimestamp ?? b.latest
    else off = to.position === 'earliest' ? b.earliest : b.latest
    return { ...tp, to: off }
  })

  const moves = await control.transaction(async (c) => {
    const desired = await control.desired(c)
    const pausedAt = new Map(desired.partitions.map((p) => [`${p.topic}:${p.partition}`, p.pausedAt]))
    const workers = await control.workers(c)
    const moves: OffsetMove[] = []
    for (const t of targets) {
      const k = `${t.topic}:${t.partition}`
      const since = pausedAt.get(k) ?? desired.all?.pausedAt
      if (since === undefined) throw new ControlError(409, 'SLUICE_ERR_NOT_PAUSED', `partition ${k} is not paused: pause it (POST /admin/pause) before moving its offset`)
      for (const w of workers) {
        if (!w.alive) continue
        const p = (w.status.partitions as Array<TopicPartition & Quiet>).find((x) => x.topic === t.topic && x.partition === t.partition)
        if (p === undefined) continue
        if (w.heartbeatAt < since || !p.paused || (p.position !== null && p.position !== p.storedOffset)) {
          throw new ControlError(409, 'SLUICE_ERR_NOT_SETTLED', `partition ${k} is still settling on worker ${w.worker} (paused ${String(p.paused)}, position ${String(p.position)}, stored ${String(p.storedOffset)}); retry in ${Math.ceil(control.pollMs / 1000)} s`)
        }
      }
      const prev = await c.query('SELECT next_offset FROM sluice_offsets WHERE consumer_group = $1 AND topic = $2 AND partition = $3 FOR UPDATE', [group, t.topic, t.partition])
      await c.query(
        `INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset, updated_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
        [group, t.topic, t.partition, t.to])
      const from = prev.rows[0] === undefined ? null : Number(prev.rows[0].next_offset)
      moves.push({ topic: t.topic, partition: t.partition, from, to: t.to })
    }
    const auditId = await writeAudit(c, audit({ moves, to }))
    await c.query(
      `INSERT INTO sluice_offset_moves (consumer_group, topic, partition, from_offset, to_offset, requested_by)
       SELECT $1, t, p, f, o, $6 FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS x(t, p, f, o)`,
      [group, moves.map((m) => m.topic), moves.map((m) => m.partition), moves.map((m) => m.from), moves.map((m) => m.to), `audit:${auditId}`])
    return moves
  })
  await control.sync()
  return moves
}

import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { errorMessage } from '../errors.ts'
import type { ProduceRecord } from '../kafka/producer.ts'
import { ControlError } from './control-error.ts'
import { claimForRedrive, countDeadLetters, markRedriven } from './dlq-store.ts'
import { topicPartitionCounts } from './kafka-offsets.ts'
import type { DlqFilter } from './dlq-store.ts'

export interface RedriveProducer {
  produceBatch (records: readonly ProduceRecord[]): Promise<void>
}

export interface RedriveRequest {
  filter: DlqFilter
  /** null: back to each dead letter's origin topic (and partition) */
  topic: string | null
  dryRun: boolean
  limit: number
  /** also take dead letters an interrupted redrive left in `redriving` */
  retryInterrupted: boolean
  by: string
  /** the request's identity (Idempotency-Key, else the request id) */
  requestKey: string
}

export interface RedriveResult {
  dryRun: boolean
  /** dry run: how many dead letters would be redriven */
  matched?: number
  redriven: number[]
  topic: string | null
  /** the same Idempotency-Key was answered before: nothing produced now */
  replayed: boolean
}

/**
 * Redrives dead letters at most once per request: they are claimed (`dead` -> `redriving`,
 * with the request's key) and committed BEFORE anything is produced, so a retried or
 * concurrent request finds them claimed and produces nothing. Each is then produced with
 * its original key, value and headers plus `sluice-redrive-of` (its id),
 * `sluice-redrive-request` and `sluice-redriven-by`, through the idempotent acks=all
 * producer, and marked `redriven` (when, by whom, where). If producing fails the rows stay
 * `redriving`: never produced twice by accident; `retryInterrupted` takes them again.
 */
export async function redrive (pool: Pool, producer: RedriveProducer, brokers: string, logger: Logger, r: RedriveRequest): Promise<RedriveResult> {
  // a named topic must exist: producing would create it (auto-creation) or fail late
  if (r.topic !== null && !(await topicPartitionCounts(brokers, [r.topic])).has(r.topic)) {
    throw new ControlError(404, 'SLUICE_ERR_NOT_FOUND', `body/topic: topic ${r.topic} does not exist in Kafka`)
  }
  const prior = await pool.query('SELECT id FROM sluice_dlq WHERE redrive_request = $1 ORDER BY id', [r.requestKey])
  if (prior.rows.length > 0) return { dryRun: false, redriven: prior.rows.map((x) => Number(x.id)), topic: r.topic, replayed: true }
  if (r.dryRun) {
    const statuses = r.retryInterrupted ? ['dead', 'redriving'] as const : ['dead'] as const
    let matched = 0
    for (const status of statuses) matched += await countDeadLetters(pool, { ...r.filter, status })
    return { dryRun: true, matched: Math.min(matched, r.limit), redriven: [], topic: r.topic, replayed: false }
  }
  const c = await pool.connect()
  let claimed
  try {
    await c.query('BEGIN')
    claimed = await claimForRedrive(c, r.filter, r.limit, r.by, r.requestKey, r.retryInterrupted)
    await c.query('COMMIT')
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    c.release()
  }
  if (claimed.length === 0) return { dryRun: false, redriven: [], topic: r.topic, replayed: false }
  const partitions = new Map<number, number | null>()
  const records: ProduceRecord[] = claimed.map((d) => {
    const headers: Record<string, Buffer | string> = {}
    for (const [k, v] of Object.entries(d.headers)) if (!k.startsWith('sluice-redrive')) headers[k] = v
    headers['sluice-redrive-of'] = String(d.id)
    headers['sluice-redrive-request'] = r.requestKey
    headers['sluice-redriven-by'] = r.by
    // back to the origin: its partition too, so the key's order is kept
    const partition = r.topic === null ? d.partition : undefined
    partitions.set(d.id, partition ?? null)
    return { topic: r.topic ?? d.topic, key: d.key, value: d.value, headers, partition }
  })
  try {
    await producer.produceBatch(records)
  } catch (err) {
    logger.error({ err, ids: claimed.map((d) => d.id) }, 'redrive: producing failed; the dead letters stay "redriving"')
    throw new ControlError(503, 'SLUICE_ERR_REDRIVE_PRODUCE', `producing ${claimed.length} dead letters failed (${errorMessage(err)}); they stay "redriving" (ids ${claimed[0]?.id}..${claimed.at(-1)?.id}): check them, then redrive with "retryInterrupted": true`)
  }
  await markRedriven(pool, claimed.map((d) => d.id), r.topic, partitions)
  return { dryRun: false, redriven: claimed.map((d) => d.id), topic: r.topic, replayed: false }
}

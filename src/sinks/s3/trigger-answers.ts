import type { Pool } from 'pg'
import { classifyPgError } from '../../db/pg-errors.ts'
import { indexedOrigins } from './snapshot-index.ts'
import type { IndexEntry } from './snapshot-index.ts'
import type { TriggerItem } from './snapshot-items.ts'
import type { StateDump } from './state-dump.ts'

/**
 * The triggers whose snapshot is still to be made (todo) and the redelivered ones (done): a
 * trigger is done when its snapshot is indexed from this very message.
 */
export async function unansweredTriggers (pool: Pool, items: readonly TriggerItem[]): Promise<{ todo: TriggerItem[], done: TriggerItem[] }> {
  let indexed: Awaited<ReturnType<typeof indexedOrigins>>
  try {
    indexed = await indexedOrigins(pool, items.map((t) => t.snapshotId))
  } catch (err) {
    throw classifyPgError(err, 'reading the snapshot index')
  }
  const r: { todo: TriggerItem[], done: TriggerItem[] } = { todo: [], done: [] }
  for (const t of items) {
    const done = indexed.get(t.snapshotId)
    // a redelivered trigger whose snapshot is stored: nothing to do (it is logged again, a duplicate)
    if (done !== undefined && done.topic === t.origin.topic && done.partition === t.origin.partition && done.offset === t.origin.offset) r.done.push(t)
    else r.todo.push(t)
  }
  return r
}

/** The index entry of a trigger answered by the state dump stored at `key`. */
export function dumpEntry (t: TriggerItem, key: string, dump: StateDump): IndexEntry {
  const p = t.event.payload
  return {
    snapshotId: t.snapshotId,
    key,
    kind: 'state',
    createdAt: dump.createdAt,
    createdBy: (typeof p.createdBy === 'string' ? p.createdBy : null) ?? t.event.userName ?? 'sluice',
    triggerEvent: typeof p.triggerEvent === 'string' ? p.triggerEvent : typeof p.triggerReason === 'string' ? p.triggerReason : t.event.eventType,
    version: t.event.version,
    counts: dump.counts,
    checksum: `sha256:${dump.sha256}`,
    size: dump.size,
    etag: dump.etag ?? null,
    covers: dump.covers,
    asOf: dump.asOf,
    origin: t.origin
  }
}

import type { ProduceRecord } from '../../kafka/producer.ts'
import type { EntityEvent } from '../../model/event.ts'
import { uuidFrom } from '../../workload/seed-mix.ts'
import type { IndexEntry, SnapshotKind } from './snapshot-index.ts'

/** What a SNAPSHOT_UPLOADED / SNAPSHOT_FAILED answers: the event that made or asked for it. */
export interface Cause {
  event: Pick<EntityEvent, 'eventId' | 'correlationId' | 'workspace' | 'userName'>
}

function envelope (type: 'SNAPSHOT_UPLOADED' | 'SNAPSHOT_FAILED', snapshotId: string, idSeed: string, at: string, cause: Cause, payload: Record<string, unknown>): ProduceRecord {
  const e = cause.event
  const event = {
    // deterministic: a redelivered snapshot produces the same event id (consumers drop it)
    eventId: uuidFrom(`sluice:${type}:${snapshotId}:${idSeed}`),
    eventType: type,
    timestamp: at,
    aggregateType: 'Snapshot',
    aggregateId: snapshotId,
    version: 1,
    payload: { entity: 'Snapshot', entityId: snapshotId, user: e.userName ?? 'sluice', workspace: e.workspace, snapshotId, ...payload },
    metadata: { schemaVersion: '1', correlationId: e.correlationId ?? e.eventId, causationId: e.eventId, source: 'sluice' }
  }
  return { topic: '', key: snapshotId, value: JSON.stringify(event), headers: { 'sluice-event-type': type } }
}

/** SNAPSHOT_UPLOADED (design.md's envelope) for an indexed snapshot. */
export function uploadedEvent (topic: string, bucket: string, entry: IndexEntry, at: string, cause: Cause): ProduceRecord {
  const r = envelope('SNAPSHOT_UPLOADED', entry.snapshotId, entry.checksum, at, cause, {
    kind: entry.kind,
    bucket,
    key: entry.key,
    checksum: entry.checksum,
    size: entry.size,
    counts: entry.counts,
    etag: entry.etag,
    createdAt: entry.createdAt,
    createdBy: entry.createdBy,
    triggerEvent: entry.triggerEvent,
    covers: entry.covers,
    asOf: entry.asOf,
    changes: `snapshot ${entry.snapshotId} uploaded to ${entry.key} (${entry.size} bytes)`
  })
  return { ...r, topic }
}

/** SNAPSHOT_FAILED for a snapshot that was given up (its upload aborted). */
export function failedEvent (topic: string, snapshotId: string, kind: SnapshotKind, key: string, err: { code: string, message: string }, at: string, cause: Cause): ProduceRecord {
  const r = envelope('SNAPSHOT_FAILED', snapshotId, `${err.code}:${cause.event.eventId}`, at, cause, {
    kind,
    key,
    error: { code: err.code, message: err.message.slice(0, 2000) },
    changes: `snapshot ${snapshotId} failed: ${err.code}`
  })
  return { ...r, topic }
}

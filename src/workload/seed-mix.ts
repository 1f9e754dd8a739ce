import { createHash } from 'node:crypto'

/**
 * The sample workload: the six producer families of the entity-engine seed, ~500-byte events
 * keyed by aggregate id (so an entity's events share a partition and stay in order), with
 * optional producer duplicates and poison. Deterministic for a given seed.
 */
export const families = {
  authentication: ['USER_LOGGED_IN', 'USER_LOGGED_OUT', 'SESSION_EXPIRED', 'PASSWORD_CHANGED', 'LOGIN_FAILED'],
  authorization: ['PERMISSION_GRANTED', 'PERMISSION_REVOKED', 'ROLE_ASSIGNED', 'ROLE_REMOVED', 'ACCESS_DENIED'],
  workflow: ['WORKFLOW_STARTED', 'WORKFLOW_STEP_COMPLETED', 'WORKFLOW_FAILED', 'WORKFLOW_COMPLETED', 'WORKFLOW_CANCELLED'],
  core: ['GROUP_CREATED', 'GROUP_UPDATED', 'GROUP_DELETED', 'TASK_CREATED', 'TASK_UPDATED', 'TASK_DELETED', 'STATUS_CHANGED', 'COMMENT_ADDED'],
  notification: ['NOTIFICATION_SENT', 'NOTIFICATION_DELIVERED', 'NOTIFICATION_FAILED', 'NOTIFICATION_CLICKED'],
  snapshots: ['SNAPSHOT_TRIGGERED', 'SNAPSHOT_CREATED', 'SNAPSHOT_UPLOADED', 'SNAPSHOT_FAILED']
} as const

export type Family = keyof typeof families

/** cumulative weights: core 40%, authentication 20%, workflow 15%, notification 14%, authorization 10%, snapshots 1% */
const WEIGHTS: Array<[Family, number]> = [['core', 40], ['authentication', 60], ['workflow', 75], ['notification', 89], ['authorization', 99], ['snapshots', 100]]
const AGGREGATE: Record<Family, string> = { core: 'Task', authentication: 'User', workflow: 'Workflow', notification: 'Notification', authorization: 'User', snapshots: 'Snapshot' }

export const poisonKinds = ['malformed-json', 'missing-event-type', 'wrong-type', 'oversize', 'nul-byte', 'bad-timestamp'] as const
export type PoisonKind = typeof poisonKinds[number]

export interface SampleRecord {
  key: Buffer
  value: Buffer
  /** the event id, or null for poison */
  eventId: string | null
  eventType: string | null
  poison: PoisonKind | null
  duplicate: boolean
}

export interface SampleOptions {
  count: number
  seed?: number
  /** fraction of events sent a second time (same bytes), e.g. 0.01 */
  duplicateRatio?: number
  /** one poison message every N events (0: none); kinds rotate */
  poisonEvery?: number
  /** number of distinct aggregates */
  entities?: number
  /** first event time, ms */
  startMs?: number
  /** bytes of padding to reach ~500-byte events */
  payloadPadding?: number
  /** size of the oversize poison, bytes (must exceed the worker's max event bytes) */
  oversizeBytes?: number
}

/** xorshift32: cheap, deterministic */
function rng (seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

export function uuidFrom (text: string): string {
  const h = createHash('sha1').update(text).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`
}

export function * sampleEvents (opts: SampleOptions): Generator<SampleRecord> {
  const rand = rng(opts.seed ?? 42)
  const entities = opts.entities ?? 1000
  const startMs = opts.startMs ?? Date.parse('2025-02-25T10:00:00Z')
  const pad = 'x'.repeat(opts.payloadPadding ?? 160)
  const dupRatio = opts.duplicateRatio ?? 0
  const versions = new Map<string, number>()
  let poisonIndex = 0
  for (let i = 0; i < opts.count; i++) {
    if (opts.poisonEvery !== undefined && opts.poisonEvery > 0 && i % opts.poisonEvery === opts.poisonEvery - 1) {
      const kind = poisonKinds[poisonIndex++ % poisonKinds.length] as PoisonKind
      yield poison(kind, i, opts.oversizeBytes ?? 2 * 1024 * 1024, startMs)
      continue
    }
    const r = rand() * 100
    let family: Family = 'core'
    for (const [f, w] of WEIGHTS) { if (r < w) { family = f; break } }
    const types = families[family]
    const eventType = types[Math.floor(rand() * types.length)] as string
    const aggregateType = AGGREGATE[family]
    const aggregateId = `${aggregateType.toLowerCase()}_${Math.floor(rand() * entities)}`
    const version = (versions.get(aggregateId) ?? 0) + 1
    versions.set(aggregateId, version)
    const eventId = uuidFrom(`${opts.seed ?? 42}:${i}`)
    const event = {
      eventId,
      eventType,
      timestamp: new Date(startMs + i * 10).toISOString(),
      aggregateType,
      aggregateId,
      version,
      payload: {
        entity: aggregateType,
        entityId: aggregateId,
        user: `user_${Math.floor(rand() * 200)}`,
        workspace: `ws_${Math.floor(rand() * 10)}`,
        changes: `${eventType} #${version} on ${aggregateId}`,
        detail: pad
      },
      metadata: {
        schemaVersion: '1',
        correlationId: uuidFrom(`corr:${aggregateId}`),
        causationId: uuidFrom(`cause:${i - 1}`),
        source: `${family}-service`
      }
    }
    const rec: SampleRecord = {
      key: Buffer.from(aggregateId),
      value: Buffer.from(JSON.stringify(event)),
      eventId,
      eventType,
      poison: null,
      duplicate: false
    }
    yield rec
    if (dupRatio > 0 && rand() < dupRatio) yield { ...rec, duplicate: true }
  }
}

function poison (kind: PoisonKind, i: number, oversizeBytes: number, startMs: number): SampleRecord {
  const base = {
    eventId: uuidFrom(`poison:${i}`),
    eventType: 'TASK_UPDATED',
    timestamp: new Date(startMs + i * 10).toISOString(),
    aggregateType: 'Task',
    aggregateId: `task_poison_${i}`,
    version: 1,
    payload: { entity: 'Task', entityId: `task_poison_${i}`, user: 'mallory', workspace: 'default', changes: 'poison' } as Record<string, unknown>
  }
  let text: string
  switch (kind) {
    case 'malformed-json': text = JSON.stringify(base).slice(0, -7); break
    case 'missing-event-type': { const { eventType: _omit, ...rest } = base; text = JSON.stringify(rest); break }
    case 'wrong-type': text = JSON.stringify({ ...base, version: 'three' }); break
    case 'oversize': text = JSON.stringify({ ...base, payload: { ...base.payload, blob: 'y'.repeat(oversizeBytes) } }); break
    case 'nul-byte': text = JSON.stringify({ ...base, payload: { ...base.payload, changes: 'before\u0000after' } }); break
    // JavaScript reads it as March 1st; PostgreSQL rejects it: caught by the validate stage (src/iso-time.ts)
    case 'bad-timestamp': text = JSON.stringify({ ...base, timestamp: '2024-02-30T00:00:00Z' }); break
  }
  return { key: Buffer.from(`task_poison_${i}`), value: Buffer.from(text), eventId: null, eventType: null, poison: kind, duplicate: false }
}

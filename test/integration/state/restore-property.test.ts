import pg from 'pg'
import { test } from 'tap'
import type { Test } from 'tap'
import { foldEvents } from '../../../src/state/fold.ts'
import type { FoldableEvent, JsonObject } from '../../../src/state/fold.ts'
import { restoreState } from '../../../src/state/restore.ts'
import type { RestoreDeps } from '../../../src/state/restore.ts'
import { SnapshotObjects } from '../../../src/state/snapshot-store.ts'
import { quoteIdent } from '../../../src/db/quote-ident.ts'
import { commitEvents, entityEvent, GROUP, stateDb } from '../../helpers/state-db.ts'
import type { PlacedEvent } from '../../helpers/state-db.ts'
import { cleanPrefix, makeStateSnapshot, s3Client, s3Config } from '../../helpers/state-snapshot.ts'
import { pgUrl, uniqueName } from '../../helpers/worker-harness.ts'

// Property: for random event sequences (seeded; creates, updates, status changes, comments,
// deletes and re-creates on a handful of entities over three partitions, each partition's
// timestamps monotone, producer duplicates and a redelivered batch), the state restored at a
// time T (from the nearest snapshot when there is one) equals the fold of every event up to T
// from the empty state: both the restore with snapshots disabled and a JavaScript reference.
const SEEDS = [1, 2, 3, 5, 8, 13, 21, 34]
const TOPIC = 'prop-events'
const FIELDS = ['a', 'b', 'c', 'd', 'e']

function rng (seed: number): () => number {
  let x = (seed * 0x9e3779b1) | 0 || 1
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

/** Before the first create: mostly a create; after it, the mix of an entity's life. */
function eventTypeFor (prefix: string, created: boolean, r: number): string {
  if (!created) return r < 0.8 ? `${prefix}_CREATED` : `${prefix}_UPDATED`
  const mix: Array<[number, string]> = [[0.45, `${prefix}_UPDATED`], [0.6, 'STATUS_CHANGED'], [0.7, 'COMMENT_ADDED'], [0.8, `${prefix}_DELETED`], [0.88, `${prefix}_CREATED`]]
  return mix.find(([p]) => r < p)?.[1] ?? `${prefix}_ASSIGNED`
}

interface Generated {
  /** batches in write order (a redelivered batch appears twice) */
  batches: PlacedEvent[][]
  /** take a snapshot after these batches */
  snapshotAfter: Set<number>
  /** every distinct stored event (first of each id) */
  stored: PlacedEvent[]
}

function generate (seed: number): Generated {
  const rand = rng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const entities = Array.from({ length: 3 + Math.floor(rand() * 4) }, (_, i) => ({ entity: i % 2 === 0 ? 'Task' : 'Group', id: `e${i}`, partition: i % 3, created: false }))
  const clocks = [0, 1, 2].map((p) => Date.parse('2025-05-01T00:00:00Z') + p * 7000)
  const offsets = [0, 0, 0]
  const value = (): unknown => pick([() => Math.floor(rand() * 100), () => `s${Math.floor(rand() * 9)}`, () => null, () => ({ x: Math.floor(rand() * 5) }), () => [1, 'two']])()
  const changes = (): JsonObject => Object.fromEntries(FIELDS.filter(() => rand() < 0.4).map((f) => [f, value()])) as JsonObject
  const all: PlacedEvent[] = []
  const count = 120 + Math.floor(rand() * 130)
  for (let i = 0; i < count; i++) {
    const ent = pick(entities)
    const p = ent.partition
    clocks[p] = (clocks[p] as number) + Math.floor(rand() * 3) * 1000
    const place = (event: PlacedEvent['event']): PlacedEvent => ({ event, topic: TOPIC, partition: p, offset: (offsets[p] as number)++ })
    if (rand() < 0.05 && all.length > 0) {
      // a producer duplicate of an earlier event of this partition: same id, same content
      const prev = all.filter((x) => x.partition === p).at(-1)
      if (prev !== undefined) { all.push(place(prev.event)); continue }
    }
    if (rand() < 0.04) {
      all.push(place(entityEvent({ id: `s${seed}-${i}`, type: 'NOTIFICATION_SENT', entity: null, entityId: null, timestamp: new Date(clocks[p] as number).toISOString(), payload: { to: 'x' } })))
      continue
    }
    const r = rand()
    const prefix = ent.entity.toUpperCase()
    const type = eventTypeFor(prefix, ent.created, r)
    if (type.endsWith('_CREATED')) ent.created = true
    const payload: Record<string, unknown> = type === 'COMMENT_ADDED' || rand() < 0.2
      ? { entity: ent.entity, entityId: ent.id, user: 'u', workspace: 'w', ...changes() } // no `changes`: the payload's own fields
      : { entity: ent.entity, entityId: ent.id, user: 'u', changes: changes() }
    all.push(place(entityEvent({ id: `s${seed}-${i}`, type, entity: ent.entity, entityId: ent.id, version: i, timestamp: new Date(clocks[p] as number).toISOString(), payload })))
  }
  const batches: PlacedEvent[][] = []
  for (let i = 0; i < all.length;) {
    const n = 1 + Math.floor(rand() * 40)
    batches.push(all.slice(i, i + n))
    i += n
  }
  // a redelivery: one batch written again later, same offsets
  const again = Math.floor(rand() * batches.length)
  batches.splice(again + 1 + Math.floor(rand() * (batches.length - again)), 0, batches[again] as PlacedEvent[])
  const snapshotAfter = new Set([Math.floor(rand() * batches.length), Math.floor(rand() * batches.length)])
  const seen = new Set<string>()
  const stored = all.filter((x) => !seen.has(x.event.eventId) && seen.add(x.event.eventId) !== undefined)
  return { batches, snapshotAfter, stored }
}

interface Row { key: string, state: JsonObject, deleted: boolean, version: number | null, last: string, partition: number, offset: number }

/** The JavaScript reference: every stored entity event with timestamp <= at, folded from empty. */
function reference (stored: readonly PlacedEvent[], at: number): Row[] {
  const by = new Map<string, Array<FoldableEvent & { p: PlacedEvent }>>()
  for (const x of stored) {
    const e = x.event
    if (e.entity === null || e.entityId === null || Date.parse(e.timestamp) > at) continue
    const k = `${e.entity}/${e.entityId}`
    by.set(k, [...(by.get(k) ?? []), { eventType: e.eventType, payload: e.payload, partition: x.partition, offset: x.offset, topic: x.topic, p: x }])
  }
  return [...by.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([key, evs]) => {
    const f = foldEvents(evs)
    const last = [...evs].sort((a, b) => a.partition - b.partition || a.offset - b.offset).at(-1)?.p as PlacedEvent
    return { key, state: f.state, deleted: f.deleted, version: last.event.version === null ? null : Number(last.event.version), last: last.event.eventId, partition: last.partition, offset: last.offset }
  })
}

async function rows (pool: pg.Pool, schema: string): Promise<Row[]> {
  const r = await pool.query(`SELECT * FROM ${quoteIdent(schema)}.entity_state ORDER BY entity || '/' || entity_id`)
  return r.rows.map((x) => ({ key: `${x.entity}/${x.entity_id}`, state: x.state, deleted: x.deleted, version: x.version === null ? null : Number(x.version), last: x.last_event_id, partition: x.source_partition, offset: Number(x.source_offset) }))
}

async function runSeed (t: Test, seed: number): Promise<{ restores: number, fromSnapshot: number }> {
  const db = await stateDb(t, 't_prop')
  const s3 = s3Client()
  t.teardown(() => s3.destroy())
  const bucket = s3Config().bucket
  const prefix = `test-restore/${uniqueName('p')}/`
  cleanPrefix(t, s3, bucket, prefix)
  const audit = `${db.schema}_audit`
  t.teardown(async () => {
    const admin = new pg.Client({ connectionString: pgUrl })
    await admin.connect()
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(audit)} CASCADE`).finally(() => admin.end())
  })
  const deps: RestoreDeps = { pool: db.pool, schema: db.schema, objects: new SnapshotObjects(s3, bucket) }

  const g = generate(seed)
  const asOfs: number[] = []
  for (const [i, batch] of g.batches.entries()) {
    await commitEvents(db.pool, batch)
    if (g.snapshotAfter.has(i)) {
      const s = await makeStateSnapshot(db.pool, s3, { bucket, prefix, id: `snap-${seed}-${i}`, group: GROUP })
      if (s.asOf !== null) asOfs.push(s.asOf.getTime())
    }
  }
  const times = g.stored.map((x) => Date.parse(x.event.timestamp))
  const lo = Math.min(...times)
  const hi = Math.max(...times)
  const rand = rng(seed + 1000)
  const ts = [lo - 1000, lo, hi, hi + 3_600_000, ...asOfs, ...asOfs.map((a) => a + 500), times[Math.floor(rand() * times.length)] as number, lo + Math.floor(rand() * (hi - lo))]
  let fromSnapshot = 0
  for (const at of ts) {
    const iso = new Date(at).toISOString()
    const r1 = await restoreState(deps, { at: iso, target: 'audit', auditSchema: audit, requestedBy: 'property-test' })
    const restored = await rows(db.pool, audit)
    const r2 = await restoreState(deps, { at: iso, target: 'audit', auditSchema: audit, requestedBy: 'property-test', useSnapshots: false })
    const fromEmpty = await rows(db.pool, audit)
    const ref = reference(g.stored, at)
    if (r1.snapshotId !== null) fromSnapshot++
    t.same(restored, ref, `seed ${seed}, at ${iso}: restored (${r1.snapshotId ?? 'no snapshot'}, ${r1.eventsReplayed} events replayed) = the JavaScript reference (${ref.length} entities)`)
    t.same(fromEmpty, restored, `seed ${seed}, at ${iso}: fold from empty (${r2.eventsReplayed} events) = restored`)
  }
  // the live projection is the fold of everything: restoring it live at the end changes nothing
  const before = await rows(db.pool, db.schema)
  t.same(before, reference(g.stored, Infinity), `seed ${seed}: the live projection = the JavaScript reference of all events`)
  const live = await restoreState(deps, { at: new Date(hi + 1).toISOString(), target: 'live', requestedBy: 'property-test' })
  t.same(await rows(db.pool, db.schema), before, `seed ${seed}: a live restore at the end (${live.snapshotId ?? 'no snapshot'}) gives the projection back`)
  return { restores: ts.length * 2 + 1, fromSnapshot }
}

test('restore at T = fold of every event up to T, with and without snapshots', async (t) => {
  let fromSnapshot = 0
  for (const seed of SEEDS) {
    await t.test(`seed ${seed}`, async (t) => { fromSnapshot += (await runSeed(t, seed)).fromSnapshot })
  }
  t.ok(fromSnapshot >= SEEDS.length, `${fromSnapshot} restores started from a snapshot`)
})

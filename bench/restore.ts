// Restore benchmark: N seed-mix events (default 1,000,000) loaded into a schema of their own
// with COPY, then entity_state rebuilt by the SQL fold (src/state/restore.ts): from the empty
// state, and from a 'state' snapshot taken halfway (gzip'd NDJSON in S3, streamed into COPY)
// plus the second half. Run: node bench/restore.ts [events] [entities] after
// `eval "$(scripts/stack.sh env)"` (S3 variables optional: without them, no snapshot runs).
import { availableParallelism, totalmem } from 'node:os'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { EVENT_COLUMNS } from '../src/sinks/timescale/copy-encoder.ts'
import { migrate } from '../src/sinks/timescale/migrate.ts'
import { quoteIdent } from '../src/db/quote-ident.ts'
import { restoreState } from '../src/state/restore.ts'
import type { RestoreRequest, RestoreResult } from '../src/state/restore.ts'
import { SnapshotObjects } from '../src/state/snapshot-store.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'
import { cleanPrefixNow, makeStateSnapshot, s3Client, s3Config } from '../test/helpers/state-snapshot.ts'
import { seedCopyChunks } from './copy-lines.ts'

const env = process.env
const total = Number(process.argv[2] ?? env.SLUICE_BENCH_EVENTS ?? 1_000_000)
const entities = Number(process.argv[3] ?? env.SLUICE_BENCH_ENTITIES ?? 10_000)
const PARTITIONS = 6
const TOPIC = 'bench-restore'
const GROUP = 'bench-restore'
const pgUrl = env.SLUICE_PG_URL ?? ''
if (pgUrl === '') throw new Error('SLUICE_PG_URL is not set: eval "$(scripts/stack.sh env)" first')
const withS3 = (env.SLUICE_S3_BUCKET ?? '') !== ''
const schema = `bench_restore_${process.pid}`
const say = (s = ''): void => { process.stdout.write(s + '\n') }
const secs = (ms: number): string => (ms / 1000).toFixed(2) + ' s'
const rate = (n: number, ms: number): string => `${Math.round(n / (ms / 1000)).toLocaleString('en-US')} events/s`

const pool = new pg.Pool({ connectionString: pgUrl, max: 4, options: `-c search_path=${quoteIdent(schema)}` })
const nextOffsets = new Array<number>(PARTITIONS).fill(0)
const events = sampleEvents({ count: total, seed: 7, entities, payloadPadding: 160 })

/** The next `count` events of the seed mix. */
function * next (count: number): Generator<{ key: Buffer, value: Buffer }> {
  for (let i = 0; i < count; i++) {
    const r = events.next()
    if (r.done === true) return
    yield r.value
  }
}

async function load (count: number): Promise<number> {
  const started = performance.now()
  const client = await pool.connect()
  try {
    await pipeline(Readable.from(seedCopyChunks(next(count), TOPIC, nextOffsets)), client.query(copyFrom(`COPY entity_event_logs (${EVENT_COLUMNS.join(', ')}) FROM STDIN`)))
    await client.query(`INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset)
      SELECT $1, $2, p, n FROM unnest($3::int[], $4::bigint[]) AS x(p, n)
      ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset`,
    [GROUP, TOPIC, nextOffsets.map((_, p) => p), nextOffsets])
  } finally {
    client.release()
  }
  await pool.query('ANALYZE entity_event_logs')
  return performance.now() - started
}

async function timed (label: string, objects: SnapshotObjects | null, req: Omit<RestoreRequest, 'requestedBy'>): Promise<RestoreResult> {
  const r = await restoreState({ pool, schema, objects }, { ...req, requestedBy: 'bench' })
  say(`${label.padEnd(44)} ${secs(r.durationMs).padStart(9)}  ${String(r.entities).padStart(7)} entities  ${String(r.eventsReplayed).padStart(8)} events folded  ${rate(r.eventsReplayed, r.durationMs)}${r.snapshotId !== null ? `  (snapshot: ${r.snapshotEntities} rows)` : ''}`)
  return r
}

async function main (): Promise<void> {
  const v = (await pool.query('SHOW server_version')).rows[0].server_version
  say(`sluice restore benchmark: ${total.toLocaleString('en-US')} events, ${entities.toLocaleString('en-US')} entities, ${PARTITIONS} partitions, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, PostgreSQL ${v as string}, node ${process.version}`)
  await migrate(pool, schema, 'sql')
  const half = Math.floor(total / 2)
  const l1 = await load(half)
  const s3 = withS3 ? s3Client() : null
  const objects = s3 === null ? null : new SnapshotObjects(s3, s3Config().bucket)
  const prefix = `bench-restore/${schema}/`
  try {
    const mid = (await pool.query('SELECT max("timestamp") AS m FROM entity_event_logs')).rows[0].m as Date
    // the live projection as of halfway, then its snapshot
    await timed('fold of the first half (live, from empty)', null, { at: mid.toISOString(), target: 'live', useSnapshots: false })
    if (s3 !== null) {
      const started = performance.now()
      const snap = await makeStateSnapshot(pool, s3, { bucket: s3Config().bucket, prefix, id: `bench-${process.pid}`, group: GROUP })
      say(`${'state snapshot of it (dump, gzip, put)'.padEnd(44)} ${secs(performance.now() - started).padStart(9)}  ${String(snap.rows).padStart(7)} rows  ${(snap.sizeBytes / 2 ** 20).toFixed(1)} MiB gzip'd`)
    }
    const l2 = await load(total - half)
    say(`${'COPY of the events into the log'.padEnd(44)} ${secs(l1 + l2).padStart(9)}  ${rate(total, l1 + l2)}`)
    const end = new Date(Date.now() + 365 * 86_400_000).toISOString()
    await timed('restore, every event from empty (audit)', null, { at: end, target: 'audit', auditSchema: `${schema}_audit`, useSnapshots: false })
    if (objects !== null) {
      await timed('restore, snapshot + second half (audit)', objects, { at: end, target: 'audit', auditSchema: `${schema}_audit` })
      await timed('restore, snapshot + second half (live)', objects, { at: end, target: 'live' })
    } else {
      say('(S3 not configured: no snapshot runs)')
    }
  } finally {
    if (s3 !== null) {
      await cleanPrefixNow(s3, s3Config().bucket, prefix).catch(() => {})
      s3.destroy()
    }
    if (env.SLUICE_BENCH_KEEP !== '1') {
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE; DROP SCHEMA IF EXISTS ${quoteIdent(schema + '_audit')} CASCADE`)
    } else {
      say(`schema kept: ${schema}`)
    }
    await pool.end()
  }
}

await main()

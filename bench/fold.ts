// Fold benchmark: the entity-state fold (sluice_fold, the step of sql/010_fold_step.sql) beside
// the step as sql/004_entity_state.sql first defined it (two PL/pgSQL functions, field by field
// assignments), in the same run over the same rows: N seed-mix events (default 300,000) COPYed
// into a schema of their own, then every entity folded from the empty state (what a restore, a
// state-at-time read and the live projection's statement do), interleaved rounds. Both must
// give the same states (a digest of every field of every entity); the rate is events folded
// per second. Run: node bench/fold.ts [events] [rounds] after `eval "$(scripts/stack.sh env)"`.
import { readFileSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { quoteIdent } from '../src/db/quote-ident.ts'
import { EVENT_COLUMNS } from '../src/sinks/timescale/copy-encoder.ts'
import { migrate } from '../src/sinks/timescale/migrate.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'
import { seedCopyChunks } from './copy-lines.ts'

const env = process.env
const total = Number(process.argv[2] ?? env.SLUICE_BENCH_EVENTS ?? 300_000)
const rounds = Number(process.argv[3] ?? 3)
const PARTITIONS = 6
const pgUrl = env.SLUICE_PG_URL ?? ''
if (pgUrl === '') throw new Error('SLUICE_PG_URL is not set: eval "$(scripts/stack.sh env)" first')
const schema = `bench_fold_${process.pid}`
const say = (s = ''): void => { process.stdout.write(s + '\n') }
const pool = new pg.Pool({ connectionString: pgUrl, max: 1, options: `-c search_path=${quoteIdent(schema)}` })

/** sql/004_entity_state.sql's step and its helper, renamed *_004, and an aggregate over them. */
function firstDefinition (): string {
  const sql = readFileSync('sql/004_entity_state.sql', 'utf8')
  const fn = (name: string): string => {
    const m = new RegExp(`CREATE OR REPLACE FUNCTION ${name}\\(.*?\\n\\$\\$;`, 's').exec(sql)
    if (m === null) throw new Error(`sql/004_entity_state.sql has no function ${name}`)
    return m[0]
  }
  return [fn('sluice_apply_event'), fn('sluice_fold_step')].join('\n')
    .replaceAll('sluice_apply_event', 'sluice_apply_event_004').replaceAll('sluice_fold_step', 'sluice_fold_step_004') +
    '\nCREATE AGGREGATE sluice_fold_004(text, jsonb, bigint, timestamptz, text, text, integer, bigint) (SFUNC = sluice_fold_step_004, STYPE = sluice_entity_fold);'
}

/** Every entity folded by `aggregate`: a digest of all its fields, the events folded, the time taken. */
async function fold (aggregate: string): Promise<{ digest: string, events: number, ms: number }> {
  const started = performance.now()
  const res = await pool.query(`SELECT md5(string_agg(concat_ws('|', entity, entity_id, (f).state, (f).deleted, (f).events, (f).version, (f).updated_at, (f).last_event_id, (f).source_topic, (f).source_partition, (f).source_offset), ',' ORDER BY entity, entity_id)) AS digest,
      sum((f).events)::float8 AS events
    FROM (SELECT entity, entity_id, ${aggregate}(event_type, event_data, version, "timestamp", event_id, source_topic, source_partition, source_offset ORDER BY source_partition, source_offset, source_topic) AS f
      FROM entity_event_logs WHERE entity IS NOT NULL AND entity_id IS NOT NULL GROUP BY entity, entity_id) x`)
  const row = res.rows[0] as { digest: string, events: number }
  return { digest: row.digest, events: row.events, ms: performance.now() - started }
}

async function main (): Promise<void> {
  const v = (await pool.query('SHOW server_version')).rows[0].server_version as string
  say(`sluice fold benchmark: ${total.toLocaleString('en-US')} seed-mix events, ${rounds} rounds; ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, PostgreSQL ${v}`)
  await migrate(pool, schema, 'sql')
  try {
    const client = await pool.connect()
    try {
      await pipeline(Readable.from(seedCopyChunks(sampleEvents({ count: total, seed: 7 }), 'bench-fold', new Array<number>(PARTITIONS).fill(0))), client.query(copyFrom(`COPY entity_event_logs (${EVENT_COLUMNS.join(', ')}) FROM STDIN`)))
      await client.query('ANALYZE entity_event_logs')
      await client.query(firstDefinition())
    } finally { client.release() }
    const rate = (r: { events: number, ms: number }): number => r.events / (r.ms / 1000)
    for (let round = 1; round <= rounds; round++) {
      // alternate which goes first: neither always gets the warmer cache
      const order = round % 2 === 1 ? ['sluice_fold_004', 'sluice_fold'] : ['sluice_fold', 'sluice_fold_004']
      const got = new Map<string, Awaited<ReturnType<typeof fold>>>()
      for (const a of order) got.set(a, await fold(a))
      const before = got.get('sluice_fold_004') as Awaited<ReturnType<typeof fold>>
      const now = got.get('sluice_fold') as Awaited<ReturnType<typeof fold>>
      if (before.digest !== now.digest || before.events !== now.events) throw new Error(`round ${round}: the folds disagree (${before.digest} over ${before.events} events, ${now.digest} over ${now.events})`)
      const fmt = (r: typeof now): string => `${(r.ms / 1000).toFixed(2)} s (${Math.round(rate(r)).toLocaleString('en-US')} events/s)`
      say(`round ${round}: 004 step ${fmt(before)}, current step ${fmt(now)} = ${(rate(now) / rate(before)).toFixed(2)}x; ${now.events.toLocaleString('en-US')} events, same states (md5 ${now.digest})`)
    }
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`)
    await pool.end()
  }
}

await main()

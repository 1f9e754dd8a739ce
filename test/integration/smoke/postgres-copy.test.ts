import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { test } from 'tap'

// Smoke test of PostgreSQL (scripts/stack.sh) with COPY FROM STDIN through pg-copy-streams.
const PG_URL = process.env.SLUICE_PG_URL
if (PG_URL === undefined || PG_URL === '') {
  throw new Error('SLUICE_PG_URL is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const ROWS = 10_000

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

/** COPY text format: tab, newline and backslash are escaped, \N is NULL. */
function copyText (v: string | number | null): string {
  if (v === null) return '\\N'
  return String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
}

interface Row { id: number, name: string, amount: string, note: string | null, at: string }

function row (i: number): Row {
  return {
    id: i,
    name: `name-${i}`,
    amount: (i * 1.25).toFixed(2),
    // every 5th row NULL, the other multiples of 7: the characters COPY escapes, and non-ASCII
    note: i % 5 === 0 ? null : i % 7 === 0 ? `tab\there\nnewline \\ backslash – ünïcode ${i}` : `note ${i}`,
    at: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString()
  }
}

function * lines (): Generator<string> {
  for (let i = 1; i <= ROWS; i++) {
    const r = row(i)
    yield [r.id, r.name, r.amount, r.note, r.at].map(copyText).join('\t') + '\n'
  }
}

test('PostgreSQL: COPY FROM STDIN of 10,000 rows', async (t) => {
  const schema = uniqueName('smoke_copy')
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  t.teardown(async () => {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await client.end()
  })
  await client.query(`CREATE SCHEMA "${schema}"`)
  const table = `"${schema}".items`
  await client.query(`CREATE TABLE ${table} (
    id integer PRIMARY KEY, name text NOT NULL, amount numeric(12, 2) NOT NULL, note text, at timestamptz NOT NULL)`)

  const copy = client.query(copyFrom(`COPY ${table} (id, name, amount, note, at) FROM STDIN`))
  await pipeline(Readable.from(lines()), copy)
  t.equal(copy.rowCount, ROWS, 'COPY reports 10,000 rows')

  const { rows: [stats] } = await client.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, sum(id)::bigint AS ids_sum,
    count(note)::int AS notes, sum(amount)::text AS amount_sum FROM ${table}`)
  t.equal(stats.n, ROWS, 'count(*) = 10,000')
  t.equal(stats.ids, ROWS, 'distinct ids')
  t.equal(stats.ids_sum, String(ROWS * (ROWS + 1) / 2), 'sum of ids')
  t.equal(stats.notes, ROWS - ROWS / 5, 'every 5th note is NULL')
  t.equal(stats.amount_sum, (1.25 * ROWS * (ROWS + 1) / 2).toFixed(2), 'sum of amounts (exact numeric)')

  const { rows } = await client.query(`SELECT id, name, amount, note, at FROM ${table} WHERE id = ANY($1) ORDER BY id`, [[1, 5, 7, ROWS]])
  t.same(rows.map((r) => ({ ...r, at: (r.at as Date).toISOString() })), [1, 5, 7, ROWS].map(row), 'values round-trip, escapes, NULL and UTF-8 included')
})

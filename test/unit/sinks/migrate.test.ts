import { readdirSync } from 'node:fs'
import { test } from 'tap'
import { listMigrations, splitStatements } from '../../../src/sinks/timescale/migrate.ts'

test('each version runs the file of its flavour, in order', async (t) => {
  const pg = (await listMigrations('sql', 'postgres')).map((m) => m.file)
  const ts = (await listMigrations('sql', 'timescale')).map((m) => m.file)
  t.same(pg.slice(0, 5), ['001_base.sql', '002_hypertable.postgres.sql', '003_hourly_counts.postgres.sql', '004_entity_state.sql', '005_snapshots.sql'])
  t.same(ts.slice(0, 5), ['001_base.sql', '002_hypertable.timescale.sql', '003_hourly_counts.timescale.sql', '004_entity_state.sql', '005_snapshots.sql'])
  // every other file of sql/ once, in version order, the other flavour's left out
  const all = readdirSync('sql').filter((f) => f.endsWith('.sql')).sort()
  t.same(pg, all.filter((f) => !f.includes('.timescale.')))
  t.same(ts, all.filter((f) => !f.includes('.postgres.')))
})

test('no-transaction files are split into statements without comments', async (t) => {
  const s = splitStatements('-- head\nCREATE VIEW v AS\nSELECT 1;\n\n-- two\nSELECT f(1,\n  2);\n')
  t.same(s, ['CREATE VIEW v AS\nSELECT 1', 'SELECT f(1,\n  2)'])
})

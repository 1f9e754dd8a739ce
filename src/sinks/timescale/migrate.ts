import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Pool } from 'pg'
import { SluiceError } from '../../errors.ts'
import { classifyPgError } from '../../db/pg-errors.ts'
import { quoteIdent } from '../../db/quote-ident.ts'

/**
 * Versioned SQL migrations from sql/: `NNN_name.sql` runs everywhere, `NNN_name.timescale.sql`
 * where the timescaledb extension is present and `NNN_name.postgres.sql` where it is not.
 * A file whose first line says `sluice:no-transaction` runs statement by statement outside a
 * transaction (continuous aggregates need that). Applied under an advisory lock so replicas
 * starting together do not race; recorded in sluice_migrations with a checksum.
 */
export type Flavour = 'timescale' | 'postgres'

export interface Migration {
  version: number
  name: string
  file: string
  flavour: Flavour | 'any'
}

/** What migrations need of a connection: node-postgres and PGlite both fit. */
export interface MigrationDb {
  query (sql: string, params?: unknown[]): Promise<{ rows: any[] }>
  /** runs a script of several statements */
  exec (sql: string): Promise<unknown>
}

export interface MigrateResult {
  flavour: Flavour
  applied: string[]
}

const FILE_RE = /^(\d{3})_([a-z0-9_]+?)(?:\.(timescale|postgres))?\.sql$/
const LOCK_KEY = 0x51c3 // pg_advisory_lock key, constant for every sluice replica

export async function listMigrations (dir: string, flavour: Flavour): Promise<Migration[]> {
  const files = (await readdir(dir)).sort()
  const out: Migration[] = []
  for (const file of files) {
    const m = FILE_RE.exec(file)
    if (m === null) continue
    const fileFlavour = (m[3] ?? 'any') as Migration['flavour']
    if (fileFlavour !== 'any' && fileFlavour !== flavour) continue
    out.push({ version: Number(m[1]), name: m[2] as string, file, flavour: fileFlavour })
  }
  return out
}

export async function detectFlavour (db: MigrationDb): Promise<Flavour> {
  const installed = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
  if (installed.rows.length > 0) return 'timescale'
  const available = await db.query("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
  if (available.rows.length === 0) return 'postgres'
  try {
    // in public, not in the first schema of the search path (sluice's own): the extension is
    // database-wide, so created there its functions would be invisible to other schemas and a
    // DROP SCHEMA ... CASCADE of that one schema would drop TimescaleDB for everybody
    await db.query('CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public')
    return 'timescale'
  } catch {
    // available but not loadable (not in shared_preload_libraries, or no privilege)
    return 'postgres'
  }
}

export async function migrate (pool: Pool, schema: string, sqlDir: string): Promise<MigrateResult> {
  let client
  try {
    client = await pool.connect()
  } catch (err) {
    throw classifyPgError(err, 'connecting to PostgreSQL for migrations')
  }
  try {
    return await runMigrations({ query: (sql, params) => client.query(sql, params), exec: (sql) => client.query(sql) }, schema, sqlDir)
  } catch (err) {
    if (err instanceof SluiceError) throw err
    throw classifyPgError(err, 'applying migrations')
  } finally {
    // discarded, not returned to the pool: runMigrations changed its session's search_path
    // (public added for TimescaleDB's functions), which the sink's connections must not have
    client.release(true)
  }
}

/** Applies what is missing, in order, holding the advisory lock. */
export async function runMigrations (db: MigrationDb, schema: string, sqlDir: string): Promise<MigrateResult> {
  await db.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
  try {
    await db.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`)
    await db.query(`SET search_path TO ${quoteIdent(schema)}, public`)
    const flavour = await detectFlavour(db)
    await db.query(`CREATE TABLE IF NOT EXISTS sluice_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, flavour TEXT NOT NULL,
      checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    const done = new Map<number, string>()
    for (const row of (await db.query('SELECT version, checksum FROM sluice_migrations')).rows) {
      done.set(Number(row.version), String(row.checksum))
    }
    const applied: string[] = []
    for (const m of await listMigrations(sqlDir, flavour)) {
      const sql = await readFile(join(sqlDir, m.file), 'utf8')
      const checksum = createHash('sha256').update(sql).digest('hex')
      const prev = done.get(m.version)
      if (prev !== undefined) {
        if (prev !== checksum) {
          throw new SluiceError('SLUICE_ERR_MIGRATION', `migration ${m.file} changed after it was applied (checksum differs); add a new migration instead`)
        }
        continue
      }
      await applyOne(db, m, sql, checksum, flavour)
      applied.push(m.file)
    }
    return { flavour, applied }
  } finally {
    await db.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {})
  }
}

async function applyOne (db: MigrationDb, m: Migration, sql: string, checksum: string, flavour: Flavour): Promise<void> {
  const record = ['INSERT INTO sluice_migrations (version, name, flavour, checksum) VALUES ($1, $2, $3, $4)',
    [m.version, m.name, flavour, checksum]] as const
  try {
    if (/^--\s*sluice:no-transaction/.test(sql)) {
      for (const statement of splitStatements(sql)) await db.exec(statement)
      await db.query(record[0], [...record[1]])
      return
    }
    await db.exec('BEGIN')
    try {
      await db.exec(sql)
      await db.query(record[0], [...record[1]])
      await db.exec('COMMIT')
    } catch (err) {
      await db.exec('ROLLBACK').catch(() => {})
      throw err
    }
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_MIGRATION', `migration ${m.file} failed: ${(err as Error).message}`, { cause: err })
  }
}

/** Splits a file of plain statements (no function bodies) on the semicolons that end lines. */
export function splitStatements (sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0)
}

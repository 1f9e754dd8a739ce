// Drops a test's own schema (with whatever migrate made in it) when the test ends.
import pg from 'pg'
import type { Test } from 'tap'
import { quoteIdent } from '../../src/db/quote-ident.ts'

export async function dropSchema (url: string, schema: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`)
  } finally {
    await admin.end()
  }
}

/** Registers the drop; `before` runs first (e.g. ending the pools that use the schema). */
export function dropSchemaAtEnd (t: Test, url: string, schema: string, before?: () => Promise<void>): void {
  t.teardown(async () => {
    if (before !== undefined) await before()
    await dropSchema(url, schema)
  })
}

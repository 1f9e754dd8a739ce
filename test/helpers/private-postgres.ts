// A PostgreSQL of a test's own, which it may stop and start (the shared stack's must never be
// stopped): the project's stack script on another port and data directory, purged at the end.
import { resolve } from 'node:path'
import type { Test } from 'tap'
import { stackScript } from './stack-script.ts'
import { freePort, uniqueName } from './worker-harness.ts'

export interface PrivatePostgres {
  readonly port: number
  readonly dir: string
  /** connection URL (same user, password and database as the shared stack's) */
  readonly url: string
  /** starts it (idempotent); resolves once it accepts connections */
  start (): Promise<void>
  /** fast shutdown: open connections are terminated */
  stop (): Promise<void>
}

/** Creates and starts a private PostgreSQL; stopped and purged when the test ends. */
export async function privatePostgres (t: Test): Promise<PrivatePostgres> {
  const port = await freePort()
  const dir = resolve('.sluice', uniqueName('test-pg'))
  const user = process.env.SLUICE_PG_USER ?? 'sluice'
  const password = process.env.SLUICE_PG_PASSWORD ?? 'sluice'
  const db = process.env.SLUICE_PG_DB ?? 'sluice'
  // PostgreSQL needs nothing from the shared cache: a cache of its own keeps it from
  // waiting on the shared install lock (held through a minute-long versitygw build)
  const env = { SLUICE_PG_PORT: String(port), SLUICE_CACHE: resolve(dir, 'cache') }
  const pg: PrivatePostgres = {
    port,
    dir,
    url: `postgres://${user}:${password}@127.0.0.1:${port}/${db}`,
    start: async () => { await stackScript(dir, ['up', 'postgres'], env) },
    stop: async () => { await stackScript(dir, ['down', 'postgres'], env) }
  }
  t.teardown(async () => { await stackScript(dir, ['down', '--purge', 'postgres'], env) })
  await pg.start()
  return pg
}

// A PostgreSQL of a test's own, which it may stop and start (the shared stack's must never be
// stopped): the project's stack script on another port and data directory, purged at the end.
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { freePort, uniqueName } from './worker-harness.ts'

const run = promisify(execFile)

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

async function stack (dir: string, port: number, args: string[]): Promise<void> {
  try {
    await run('scripts/stack.sh', args, {
      // PostgreSQL needs nothing from the shared cache: a cache of its own keeps it from
      // waiting on the shared install lock (held through a minute-long versitygw build)
      env: { ...process.env, SLUICE_STACK_DIR: dir, SLUICE_PG_PORT: String(port), SLUICE_CACHE: resolve(dir, 'cache') },
      timeout: 120_000
    })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`scripts/stack.sh ${args.join(' ')} (dir ${dir}, port ${port}) failed: ${e.stderr ?? e.message}`)
  }
}

/** Creates and starts a private PostgreSQL; stopped and purged when the test ends. */
export async function privatePostgres (t: Test): Promise<PrivatePostgres> {
  const port = await freePort()
  const dir = resolve('.sluice', uniqueName('test-pg'))
  const user = process.env.SLUICE_PG_USER ?? 'sluice'
  const password = process.env.SLUICE_PG_PASSWORD ?? 'sluice'
  const db = process.env.SLUICE_PG_DB ?? 'sluice'
  const pg: PrivatePostgres = {
    port,
    dir,
    url: `postgres://${user}:${password}@127.0.0.1:${port}/${db}`,
    start: async () => { await stack(dir, port, ['up', 'postgres']) },
    stop: async () => { await stack(dir, port, ['down', 'postgres']) }
  }
  t.teardown(async () => { await stack(dir, port, ['down', '--purge', 'postgres']) })
  await pg.start()
  return pg
}

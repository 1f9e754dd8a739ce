// One transaction on a pooled connection, as the lane makes them: committed when `fn`
// resolves, rolled back when it throws.
import type pg from 'pg'
import type { PoolClient } from 'pg'

export async function inTransaction<T> (pool: pg.Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const r = await fn(client)
    await client.query('COMMIT')
    return r
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

import { setTimeout as sleep } from 'node:timers/promises'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { errorMessage } from '../../errors.ts'
import { indexDocument } from './snapshot-index.ts'

export interface IndexDocumentOptions {
  /** the worker's pool (search_path: sluice's schema) */
  pool: Pool
  /** writes the document (metadata/snapshot_index.json), retries included */
  put: (doc: Buffer) => Promise<void>
  /** snapshots listed, newest first (SLUICE_S3_INDEX_ENTRIES) */
  entries: number
  logger: Logger
  /** a rewrite starts at least this long after the previous one started, default 1 s */
  minIntervalMs?: number
}

// writers of one schema's document, across workers (advisory locks are database-wide)
const LOCK = 'SELECT pg_advisory_lock(20933, (SELECT oid::int FROM pg_namespace WHERE nspname = current_schema()))'
const UNLOCK = 'SELECT pg_advisory_unlock(20933, (SELECT oid::int FROM pg_namespace WHERE nspname = current_schema()))'

/**
 * metadata/snapshot_index.json (the newest `entries` snapshots), rewritten from the snapshots
 * table once a batch that indexed a snapshot has committed: outside every batch transaction,
 * so no batch waits on the PUT and no connection idles in a transaction during it. Best
 * effort: the table is the index of record, and a failed rewrite is logged and made good by
 * the next one.
 *  - Requests while a rewrite runs or waits are coalesced into one more, which reads the
 *    table after every commit that asked for it: the last document has the newest committed
 *    rows.
 *    Rewrites start at most once per minIntervalMs (the seed mix indexes a state snapshot in
 *    most batches: one document per batch would be read, sent and stored several times a
 *    second).
 *  - Across workers, each rewrite holds a session advisory lock from its read to the end of
 *    its PUT, so a document read earlier never overwrites one read later.
 */
export class IndexDocumentWriter {
  readonly #o: IndexDocumentOptions
  #running: Promise<void> | null = null
  #again = false
  /** the running rewrite has not read the table yet: a request now is answered by it */
  #waiting = false
  #lastStart = -Infinity

  constructor (opts: IndexDocumentOptions) {
    this.#o = opts
  }

  /** Asks for a rewrite (after a commit); returns at once. */
  request (): void {
    if (this.#running !== null) {
      if (!this.#waiting) this.#again = true
      return
    }
    this.#running = this.#paced().finally(() => {
      this.#running = null
      if (this.#again) {
        this.#again = false
        this.request()
      }
    })
  }

  /** Resolves once no rewrite runs or is asked for (close, tests). */
  async settled (): Promise<void> {
    while (this.#running !== null) await this.#running
  }

  async #paced (): Promise<void> {
    const wait = this.#lastStart + (this.#o.minIntervalMs ?? 1000) - performance.now()
    this.#waiting = true
    if (wait > 0) await sleep(wait)
    this.#waiting = false
    this.#lastStart = performance.now()
    await this.#rewrite()
  }

  async #rewrite (): Promise<void> {
    try {
      const client = await this.#o.pool.connect()
      let unlocked = false
      try {
        await client.query(LOCK)
        try {
          await this.#o.put(await indexDocument(client, this.#o.entries))
        } finally {
          await client.query(UNLOCK)
          unlocked = true
        }
      } finally {
        // a connection that may still hold the lock is discarded, not reused
        client.release(!unlocked)
      }
    } catch (err) {
      this.#o.logger.error({ err: errorMessage(err) }, 'could not rewrite the snapshot index document (rewritten after the next indexed snapshot)')
    }
  }
}

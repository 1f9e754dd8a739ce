import { from as copyFrom } from 'pg-copy-streams'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import type { PoolClient } from 'pg'
import { SluiceError } from '../../errors.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { KafkaMessage } from '../../kafka/types.ts'
import type { Rejected, Sink, SinkBuffer, SinkWriteResult } from '../sink.ts'
import { insertAndProject } from '../../state/projection.ts'
import { EVENT_COLUMNS, eventCopyRow } from './copy-encoder.ts'
import { isRowRejection } from '../../db/pg-errors.ts'

/** Columns written by COPY (copy-encoder.ts says what their values are); the staging table has the same shape as the log. */
const COLUMNS = EVENT_COLUMNS.join(', ')

export { eventCopyRow }

/** The staging table of a target table: one per table, so two sinks never share one. */
function stageTableFor (table: string): string {
  return ('sluice_stage_' + table.replace(/[^A-Za-z0-9_]/g, '_')).slice(0, 63)
}

/** One partition's pending rows: COPY text lines, kept apart so a rejected row can be isolated. */
export class EventBuffer implements SinkBuffer<EntityEvent> {
  readonly lines: string[] = []
  readonly origins: KafkaMessage[] = []
  bytes = 0

  get count (): number { return this.lines.length }

  add (e: EntityEvent, origin: KafkaMessage): void {
    // encoded now, on the consuming tick, so the flush only concatenates
    const line = eventCopyRow(e, origin)
    this.lines.push(line)
    this.origins.push(origin)
    this.bytes += line.length
  }
}

export interface EventSinkOptions {
  name?: string
  table?: string
  /** the entity-state projection maintained in the same transaction (null: none) */
  stateTable?: string | null
}

/**
 * Stores EntityEvents into entity_event_logs: COPY into a per-connection temporary staging
 * table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING, which drops producer
 * duplicates (same event_id and timestamp) and redeliveries. A COPY the database rejects is
 * split (SAVEPOINT per attempt) until the rejected rows are isolated; the rest is stored.
 * The INSERT also applies the newly stored events to entity_state (`stateTable`), in the
 * same statement and transaction (src/state/projection.ts).
 */
export class TimescaleEventSink implements Sink<EntityEvent> {
  readonly name: string
  readonly #table: string
  readonly #stage: string
  readonly #stateTable: string | null

  constructor (opts: EventSinkOptions = {}) {
    this.name = opts.name ?? 'timescale'
    this.#table = opts.table ?? 'entity_event_logs'
    this.#stage = stageTableFor(this.#table)
    this.#stateTable = opts.stateTable === undefined ? 'entity_state' : opts.stateTable
  }

  createBuffer (): EventBuffer {
    return new EventBuffer()
  }

  async write (client: PoolClient, buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): Promise<SinkWriteResult> {
    const lines: string[] = []
    const origins: KafkaMessage[] = []
    for (const b of buffers as ReadonlyArray<EventBuffer>) {
      for (let i = 0; i < b.lines.length; i++) {
        lines.push(b.lines[i] as string)
        origins.push(b.origins[i] as KafkaMessage)
      }
    }
    if (lines.length === 0) return { stored: 0, duplicates: 0, rejected: [] }
    await this.#prepare(client)
    const rejected: Rejected[] = []
    await this.#copyIsolating(client, lines, origins, 0, lines.length, rejected)
    let stored: number
    if (this.#stateTable === null) {
      const res = await client.query(`INSERT INTO ${this.#table} (${COLUMNS}) SELECT ${COLUMNS} FROM ${this.#stage} ON CONFLICT DO NOTHING`)
      stored = res.rowCount ?? 0
    } else {
      // the same INSERT, RETURNING the new rows into the entity-state projection (src/state/projection.ts)
      stored = (await insertAndProject(client, { log: this.#table, stage: this.#stage, state: this.#stateTable, columns: COLUMNS })).stored
    }
    return { stored, duplicates: lines.length - rejected.length - stored, rejected }
  }

  /**
   * An empty staging table, on every write (one round trip). Not cached per connection: a
   * temporary table created inside a transaction that is rolled back is gone, and a cache
   * would then send the next COPY on that connection to a missing table (42P01, fatal).
   * Emptied first: ON COMMIT DELETE ROWS empties it at commit only, so a second write in the
   * same transaction would otherwise insert the first write's rows again (into its table).
   */
  async #prepare (client: PoolClient): Promise<void> {
    await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${this.#stage} (LIKE ${this.#table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
      TRUNCATE ${this.#stage}`)
  }

  /**
   * COPYs lines[from, to). When the database rejects a row, the error names its line: the
   * rows before it are copied again, it is set aside, and the rest is tried the same way,
   * so one poison row costs two extra COPYs, not a bisection.
   */
  async #copyIsolating (client: PoolClient, lines: string[], origins: KafkaMessage[], from: number, to: number, rejected: Rejected[]): Promise<void> {
    let start = from
    while (start < to) {
      await client.query('SAVEPOINT sluice_copy')
      try {
        await copyLines(client, this.#stage, lines, start, to)
        await client.query('RELEASE SAVEPOINT sluice_copy')
        return
      } catch (err) {
        // rolled back and released: every attempt leaves no subtransaction behind (they
        // would pile up, one per rejected row, past the 64 a backend caches)
        await client.query('ROLLBACK TO SAVEPOINT sluice_copy; RELEASE SAVEPOINT sluice_copy')
        if (!isRowRejection(err)) throw err
        const line = rejectedLine(err, to - start)
        if (line === -1 && to - start > 1) {
          // no line number: bisect
          const mid = start + ((to - start) >> 1)
          await this.#copyIsolating(client, lines, origins, start, mid, rejected)
          await this.#copyIsolating(client, lines, origins, mid, to, rejected)
          return
        }
        const bad = start + Math.max(line, 0)
        if (bad > start) {
          // rows before the rejected one are good unless proven otherwise
          await this.#copyIsolating(client, lines, origins, start, bad, rejected)
        }
        rejected.push({
          origin: origins[bad] as KafkaMessage,
          error: new SluiceError('SLUICE_ERR_ROW_REJECTED', `PostgreSQL rejected the row${rejectedColumn(err)}: ${(err as Error).message}${rejectedDetail(err)}`, { cause: err })
        })
        start = bad + 1
      }
    }
  }
}

async function copyLines (client: PoolClient, stage: string, lines: string[], from: number, to: number): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${stage} (${COLUMNS}) FROM STDIN`))
  // one chunk per ~1 MiB of lines: few writes, bounded extra memory
  const source = Readable.from(chunks(lines, from, to), { objectMode: false })
  await pipeline(source, stream)
}

function * chunks (lines: string[], from: number, to: number): Generator<Buffer> {
  let parts: string[] = []
  let size = 0
  for (let i = from; i < to; i++) {
    const line = lines[i] as string
    parts.push(line)
    size += line.length
    if (size >= 1 << 20) {
      yield Buffer.from(parts.join(''), 'utf8')
      parts = []
      size = 0
    }
  }
  if (parts.length > 0) yield Buffer.from(parts.join(''), 'utf8')
}

/** The 0-based index of the rejected row within the attempted range, from "COPY x, line N". */
function rejectedLine (err: unknown, count: number): number {
  const where = (err as { where?: string }).where ?? ''
  const m = /^COPY [^,]+, line (\d+)/m.exec(where)
  const n = m === null ? NaN : Number(m[1]) - 1
  return Number.isInteger(n) && n >= 0 && n < count ? n : -1
}

/** PostgreSQL's detail, which often names the problem the message does not ("\u0000 cannot be converted to text."). */
function rejectedDetail (err: unknown): string {
  const detail = (err as { detail?: unknown }).detail
  return typeof detail === 'string' && detail !== '' ? ` (${detail})` : ''
}

/** ` (column entity_id)` from "COPY x, line N, column entity_id: ...", when the error names it. */
function rejectedColumn (err: unknown): string {
  const where = (err as { where?: string }).where ?? ''
  const m = /^COPY [^,]+, line \d+, column ([^:\s]+)/m.exec(where)
  return m === null ? '' : ` (column ${m[1]})`
}

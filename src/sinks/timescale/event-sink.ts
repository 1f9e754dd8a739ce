import { from as copyFrom } from 'pg-copy-streams'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import type { PoolClient, QueryResult } from 'pg'
import { SluiceError } from '../../errors.ts'
import type { EntityEvent } from '../../model/event.ts'
import type { DuplicateDropped, DuplicateKind, Rejected, Sink, SinkBuffer, SinkWriteResult } from '../sink.ts'
import { applyBatchFold, insertAndProject } from '../../state/projection.ts'
import { batchFoldLines, FOLD_COLUMNS, FOLD_TABLE_COLUMNS } from './batch-fold.ts'
import type { FoldRow } from './batch-fold.ts'
import { CONTENT_COLUMNS, EVENT_COLUMNS, eventCopyRow } from './copy-encoder.ts'
import { batchDuplicate, distinctSortedIdLines, firstCopies, ID_COLUMNS, sortedIdLines, storedCopy, storedDuplicate } from './event-ids.ts'
import type { BufferedRow } from './event-ids.ts'
import { EventBuffer } from './event-buffer.ts'
import type { StoredCopy, StoredDuplicateRow } from './event-ids.ts'
import { lineChunks } from './copy-text.ts'
import { isRowRejection, pgCode } from '../../db/pg-errors.ts'

/** Columns written by COPY (copy-encoder.ts says what their values are; event-ids.ts where the id and origin are); the staging table has the same shape as the log. */
const COLUMNS = EVENT_COLUMNS.join(', ')

export { eventCopyRow }

/**
 * The staging path's statement: the staged ids inserted ON CONFLICT DO NOTHING (in COPY order,
 * which is id order), and the staged log rows of the ids it inserted. `WITH ${ctes} ${insert}`.
 */
export function stagedInsert (t: { log: string, ids: string, stage: string, stageIds: string }): { ctes: string, insert: string } {
  return {
    ctes: `new_ids AS (
      INSERT INTO ${t.ids} (${ID_COLUMNS}) SELECT ${ID_COLUMNS} FROM ${t.stageIds} ORDER BY ctid
      ON CONFLICT DO NOTHING RETURNING event_id)`,
    insert: `INSERT INTO ${t.log} (${COLUMNS}) SELECT ${COLUMNS} FROM ${t.stage} WHERE event_id IN (SELECT event_id FROM new_ids)`
  }
}

/** The staging table of a target table: one per table, so two sinks never share one. */
function stageTableFor (table: string): string {
  return ('sluice_stage_' + table.replace(/[^A-Za-z0-9_]/g, '_')).slice(0, 63)
}

export interface EventSinkOptions {
  name?: string
  table?: string
  /** the entity-state projection maintained in the same transaction (null: none) */
  stateTable?: string | null
  /** the table of stored event ids (sql/006_event_ids.sql) */
  idsTable?: string
}

interface RoundResult {
  inserted: number
  rejected: Rejected[]
  /** rows of the round that were not stored (rejected), for their later copies */
  rejectedRows: Set<BufferedRow>
  /** copies of ids stored before from another message, and that stored copy */
  stored: Map<BufferedRow, StoredCopy>
  /** copies of ids stored before from this very message (delivered again) */
  redelivered: number
}

/**
 * Stores EntityEvents into entity_event_logs exactly once by event id (sql/006_event_ids.sql):
 * a batch keeps the first copy of each id; then, when no id of the batch is stored yet (the
 * usual case), one COPY of the ids into sluice_event_ids (ordered by id: writers lock ids in
 * one order) and one COPY of the rows straight into the log. A stored id (the ids COPY fails
 * on the unique key) or a row PostgreSQL rejects rolls that attempt back and takes the staging
 * path: COPY into per-connection temporary tables, isolating rejected rows (SAVEPOINT per
 * attempt), then one statement inserting the ids ON CONFLICT DO NOTHING and the log rows of
 * the ids it inserted. With a projection (`stateTable`), the direct path also COPYs one row
 * per entity (batch-fold.ts) and applies them (applyBatchFold); the staging path's statement
 * applies the newly stored events one by one (insertAndProject, src/state/projection.ts).
 */
export class TimescaleEventSink implements Sink<EntityEvent> {
  readonly name: string
  readonly #table: string
  readonly #ids: string
  readonly #stage: string
  readonly #stageIds: string
  readonly #stateTable: string | null

  constructor (opts: EventSinkOptions = {}) {
    this.name = opts.name ?? 'timescale'
    this.#table = opts.table ?? 'entity_event_logs'
    this.#ids = opts.idsTable ?? 'sluice_event_ids'
    this.#stage = stageTableFor(this.#table)
    this.#stageIds = stageTableFor(this.#ids)
    this.#stateTable = opts.stateTable === undefined ? 'entity_state' : opts.stateTable
  }

  createBuffer (): EventBuffer {
    return new EventBuffer()
  }

  async write (client: PoolClient, buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): Promise<SinkWriteResult> {
    const bs = buffers as ReadonlyArray<EventBuffer>
    const whole = await this.#whole(client, bs)
    if (whole === 'written') return { stored: bs.reduce((n, b) => n + b.count, 0), duplicates: 0, duplicateKinds: {}, differing: [], rejected: [] }
    let rows: BufferedRow[] = []
    for (const b of bs) b.rows(rows)
    // the direct path failed as a whole: its first round would fail again
    let direct = whole === 'not tried'
    const total = rows.length
    let stored = 0
    const rejected: Rejected[] = []
    const kinds: Partial<Record<DuplicateKind, number>> = {}
    const differing: DuplicateDropped[] = []
    const count = (d: DuplicateDropped): void => {
      kinds[d.kind] = (kinds[d.kind] ?? 0) + 1
      if (d.kind === 'differing') differing.push(d)
    }
    // a round stores the first copy of each id; a later copy of a first copy PostgreSQL
    // rejected is the next round's candidate, so a poison copy never hides a good one
    while (rows.length > 0) {
      const { kept, later } = firstCopies(rows)
      const r = await this.#round(client, kept, direct)
      direct = true
      stored += r.inserted
      for (const x of r.rejected) rejected.push(x)
      for (const [row, copy] of r.stored) count(storedDuplicate(row, copy))
      if (r.redelivered > 0) kinds.redelivered = (kinds.redelivered ?? 0) + r.redelivered
      rows = []
      for (const l of later) {
        const copy = r.stored.get(l.first)
        if (r.rejectedRows.has(l.first)) rows.push(l.row)
        // a later copy of a copy of a stored id is compared with the stored copy
        else count(copy === undefined ? batchDuplicate(l.row, l.first) : storedDuplicate(l.row, copy))
      }
    }
    return { stored, duplicates: total - rejected.length - stored, duplicateKinds: kinds, differing, rejected }
  }

  /** The batch committed: nothing reads its buffers any more (dead letters were produced and written before). */
  committed (buffers: ReadonlyArray<SinkBuffer<EntityEvent>>): void {
    for (const b of buffers as ReadonlyArray<EventBuffer>) b.release()
  }

  /**
   * The usual batch, written from its buffers as they are, with no object per row (each would
   * live until the batch commits): no id twice in the batch, none stored before, no row
   * rejected, and for a projection one topic and ASCII types (batch-fold.ts). 'not tried' when
   * the batch is not one, 'failed' (nothing written) when PostgreSQL refused it: the rows
   * then take the paths below.
   */
  async #whole (client: PoolClient, buffers: readonly EventBuffer[]): Promise<'written' | 'failed' | 'not tried'> {
    const ids = distinctSortedIdLines(buffers.map((b) => b.idLines))
    if (ids === null) return 'not tried'
    let folds: Buffer[] | null = null
    if (this.#stateTable !== null) {
      const rows: FoldRow[] = []
      for (const b of buffers) b.foldRows(rows)
      folds = foldData(rows)
      if (folds === null) return 'not tried'
    }
    const ok = await this.#directCopy(client, ids, logChunks(buffers), folds)
    return ok ? 'written' : 'failed'
  }

  /** Stores rows whose event ids are distinct (`direct`: trying the direct path first). */
  async #round (client: PoolClient, rows: BufferedRow[], direct: boolean): Promise<RoundResult> {
    if (direct && await this.#direct(client, rows)) return { inserted: rows.length, rejected: [], rejectedRows: new Set(), stored: new Map(), redelivered: 0 }
    return await this.#staged(client, rows)
  }

  /** The path without conflicts: false (and nothing written) when an id is stored or a row rejected. */
  async #direct (client: PoolClient, rows: BufferedRow[]): Promise<boolean> {
    if (this.#stateTable === null) return await this.#directCopy(client, sortedIdLines(rows), lineChunks(rows), null)
    const folds = foldData(rows.map((r) => ({ line: r.line, origin: r })))
    if (folds !== null) return await this.#directCopy(client, sortedIdLines(rows), lineChunks(rows), folds)
    // events of several topics, or a non-ASCII type: PostgreSQL folds them one by one
    const state = this.#stateTable
    return await this.#attempt(client, async () => {
      await copyLines(client, `${this.#ids} (${ID_COLUMNS})`, sortedIdLines(rows))
      await this.#prepare(client)
      await copyData(client, `${this.#stage} (${COLUMNS})`, lineChunks(rows))
      await insertAndProject(client, { log: this.#table, state, insert: `INSERT INTO ${this.#table} (${COLUMNS}) SELECT ${COLUMNS} FROM ${this.#stage}` })
    })
  }

  /** The ids (sorted), then the log lines straight into the log, then the projection's fold table (null: no projection). */
  async #directCopy (client: PoolClient, ids: readonly string[], log: Iterable<Buffer>, folds: readonly Buffer[] | null): Promise<boolean> {
    return await this.#attempt(client, async () => {
      await copyLines(client, `${this.#ids} (${ID_COLUMNS})`, ids)
      await copyData(client, `${this.#table} (${COLUMNS})`, log)
      if (this.#stateTable !== null && folds !== null && folds.length > 0) await this.#project(client, this.#stateTable, folds)
    })
  }

  /** Runs `write` in a savepoint: false (rolled back) when an id is stored or a row rejected. */
  async #attempt (client: PoolClient, write: () => Promise<void>): Promise<boolean> {
    await client.query('SAVEPOINT sluice_direct')
    try {
      await write()
      await client.query('RELEASE SAVEPOINT sluice_direct')
      return true
    } catch (err) {
      await client.query('ROLLBACK TO SAVEPOINT sluice_direct; RELEASE SAVEPOINT sluice_direct')
      if (pgCode(err) === UNIQUE_VIOLATION || isRowRejection(err)) return false
      throw err
    }
  }

  /**
   * The batch's projection from its fold lines (src/sinks/timescale/batch-fold.ts), its rows
   * already in the log, through a temporary table analyzed when PostgreSQL knows no row count
   * for it (once per connection). Without that the planner took a 40-row fold table for 350
   * rows and scanned entity_state whole, twice per batch: at half rate a batch's transaction
   * took 47 ms at the median instead of 15 (docs/benchmarks.md).
   */
  async #project (client: PoolClient, state: string, folds: readonly Buffer[]): Promise<void> {
    const table = stageTableFor(state)
    const unanalyzed = await freshTempTables(client, [{ name: table, definition: `(${FOLD_TABLE_COLUMNS})` }])
    await copyData(client, `${table} (${FOLD_COLUMNS})`, folds)
    if (unanalyzed.has(table)) await client.query(`ANALYZE ${table} (entity, entity_id)`)
    await applyBatchFold(client, { log: this.#table, state, folds: table })
  }

  async #staged (client: PoolClient, rows: BufferedRow[]): Promise<RoundResult> {
    await this.#prepare(client)
    const rejected: Rejected[] = []
    const rejectedRows = new Set<BufferedRow>()
    await this.#copyIsolating(client, rows, 0, rows.length, rejected, rejectedRows)
    const good = rejectedRows.size === 0 ? rows : rows.filter((r) => !rejectedRows.has(r))
    // in id order (COPY order, read back in ctid order): writers lock ids in one order
    await copyLines(client, `${this.#stageIds} (${ID_COLUMNS})`, sortedIdLines(good))
    const { ctes, insert } = stagedInsert({ log: this.#table, ids: this.#ids, stage: this.#stage, stageIds: this.#stageIds })
    let stored: number
    if (this.#stateTable === null) {
      stored = (await client.query(`WITH ${ctes} ${insert}`)).rowCount ?? 0
    } else {
      stored = (await insertAndProject(client, { log: this.#table, state: this.#stateTable, insert, ctes })).stored
    }
    const copies = stored < good.length ? await this.#storedCopies(client, good) : new Map<BufferedRow, StoredCopy>()
    return { inserted: stored, rejected, rejectedRows, stored: copies, redelivered: good.length - stored - copies.size }
  }

  /**
   * The copies of the staging table whose id is stored from another message, with the stored
   * copy's origin and whether its log row has the copy's content (a later statement: it sees
   * what a competing writer committed while the insert waited). A copy not stored and not
   * listed here is a redelivery: its id is stored with its own origin. The log row is found by
   * the id's time (the log's time index); only the duplicates of a batch are compared.
   */
  async #storedCopies (client: PoolClient, good: BufferedRow[]): Promise<Map<BufferedRow, StoredCopy>> {
    const res = await client.query<StoredDuplicateRow>(`SELECT s.source_topic, s.source_partition, s.source_offset::text,
        e.source_topic AS stored_topic, e.source_partition AS stored_partition, e.source_offset::text AS stored_offset,
        (SELECT bool_or((${CONTENT_COLUMNS.map((c) => `l.${c}`).join(', ')}) IS NOT DISTINCT FROM (${CONTENT_COLUMNS.map((c) => `n.${c}`).join(', ')}))
          FROM ${this.#table} l WHERE l."timestamp" = e."timestamp" AND l.event_id = e.event_id) AS same_content,
        floor(extract(epoch FROM e."timestamp") * 1000)::float8 AS stored_ms
      FROM ${this.#stageIds} s JOIN ${this.#ids} e USING (event_id)
        JOIN ${this.#stage} n ON (n.source_topic, n.source_partition, n.source_offset) = (s.source_topic, s.source_partition, s.source_offset)
      WHERE (e.source_topic, e.source_partition, e.source_offset) IS DISTINCT FROM (s.source_topic, s.source_partition, s.source_offset)`)
    const byOrigin = new Map<string, BufferedRow>()
    for (const r of good) byOrigin.set(`${r.partition}:${r.offset}:${r.topic}`, r)
    const out = new Map<BufferedRow, StoredCopy>()
    for (const r of res.rows) {
      const row = byOrigin.get(`${r.source_partition}:${r.source_offset}:${r.source_topic}`)
      if (row !== undefined) out.set(row, storedCopy(r, row))
    }
    return out
  }

  /** Empty staging tables, on every staged write (freshTempTables). */
  async #prepare (client: PoolClient): Promise<void> {
    await freshTempTables(client, [
      { name: this.#stage, definition: `(LIKE ${this.#table} INCLUDING DEFAULTS)` },
      { name: this.#stageIds, definition: `(LIKE ${this.#ids})` }
    ])
  }

  /**
   * COPYs rows[from, to) into the staging table. When the database rejects a row, the error
   * names its line: the rows before it are copied again, it is set aside, and the rest is
   * tried the same way, so one poison row costs two extra COPYs, not a bisection.
   */
  async #copyIsolating (client: PoolClient, rows: BufferedRow[], from: number, to: number, rejected: Rejected[], rejectedRows: Set<BufferedRow>): Promise<void> {
    let start = from
    while (start < to) {
      await client.query('SAVEPOINT sluice_copy')
      try {
        await copyData(client, `${this.#stage} (${COLUMNS})`, lineChunks(rows.slice(start, to)))
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
          await this.#copyIsolating(client, rows, start, mid, rejected, rejectedRows)
          await this.#copyIsolating(client, rows, mid, to, rejected, rejectedRows)
          return
        }
        const bad = start + Math.max(line, 0)
        if (bad > start) {
          // rows before the rejected one are good unless proven otherwise
          await this.#copyIsolating(client, rows, start, bad, rejected, rejectedRows)
        }
        const row = rows[bad] as BufferedRow
        rejectedRows.add(row)
        rejected.push({
          origin: row.origin,
          error: new SluiceError('SLUICE_ERR_ROW_REJECTED', `PostgreSQL rejected the row${rejectedColumn(err)}: ${(err as Error).message}${rejectedDetail(err)}`, { cause: err })
        })
        start = bad + 1
      }
    }
  }
}

const UNIQUE_VIOLATION = '23505'

/**
 * This connection's temporary tables, created if missing and emptied, in one round trip; the
 * names of those PostgreSQL knows no row count for (never analyzed). Not cached per
 * connection: a temporary table created inside a transaction that is rolled back is gone, and
 * a cache would then send the next COPY on that connection to a missing table (42P01, fatal).
 * Emptied because ON COMMIT DELETE ROWS empties them at commit only: a second write in the
 * same transaction would otherwise see the first write's rows. With DELETE, not TRUNCATE,
 * which gives a table a new file and forgets its statistics (2.4 ms against 0.7 ms a batch).
 */
async function freshTempTables (client: PoolClient, tables: ReadonlyArray<{ name: string, definition: string }>): Promise<Set<string>> {
  const sql = tables.map((t) => `CREATE TEMP TABLE IF NOT EXISTS ${t.name} ${t.definition} ON COMMIT DELETE ROWS; DELETE FROM ${t.name};`).join('\n') +
    `SELECT t.name FROM (VALUES ${tables.map((t) => `('${t.name}', 'pg_temp.${t.name}'::regclass)`).join(', ')}) AS t(name, oid)
      JOIN pg_class c ON c.oid = t.oid WHERE c.reltuples < 0`
  // a script's results come as an array, one per statement: the last is the SELECT
  const results = await client.query(sql) as unknown as Array<QueryResult<{ name: string }>>
  return new Set((results[results.length - 1]?.rows ?? []).map((r) => r.name))
}

/** COPY of text lines into `target` ("table (columns)"): one chunk per ~1 MiB of lines. */
async function copyLines (client: PoolClient, target: string, lines: readonly string[]): Promise<void> {
  await copyData(client, target, chunks(lines, 0, lines.length))
}

/** COPY of COPY-text bytes into `target` ("table (columns)"). */
async function copyData (client: PoolClient, target: string, data: Iterable<Buffer>): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${target} FROM STDIN`))
  await pipeline(Readable.from(data, { objectMode: false }), stream)
}

/**
 * The projection's fold table data for rows (batch-fold.ts), or null when PostgreSQL folds
 * them. Each line is decoded once, and the fold lines are made bytes before the write goes on:
 * nothing of the decoded lines outlives this call.
 */
function foldData (rows: readonly FoldRow[]): Buffer[] | null {
  const lines = batchFoldLines(rows)
  return lines === null ? null : [...chunks(lines, 0, lines.length)]
}

/** The log's COPY data of whole buffers, in order: their blocks as they are. */
function * logChunks (buffers: readonly EventBuffer[]): Generator<Buffer> {
  for (const b of buffers) yield * b.text.chunks()
}

/** COPY data of lines[from, to): one Buffer per ~1 MiB of lines. */
export function * chunks (lines: readonly string[], from: number, to: number): Generator<Buffer> {
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

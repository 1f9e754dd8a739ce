import type { KafkaMessage } from '../../kafka/types.ts'
import type { DuplicateDropped, DuplicateKind } from '../sink.ts'
import { EVENT_COLUMNS, unescapeCopyText } from './copy-encoder.ts'
import type { CopyText, TextLine } from './copy-text.ts'
import type { OriginStore } from './origin-store.ts'

/**
 * Exactly once by event id (sql/006_event_ids.sql): each stored event has a row in
 * sluice_event_ids, inserted in the transaction that stores it. What this module does in the
 * worker: one row per event id within a batch (the first copy; later copies are duplicates,
 * labelled here), and the ids table's COPY lines.
 */

/**
 * Columns of sluice_event_ids as the COPY lines give them: the id first, so that the lines
 * sort by id as plain strings (sortedIdLines).
 */
export const ID_COLUMNS = 'event_id, "timestamp", source_topic, source_partition, source_offset'

// where eventCopyRow puts the time, the id and the origin (topic, partition, offset)
if (EVENT_COLUMNS.indexOf('"timestamp"') !== 0 || EVENT_COLUMNS.indexOf('event_id') !== 1 || EVENT_COLUMNS.indexOf('source_topic') !== 2 ||
  EVENT_COLUMNS.indexOf('source_partition') !== 3 || EVENT_COLUMNS.indexOf('source_offset') !== 4) {
  throw new Error('event-ids.ts expects the COPY columns "timestamp", event_id, source_topic, source_partition, source_offset first')
}

/** One event of a batch: its log COPY line and what identifies it. */
export interface BatchRow {
  /** the log's COPY line (EVENT_COLUMNS) */
  readonly line: string
  readonly origin: KafkaMessage
  /** the event id as the producer sent it (for log lines) */
  readonly eventId: string
  /** the COPY text of the id and the timestamp (the comparison keys) */
  readonly idText: string
  readonly timeText: string
  /** the sluice_event_ids COPY line (ID_COLUMNS) */
  readonly idLine: string
}

/**
 * Where a log COPY line's content starts: after the tab that ends its origin. The content is
 * every column after the origin, newline included (what two copies of an id are compared by).
 */
export function contentStart (line: string): number {
  // column k starts after tab k-1 (COPY text escapes tabs inside values, so every tab is a separator)
  return line.indexOf('\t', line.indexOf('\t', line.indexOf('\t', line.indexOf('\t', line.indexOf('\t') + 1) + 1) + 1) + 1) + 1
}

/**
 * The sluice_event_ids COPY line of a log COPY line (or of its start, through the origin's tab;
 * `content` is where the origin's tab ends): the id, the time, the origin. One flat string
 * (joined: a `+` chain would keep slices of the whole line alive).
 */
export function idLineWith (line: string, content: number): string {
  const t1 = line.indexOf('\t')
  const t2 = line.indexOf('\t', t1 + 1)
  return [line.slice(t1 + 1, t2 + 1), line.slice(0, t1), line.slice(t2, content - 1), '\n'].join('')
}

/** The sluice_event_ids COPY line of a log COPY line. */
export function idLineOf (line: string): string {
  return idLineWith(line, contentStart(line))
}

/** What an id line identifies: [id text, time text]. */
function idParts (idLine: string): [string, string] {
  const a = idLine.indexOf('\t')
  const b = idLine.indexOf('\t', a + 1)
  return [idLine.slice(0, a), idLine.slice(a + 1, b)]
}

/** Whether two log COPY lines carry the same content (every column after the origin), as encoded. */
export function sameContent (a: string, b: string): boolean {
  const ca = contentStart(a)
  const cb = contentStart(b)
  return a.length - ca === b.length - cb && a.endsWith(b.slice(cb))
}

/** Splits a log COPY line into what identifies the event. */
export function batchRow (line: string, eventId: string, origin: KafkaMessage): BatchRow {
  const idLine = idLineOf(line)
  const [idText, timeText] = idParts(idLine)
  return { line, origin, eventId, idText, timeText, idLine }
}

/**
 * A row of a batch as its buffer kept it (event-sink.ts): the id line, the event id, the origin,
 * and where its log line's bytes are; the line is decoded only when asked for (the staging
 * path, the projection's fold).
 */
export class BufferedRow implements BatchRow, TextLine {
  readonly idLine: string
  readonly idText: string
  readonly timeText: string
  readonly text: CopyText
  readonly index: number
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly #origins: OriginStore

  constructor (idLine: string, origins: OriginStore, text: CopyText, index: number) {
    this.idLine = idLine
    this.#origins = origins
    const [idText, timeText] = idParts(idLine)
    this.idText = idText
    this.timeText = timeText
    this.text = text
    this.index = index
    this.topic = origins.topicOf(index)
    this.partition = origins.partitionOf(index)
    this.offset = origins.offset(index)
  }

  /** its Kafka message, rebuilt from the buffer's OriginStore (topic, partition and offset without it) */
  get origin (): KafkaMessage { return this.#origins.message(this.index) }

  get line (): string { return this.text.line(this.index) }

  /** read back from its id line's COPY text: the buffer holds no string of its own per event (only a duplicate's report reads it) */
  get eventId (): string { return unescapeCopyText(this.idText) }
}

export function duplicateKind (sameContent: boolean | null, sameTime: boolean): DuplicateKind {
  if (sameContent === null) return 'unverified'
  if (!sameContent) return 'differing'
  return sameTime ? 'identical' : 'restamped'
}

function originOf (m: Pick<KafkaMessage, 'topic' | 'partition' | 'offset'>): { topic: string, partition: number, offset: number } {
  return { topic: m.topic, partition: m.partition, offset: m.offset }
}

/**
 * The first copy of each event id of `rows` (in order) and the later ones as duplicates of
 * it. A first copy that PostgreSQL then rejects does not make its duplicates disappear: the
 * caller writes them again (`again`).
 */
export function firstCopies<R extends BatchRow> (rows: readonly R[]): { kept: R[], later: Array<{ row: R, first: R }> } {
  const first = new Map<string, R>()
  const kept: R[] = []
  const later: Array<{ row: R, first: R }> = []
  for (const row of rows) {
    const f = first.get(row.idText)
    if (f === undefined) {
      first.set(row.idText, row)
      kept.push(row)
    } else {
      later.push({ row, first: f })
    }
  }
  return { kept, later }
}

export function batchDuplicate (row: BatchRow, first: BatchRow): DuplicateDropped {
  return {
    eventId: row.eventId,
    kind: duplicateKind(sameContent(row.line, first.line), row.timeText === first.timeText),
    stored: originOf(first.origin),
    dropped: originOf(row.origin)
  }
}

/**
 * The ids lines of rows (distinct ids), ordered by event id: every writer locks ids in the
 * same order. A line starts with its id's COPY text and a tab, so two lines first differ
 * within their ids or where the shorter id's tab meets the longer id: the lines' own order is
 * a total order of the ids, the same in every writer. Sorted as plain strings, without a
 * comparator call per comparison (bench/hot-path.ts).
 */
export function sortedIdLines (rows: readonly BatchRow[]): string[] {
  const lines = new Array<string>(rows.length)
  for (let i = 0; i < rows.length; i++) lines[i] = (rows[i] as BatchRow).idLine
  return lines.sort()
}

/**
 * The id lines of several buffers (sortedIdLines' order), or null when an id appears twice:
 * sorted, two lines of one id are next to each other (a line starts with its id's text and a
 * tab), so one pass over neighbours finds every repeated id.
 */
export function distinctSortedIdLines (lists: ReadonlyArray<readonly string[]>): string[] | null {
  const lines: string[] = []
  for (const l of lists) for (let i = 0; i < l.length; i++) lines.push(l[i] as string)
  lines.sort()
  for (let i = 1; i < lines.length; i++) if (sameId(lines[i - 1] as string, lines[i] as string)) return null
  return lines
}

/** Whether two id lines start with the same id text (through its tab). */
function sameId (a: string, b: string): boolean {
  const t = a.indexOf('\t')
  if (b.charCodeAt(t) !== 9) return false
  for (let i = 0; i < t; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false
  return true
}

/** The stored copy of an event id, from the duplicates query (event-sink.ts), as a copy of the batch found it. */
export interface StoredCopy {
  origin: { topic: string, partition: number, offset: number }
  /** whether the log row of the stored copy has the batch copy's content (`copy`); null: no log row found */
  sameContent: boolean | null
  /** the log line of the batch's copy it was compared with */
  copy: BatchRow
  /** its timestamp, whole ms since the epoch (what Date.parse gives a producer's time) */
  ms: number
}

export function storedCopy (r: StoredDuplicateRow, copy: BatchRow): StoredCopy {
  return {
    origin: { topic: r.stored_topic, partition: r.stored_partition, offset: Number(r.stored_offset) },
    sameContent: r.same_content,
    copy,
    ms: r.stored_ms
  }
}

/**
 * A copy dropped because its id is stored from another message. Its content is the stored
 * copy's when PostgreSQL found the copy it was compared with (`stored.copy`) equal to the log
 * row and this copy's COPY text is that copy's; another text of the same id is `differing`.
 */
export function storedDuplicate (row: BatchRow, stored: StoredCopy): DuplicateDropped {
  const o = row.origin
  const again = o.topic === stored.origin.topic && o.partition === stored.origin.partition && o.offset === stored.origin.offset
  const same = stored.sameContent === null || row === stored.copy ? stored.sameContent : stored.sameContent && sameContent(row.line, stored.copy.line)
  return {
    eventId: row.eventId,
    kind: again ? 'redelivered' : duplicateKind(same, Date.parse(row.timeText) === stored.ms),
    stored: stored.origin,
    dropped: originOf(row.origin)
  }
}

export interface StoredDuplicateRow {
  source_partition: number
  source_offset: string
  source_topic: string
  stored_topic: string
  stored_partition: number
  stored_offset: string
  /** the stored log row's content columns equal the staged copy's (jsonb by value); null: no log row at the id's time */
  same_content: boolean | null
  stored_ms: number
}

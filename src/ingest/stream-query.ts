import type { Pool } from 'pg'
import type { Cursor } from './stream-cursor.ts'
import { positionOf, setPosition } from './stream-cursor.ts'

/** What a stream shows: events of one type, of one entity type, of one entity (all optional). */
export interface StreamFilter {
  eventType?: string
  entityType?: string
  entityId?: string
}

/** One event of the log as the stream sends it (an SSE frame's data, already JSON). */
export interface StreamEvent {
  topic: string
  partition: number
  offset: number
  json: string
}

export interface Page {
  /** events in (topic, partition, offset) order */
  events: StreamEvent[]
  /** the position after the page, every partition included */
  cursor: Cursor
  /** some partition has more to read right away */
  more: boolean
}

/**
 * The stream's one query. For every partition of the group's stored offsets (sluice_offsets,
 * written in the same transaction as the rows it covers) it reads the matching events after
 * the cursor, in offset order, at most `limit` and about `maxBytes` per partition. A partition
 * read to its end moves to its stored position (next offset - 1) even when no event matched,
 * which is safe: in the statement's snapshot every row up to it is committed, and nothing
 * below it can commit later. Rows of partitions the group never stored are not streamed
 * (a restore's STATE_RESTORED record, for one).
 */
const SQL = `
WITH heads AS (
  SELECT topic, partition, next_offset - 1 AS head FROM sluice_offsets WHERE consumer_group = $1
),
cur AS (
  SELECT h.topic, h.partition, h.head, coalesce(c.pos, -1) AS pos
  FROM heads h LEFT JOIN unnest($2::text[], $3::int[], $4::bigint[]) AS c(topic, partition, pos)
    ON c.topic = h.topic AND c.partition = h.partition
)
SELECT cur.topic, cur.partition, cur.head::text AS head, e.n, e.source_offset::text AS "offset", e.json
FROM cur LEFT JOIN LATERAL (
  SELECT y.*, count(*) OVER () AS n FROM (
    SELECT x.*, sum(octet_length(x.json)) OVER (ORDER BY x.source_offset) AS run FROM (
      SELECT l.source_offset, json_build_object(
        'eventId', l.event_id, 'eventType', l.event_type, 'timestamp', l."timestamp", 'entity', l.entity,
        'entityId', l.entity_id, 'version', l.version, 'userName', l.user_name, 'workspace', l.workspace,
        'payload', l.event_data, 'metadata', l.metadata, 'correlationId', l.correlation_id,
        'causationId', l.causation_id, 'topic', l.source_topic, 'partition', l.source_partition,
        'offset', l.source_offset)::text AS json
      FROM entity_event_logs l
      WHERE l.source_topic = cur.topic AND l.source_partition = cur.partition AND l.source_offset > cur.pos
        AND ($5::text IS NULL OR l.event_type = $5) AND ($6::text IS NULL OR l.entity = $6) AND ($7::text IS NULL OR l.entity_id = $7)
      ORDER BY l.source_offset LIMIT $8
    ) x
  ) y
) e ON true
WHERE e.source_offset IS NULL OR e.run - octet_length(e.json) < $9
ORDER BY cur.topic, cur.partition, e.source_offset`

interface Row { topic: string, partition: number, head: string, n: string | null, offset: string | null, json: string | null }

export async function readPage (pool: Pool, group: string, cursor: Cursor, filter: StreamFilter, limit: number, maxBytes: number): Promise<Page> {
  const topics: string[] = []
  const partitions: number[] = []
  const offsets: string[] = []
  for (const [t, ps] of cursor) for (const [p, o] of ps) { topics.push(t); partitions.push(p); offsets.push(String(o)) }
  const res = await pool.query<Row>(SQL, [group, topics, partitions, offsets, filter.eventType ?? null, filter.entityType ?? null, filter.entityId ?? null, limit, maxBytes])
  const next: Cursor = new Map([...cursor].map(([t, ps]) => [t, new Map(ps)]))
  const events: StreamEvent[] = []
  let more = false
  for (let i = 0; i < res.rows.length;) {
    const first = res.rows[i] as Row
    let j = i
    let last = positionOf(cursor, first.topic, first.partition) ?? -1
    for (; j < res.rows.length && (res.rows[j] as Row).topic === first.topic && (res.rows[j] as Row).partition === first.partition; j++) {
      const r = res.rows[j] as Row
      if (r.offset === null || r.json === null) continue
      last = Number(r.offset)
      events.push({ topic: r.topic, partition: r.partition, offset: last, json: r.json })
    }
    const got = j - i
    const read = first.n === null ? 0 : Number(first.n)
    const complete = first.offset === null || (read < limit && got === read)
    if (!complete) more = true
    setPosition(next, first.topic, first.partition, complete ? Math.max(last, Number(first.head)) : last)
    i = j
  }
  return { events, cursor: next, more }
}

/** Where a new stream starts: after everything durable now (per partition, the stored position or the last row, whichever is later). */
export async function headCursor (pool: Pool, group: string): Promise<Cursor> {
  const res = await pool.query<{ topic: string, partition: number, pos: string }>(`
    SELECT o.topic, o.partition, greatest(o.next_offset - 1, coalesce(m.mx, -1))::text AS pos
    FROM sluice_offsets o LEFT JOIN LATERAL (
      SELECT max(l.source_offset) AS mx FROM entity_event_logs l WHERE l.source_topic = o.topic AND l.source_partition = o.partition
    ) m ON true
    WHERE o.consumer_group = $1`, [group])
  const c: Cursor = new Map()
  for (const r of res.rows) setPosition(c, r.topic, r.partition, Number(r.pos))
  return c
}

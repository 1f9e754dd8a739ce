import { createHash } from 'node:crypto'
import { SluiceError } from '../../errors.ts'
import type { KafkaMessage } from '../../kafka/types.ts'
import { BulkString } from '../../model/bulk-string.ts'
import type { EntityEvent } from '../../model/event.ts'
import { base64DecodedLength, isBase64 } from '../../model/base64-bytes.ts'
import type { InlineSnapshot } from './inline-document.ts'

/**
 * What the S3 snapshot sink does with each event of its route, decided on the consuming tick:
 *  - inline : SNAPSHOT_CREATED whose payload carries `data` (the seed's file format)
 *  - chunk  : SNAPSHOT_CHUNK {snapshotId, seq (0, 1, ...), last (true on the final chunk, or the
 *             final seq), data (base64, or UTF-8 text with encoding "utf8")}
 *  - trigger: SNAPSHOT_TRIGGERED: sluice dumps entity_state itself
 *  - log    : anything else (a SNAPSHOT_CREATED that only reports a snapshot made elsewhere):
 *             stored in the event log like a regular event
 * Every event is also stored in the event log, slimmed: the bulky `data` is replaced by what
 * was stored (key, checksum, size), so the log keeps the audit trail without the bytes.
 */
export type SnapshotItem = LogItem | InlineItem | ChunkItem | TriggerItem

interface ItemBase { event: EntityEvent, origin: KafkaMessage }
export interface LogItem extends ItemBase { kind: 'log' }
export interface InlineItem extends ItemBase { kind: 'inline', snapshot: InlineSnapshot }
export interface TriggerItem extends ItemBase {
  kind: 'trigger'
  snapshotId: string
  /** when it was read (Date.now()): a dump started later answers it */
  receivedAt: number
}
export interface ChunkItem extends ItemBase {
  kind: 'chunk'
  snapshotId: string
  seq: number
  /** this is the final chunk */
  last: boolean
  /** the final seq, when the producer says it */
  lastSeq: number | null
  /**
   * the bytes of the chunk's data as sent, base64 (decoded straight into the upload's part
   * buffer) or UTF-8 text: the message's own (a BulkString's), or a short string's UTF-8
   */
  data: Buffer
  encoding: 'base64' | 'utf8'
  /** decoded length */
  size: number
  counts: Record<string, number> | null
  createdAt: string
  createdBy: string | null
  triggerEvent: string | null
  contentType: string
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/

function invalid (message: string): SluiceError {
  const err = new SluiceError('SLUICE_ERR_SNAPSHOT_INVALID', message)
  ;(err as { stage?: string }).stage = 'sink:s3-snapshots'
  return err
}

function isObj (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function snapshotIdOf (e: EntityEvent, required: boolean): string | null {
  const id = e.payload.snapshotId ?? e.payload.snapshot_id
  if (id === undefined || id === null) {
    if (required) throw invalid(`${e.eventType} has no payload.snapshotId`)
    return null
  }
  if (typeof id !== 'string' || !ID_RE.test(id)) throw invalid(`snapshotId ${JSON.stringify(id)?.slice(0, 100)} is not a safe key name ([A-Za-z0-9][A-Za-z0-9._-]{0,199})`)
  return id
}

function isoDate (v: unknown, fallback: string, what: string): string {
  const text = typeof v === 'string' ? v : fallback
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) throw invalid(`${what} ${JSON.stringify(text).slice(0, 60)} is not a date`)
  return new Date(ms).toISOString()
}

function str (v: unknown): string | null {
  return typeof v === 'string' ? v : null
}

function countsOf (v: unknown): Record<string, number> | null {
  if (!isObj(v)) return null
  const out: Record<string, number> = {}
  for (const [k, n] of Object.entries(v)) if (typeof n === 'number' && Number.isFinite(n)) out[k] = n
  return out
}

/** The id of the state snapshot a SNAPSHOT_TRIGGERED asks for: its own, or one from its event id. */
export function triggerSnapshotId (e: EntityEvent): string {
  const own = snapshotIdOf(e, false)
  if (own !== null) return own
  const fromEvent = `state-${e.eventId}`
  return ID_RE.test(fromEvent) ? fromEvent : `state-${createHash('sha1').update(e.eventId).digest('hex')}`
}

export function parseItem (e: EntityEvent, origin: KafkaMessage): SnapshotItem {
  const p = e.payload
  switch (e.eventType) {
    case 'SNAPSHOT_CREATED': {
      if (p.data === undefined) return { kind: 'log', event: e, origin }
      if (!isObj(p.data)) throw invalid('SNAPSHOT_CREATED payload.data must be an object of collections')
      const id = snapshotIdOf(e, true) as string
      const { counts: _c, checksum: _s, size: _z, ...metadata } = isObj(p.metadata) ? p.metadata : {}
      const snapshot: InlineSnapshot = {
        snapshotId: id,
        createdAt: isoDate(p.createdAt, e.timestamp, 'createdAt'),
        createdBy: str(p.createdBy) ?? e.userName,
        triggerEvent: str(p.triggerEvent) ?? str(p.triggerReason),
        version: p.version ?? '1.0',
        data: p.data,
        metadata
      }
      return { kind: 'inline', event: e, origin, snapshot }
    }
    case 'SNAPSHOT_CHUNK': {
      const id = snapshotIdOf(e, true) as string
      const seq = p.seq
      if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0) throw invalid(`SNAPSHOT_CHUNK of ${id}: seq must be an integer >= 0`)
      const lastRaw = p.last ?? false
      if (typeof lastRaw !== 'boolean' && (typeof lastRaw !== 'number' || !Number.isInteger(lastRaw) || lastRaw < 0)) {
        throw invalid(`SNAPSHOT_CHUNK of ${id}: last must be a boolean or the final seq`)
      }
      const encoding = p.encoding ?? 'base64'
      if (encoding !== 'base64' && encoding !== 'utf8') throw invalid(`SNAPSHOT_CHUNK of ${id}: encoding must be "base64" or "utf8"`)
      if (typeof p.data !== 'string' && !(p.data instanceof BulkString)) throw invalid(`SNAPSHOT_CHUNK of ${id}: data must be a string (${encoding})`)
      const data = typeof p.data === 'string' ? Buffer.from(p.data, 'utf8') : p.data.bytes
      // a BulkString knows it from the JSON scan's pass over its bytes (model/base64-bytes.ts)
      if (encoding === 'base64' && !(typeof p.data === 'string' ? isBase64(data) : p.data.base64)) throw invalid(`SNAPSHOT_CHUNK of ${id}: data is not unbroken base64`)
      const size = encoding === 'base64' ? base64DecodedLength(data) : data.length
      const { data: _d, ...rest } = p
      return {
        kind: 'chunk',
        // the event log keeps the chunk's description, not its bytes
        event: { ...e, payload: { ...rest, bytes: size } },
        origin,
        snapshotId: id,
        seq,
        last: lastRaw === true || (typeof lastRaw === 'number' && lastRaw === seq),
        lastSeq: typeof lastRaw === 'number' ? lastRaw : null,
        data,
        encoding,
        size,
        counts: countsOf(p.counts) ?? (isObj(p.metadata) ? countsOf(p.metadata.counts) : null),
        createdAt: isoDate(p.createdAt, e.timestamp, 'createdAt'),
        createdBy: str(p.createdBy) ?? e.userName,
        triggerEvent: str(p.triggerEvent),
        contentType: str(p.contentType) ?? 'application/json'
      }
    }
    case 'SNAPSHOT_TRIGGERED':
      return { kind: 'trigger', event: e, origin, snapshotId: triggerSnapshotId(e), receivedAt: Date.now() }
    default:
      return { kind: 'log', event: e, origin }
  }
}

import { SluiceError } from '../errors.ts'

/**
 * A stream position: for each Kafka partition, the offset of the last event of the log the
 * client has been given (or skipped past because its filters did not match). A partition's
 * events become durable in offset order (its batches commit in order, with its stored offset),
 * so "everything of the partition up to this offset" is gap-free, whatever order concurrent
 * lanes commit different partitions in. The SSE `id` of every event is its cursor, so a
 * `Last-Event-ID` resumes after exactly what the client saw.
 *
 * Text form: `topic@partition=offset,partition=offset|topic2@...` (Kafka topic names have no
 * `@`, `=`, `,` or `|`).
 */
export type Cursor = Map<string, Map<number, number>>

const TOPIC = /^[A-Za-z0-9._-]{1,249}$/
const MAX_TEXT = 16 * 1024

export function encodeCursor (c: Cursor): string {
  const parts: string[] = []
  for (const [topic, ps] of c) {
    const entries: string[] = []
    for (const [p, o] of ps) entries.push(`${p}=${o}`)
    if (entries.length > 0) parts.push(`${topic}@${entries.join(',')}`)
  }
  return parts.join('|')
}

function bad (why: string): SluiceError {
  return new SluiceError('SLUICE_ERR_STREAM_CURSOR', `Last-Event-ID is not a stream position: ${why}`)
}

/** The cursor of a Last-Event-ID; SLUICE_ERR_STREAM_CURSOR when it is not one this stream issued. */
export function decodeCursor (text: string): Cursor {
  if (text.length > MAX_TEXT) throw bad(`longer than ${MAX_TEXT} characters`)
  const c: Cursor = new Map()
  if (text === '') return c
  for (const part of text.split('|')) {
    const at = part.indexOf('@')
    const topic = part.slice(0, at)
    if (at === -1 || !TOPIC.test(topic)) throw bad(`"${part.slice(0, 60)}" does not start with topic@`)
    if (c.has(topic)) throw bad(`topic ${topic} appears twice`)
    const ps = new Map<number, number>()
    for (const entry of part.slice(at + 1).split(',')) {
      const m = /^(\d{1,9})=(-1|\d{1,16})$/.exec(entry)
      if (m === null) throw bad(`"${entry.slice(0, 60)}" is not partition=offset`)
      const p = Number(m[1])
      if (ps.has(p)) throw bad(`partition ${topic}/${p} appears twice`)
      ps.set(p, Number(m[2]))
    }
    c.set(topic, ps)
  }
  return c
}

export function cloneCursor (c: Cursor): Cursor {
  return new Map([...c].map(([t, ps]) => [t, new Map(ps)]))
}

export function positionOf (c: Cursor, topic: string, partition: number): number | undefined {
  return c.get(topic)?.get(partition)
}

export function setPosition (c: Cursor, topic: string, partition: number, offset: number): void {
  let ps = c.get(topic)
  if (ps === undefined) c.set(topic, ps = new Map())
  ps.set(partition, offset)
}

// Helpers of the ingest tests: POST /events, SSE reading.
import type { Worker } from '../../helpers/worker-harness.ts'

export interface Answer {
  status: number
  headers: Headers
  body: any
}

/** POST /events with a body as given (string or bytes) and its content type. */
export async function postEvents (w: Pick<Worker, 'port'>, body: string | Buffer, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${w.port}/events`, { method: 'POST', body, headers: { 'content-type': contentType } })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, headers: res.headers, body: parsed }
}

export interface SseEvent {
  id: string | null
  event: string | null
  data: string | null
}

export interface SseClient {
  readonly status: number
  readonly events: SseEvent[]
  /** the id of the last frame that carried one (what a browser would send as Last-Event-ID) */
  readonly lastId: string | null
  readonly closed: Promise<void>
  abort (): void
}

/** A reading SSE client (fetch): every frame parsed as it arrives. */
export async function openStream (w: Pick<Worker, 'port'>, query = '', lastEventId?: string): Promise<SseClient> {
  const ac = new AbortController()
  const res = await fetch(`http://127.0.0.1:${w.port}/events/stream${query}`, { signal: ac.signal, headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId } })
  const events: SseEvent[] = []
  let lastId: string | null = null
  const client = {
    status: res.status,
    events,
    get lastId () { return lastId },
    closed: Promise.resolve(),
    abort: () => ac.abort()
  }
  if (res.status !== 200 || res.body === null) return client
  const decoder = new TextDecoder()
  let text = ''
  client.closed = (async () => {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true })
        let cut: number
        while ((cut = text.indexOf('\n\n')) !== -1) {
          const frame = text.slice(0, cut)
          text = text.slice(cut + 2)
          const e: SseEvent = { id: null, event: null, data: null }
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) continue
            const colon = line.indexOf(': ')
            const field = colon === -1 ? line : line.slice(0, colon)
            const value = colon === -1 ? '' : line.slice(colon + 2)
            if (field === 'id') e.id = value
            else if (field === 'event') e.event = value
            else if (field === 'data') e.data = e.data === null ? value : e.data + '\n' + value
          }
          if (e.id !== null) lastId = e.id
          if (e.data !== null) events.push(e)
        }
      }
    } catch {
      // aborted
    }
  })()
  return client
}

/** The events (data frames without `event:`) parsed. */
export function dataOf (c: SseClient): any[] {
  return c.events.filter((e) => e.event === null).map((e) => JSON.parse(e.data as string))
}

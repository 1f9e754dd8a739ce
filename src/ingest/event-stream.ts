import type { ServerResponse } from 'node:http'
import pg from 'pg'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { errorMessage } from '../errors.ts'
import type { Cursor } from './stream-cursor.ts'
import { cloneCursor, encodeCursor, positionOf, setPosition } from './stream-cursor.ts'
import { headCursor, readPage } from './stream-query.ts'
import type { Page, StreamFilter } from './stream-query.ts'

export interface EventStreamOptions {
  /** queries (search_path: sluice's schema) */
  pool: Pool
  /** for the LISTEN connection */
  pgUrl: string
  schema: string
  /** the consumer group whose stored offsets say what is durable */
  group: string
  maxClients: number
  bufferBytes: number
  slowClientMs: number
  heartbeatMs: number
  logger: Logger
  registry: Registry
}

/** events per partition per query */
const PAGE_ROWS = 200
const RECONNECT_MS = 1000

/**
 * GET /events/stream's engine: one LISTEN connection per worker (the log's statement trigger
 * notifies at commit, sql/009_event_stream.sql) wakes every stream, and each stream reads the
 * log after its own cursor (stream-query.ts), so a stream resumed from a Last-Event-ID and a
 * live one are the same code. A stream writes a page, then reads the next one only while its
 * unsent bytes stay under `bufferBytes`; past it, it waits for the client to drain, and a
 * client that does not within `slowClientMs` is dropped (memory per client is bounded by the
 * buffer plus one page). A heartbeat comment keeps idle connections open and also wakes the
 * stream, in case a notification was lost with the LISTEN connection.
 */
export class EventStreamHub {
  readonly o: EventStreamOptions
  readonly #clients = new Set<StreamClient>()
  #opening = 0
  #listener: pg.Client | null = null
  #listening: Promise<void> | null = null
  #reconnect: NodeJS.Timeout | null = null
  #closed = false
  readonly gauge: Gauge
  readonly dropped: Counter<'reason'>
  readonly sent: Counter

  constructor (o: EventStreamOptions) {
    this.o = o
    const registers = [o.registry]
    this.gauge = new Gauge({ name: 'sluice_stream_clients', help: 'Open GET /events/stream connections', registers })
    this.dropped = new Counter({ name: 'sluice_stream_dropped_total', help: 'Streams closed by the worker, by reason', labelNames: ['reason'], registers })
    this.sent = new Counter({ name: 'sluice_stream_events_total', help: 'Events sent on GET /events/stream', registers })
  }

  get size (): number { return this.#clients.size }

  /** Takes a slot for a new stream, or false when `maxClients` are open. */
  reserve (): boolean {
    if (this.#closed || this.#clients.size + this.#opening >= this.o.maxClients) return false
    this.#opening++
    return true
  }

  /** Starts a reserved stream on the response, after `cursor` (null: from now). */
  async open (res: ServerResponse, cursor: Cursor | null, filter: StreamFilter): Promise<void> {
    try {
      this.#listen()
      const start = cursor ?? await headCursor(this.o.pool, this.o.group)
      const c = new StreamClient(this, res, start, filter)
      this.#clients.add(c)
      this.gauge.set(this.#clients.size)
      res.on('close', () => {
        c.stop()
        this.#clients.delete(c)
        this.gauge.set(this.#clients.size)
      })
      c.start()
    } finally {
      this.#opening--
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#reconnect !== null) clearTimeout(this.#reconnect)
    for (const c of this.#clients) c.drop('shutdown', 'the worker is stopping; reconnect with Last-Event-ID')
    await this.#listener?.end().catch(() => {})
    this.#listener = null
  }

  #wakeAll (): void {
    for (const c of this.#clients) c.wake()
  }

  /** The LISTEN connection, opened with the first stream and reopened when it fails. */
  #listen (): void {
    if (this.#listening !== null || this.#closed) return
    const client = new pg.Client({ connectionString: this.o.pgUrl, application_name: 'sluice:stream' })
    this.#listener = client
    const retry = (err: unknown): void => {
      if (this.#listener !== client) return
      this.o.logger.warn({ err: errorMessage(err) }, 'event stream: LISTEN connection lost, reconnecting (streams still poll at each heartbeat)')
      this.#listener = null
      this.#listening = null
      client.end().catch(() => {})
      if (!this.#closed) {
        this.#reconnect = setTimeout(() => { this.#reconnect = null; if (this.#clients.size > 0) this.#listen() }, RECONNECT_MS)
        this.#reconnect.unref()
      }
    }
    client.on('error', retry)
    client.on('end', () => retry(new Error('connection ended')))
    client.on('notification', (n) => { if (n.payload === this.o.schema) this.#wakeAll() })
    this.#listening = client.connect()
      .then(async () => { await client.query('LISTEN sluice_events') })
      .then(() => this.#wakeAll(), retry) // what committed while (re)connecting
  }
}

/** One SSE connection. */
class StreamClient {
  readonly #hub: EventStreamHub
  readonly #res: ServerResponse
  readonly #filter: StreamFilter
  #cursor: Cursor
  #sentId: string
  #dirty = true
  #running = false
  #stopped = false
  #heartbeat: NodeJS.Timeout | null = null

  constructor (hub: EventStreamHub, res: ServerResponse, cursor: Cursor, filter: StreamFilter) {
    this.#hub = hub
    this.#res = res
    this.#cursor = cursor
    this.#filter = filter
    this.#sentId = encodeCursor(cursor)
  }

  start (): void {
    this.#res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    // the position the stream starts from: a client that sees no event can still resume from here
    this.#res.write(`retry: 2000\nid: ${this.#sentId}\n\n`)
    this.#heartbeat = setInterval(() => {
      this.#res.write(': keepalive\n\n')
      this.wake()
    }, this.#hub.o.heartbeatMs)
    this.wake()
  }

  wake (): void {
    this.#dirty = true
    if (this.#running || this.#stopped) return
    this.#running = true
    this.#run().catch((err) => {
      this.#hub.o.logger.warn({ err: errorMessage(err) }, 'event stream: read failed, closing the stream')
      this.drop('error', 'the event log could not be read; reconnect with Last-Event-ID')
    }).finally(() => { this.#running = false })
  }

  stop (): void {
    this.#stopped = true
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat)
    this.#heartbeat = null
  }

  /**
   * Ends the stream with a final `close` event saying why, after what is already buffered (no
   * more is added). A client that does not read that within `slowClientMs` more loses the
   * connection without it.
   */
  drop (reason: string, message: string): void {
    if (this.#stopped) return
    this.stop()
    this.#hub.dropped.inc({ reason })
    // the connection itself is closed: after the response ends an HTTP/1.1 keep-alive socket is
    // detached from it, so res.destroy() would no longer reach it
    const socket = this.#res.socket
    this.#res.end(`event: close\ndata: ${JSON.stringify({ reason, message })}\n\n`, () => { socket?.end() })
    setTimeout(() => { socket?.destroy() }, this.#hub.o.slowClientMs).unref()
  }

  async #run (): Promise<void> {
    const o = this.#hub.o
    const pageBytes = Math.max(64 * 1024, Math.floor(o.bufferBytes / 4))
    while (this.#dirty && !this.#stopped) {
      this.#dirty = false
      const page = await readPage(o.pool, o.group, this.#cursor, this.#filter, PAGE_ROWS, pageBytes)
      if (this.#stopped) return
      this.#write(page)
      if (page.more) this.#dirty = true
      if (this.#res.writableLength > o.bufferBytes && this.#res.writableNeedDrain && !(await this.#drained(o.slowClientMs))) {
        const unsent = this.#res.writableLength
        o.logger.warn({ unsent, slowClientMs: o.slowClientMs }, 'event stream: slow client dropped')
        this.drop('slow-client', `the client did not read ${unsent} buffered bytes within ${o.slowClientMs} ms; reconnect with Last-Event-ID`)
        return
      }
    }
  }

  /** SSE frames: each event's id is the cursor just after it (positions of other partitions included). */
  #write (page: Page): void {
    const running = cloneCursor(this.#cursor)
    // partitions without events move to their new position first: nothing of theirs is skipped
    const withEvents = new Set(page.events.map((e) => `${e.partition}@${e.topic}`))
    for (const [t, ps] of page.cursor) for (const [p, pos] of ps) if (!withEvents.has(`${p}@${t}`)) setPosition(running, t, p, pos)
    let out = ''
    for (let i = 0; i < page.events.length; i++) {
      const e = page.events[i] as StreamEvent
      setPosition(running, e.topic, e.partition, e.offset)
      const next = page.events[i + 1]
      if (next === undefined || next.topic !== e.topic || next.partition !== e.partition) {
        setPosition(running, e.topic, e.partition, positionOf(page.cursor, e.topic, e.partition) ?? e.offset)
      }
      out += `id: ${encodeCursor(running)}\ndata: ${e.json}\n\n`
    }
    this.#cursor = page.cursor
    const id = encodeCursor(page.cursor)
    if (page.events.length === 0 && id !== this.#sentId) out += `id: ${id}\n\n` // moved past events the filters skip
    this.#sentId = id
    if (out !== '') this.#res.write(out)
    if (page.events.length > 0) this.#hub.sent.inc(page.events.length)
  }

  async #drained (timeoutMs: number): Promise<boolean> {
    return await new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.#res.off('drain', onDrain)
        this.#res.off('close', onClose)
        resolve(ok)
      }
      const onDrain = (): void => done(true)
      const onClose = (): void => done(false)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.#res.on('drain', onDrain)
      this.#res.on('close', onClose)
    })
  }
}

type StreamEvent = Page['events'][number]

import { connect } from 'node:net'
import { once } from 'node:events'
import { test } from 'tap'
import type { Test } from 'tap'
import { metricSum, scrape } from '../../helpers/prom.ts'
import { fixture, produceSample, startWorker, waitAllHandled, waitFor } from '../../helpers/worker-harness.ts'
import type { Worker } from '../../helpers/worker-harness.ts'
import { dataOf, openStream } from './ingest-helpers.ts'

// Clients that stop reading: each stream waits while its buffer is full, then is dropped with
// a close event (the worker holds the buffer and one page for it, never what it is due); a
// reading client on the same worker gets every event; one stream over the limit is refused.
//
// What a slow client costs is measured with no other work going on: once the log holds the
// load, clients that ask for all of it (Last-Event-ID empty: the same stream code as a live
// one) and read nothing are each due the whole log, and the worker's RSS while they are open
// is compared with its RSS just before. Under the write load, the worker's own peak RSS moves
// by more than the bound from one phase of the same load to the next, slow client or not
// (measured with a reading client only: +27 to +81 MiB from the first phase to the second, up
// to +24 MiB a phase after that, malloc's main arena and V8's pages), so the live phase checks
// the drop and what each stream held, not RSS.
const EVENTS = 10_000 // per phase
const PHASES = 2
const PADDING = 3_000 // ~3.5 KB events: ~35 MB per phase through each stream, more than socket buffers hold
const BUFFER_BYTES = 256 * 1024
const BOUND = 16 * 2 ** 20 // what the replaying slow clients together may add to the RSS

test('slow clients are dropped with a close event, holding their buffer only', { timeout: 300_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 3 })
  const w = await startWorker(t, fx, {
    SLUICE_STREAM_BUFFER_BYTES: String(BUFFER_BYTES),
    SLUICE_STREAM_SLOW_CLIENT_MS: '2000',
    SLUICE_STREAM_MAX_CLIENTS: '3',
    SLUICE_INFLIGHT_MAX_BYTES: String(8 * 1024 * 1024),
    SLUICE_KAFKA_PREFETCH_BYTES: String(1024 * 1024)
  })
  const MiB = (n: number): string => (n / 2 ** 20).toFixed(1)
  const droppedSlow = async (): Promise<number> => metricSum(await scrape(w), 'sluice_stream_dropped_total', { reason: 'slow-client' })
  const fast = await openStream(w)
  t.teardown(() => fast.abort())
  const load = async (phase: number): Promise<void> => {
    await produceSample(fx.topic, { count: EVENTS, seed: 1600 + phase, payloadPadding: PADDING })
    await waitAllHandled(fx, EVENTS * phase)
    await waitFor(`${EVENTS * phase} events on the reading client`, () => dataOf(fast).length >= EVENTS * phase, 120_000)
  }
  /** Once `dropped` slow clients are counted, `clients` read again (a dropped client that still reads nothing loses its connection 2 s later). */
  const readOnceDropped = async (what: string, clients: SlowClient[], dropped: number): Promise<void> => {
    await waitFor(what, async () => await droppedSlow() === dropped, 60_000, 200)
    for (const c of clients) c.read()
  }
  /** Each client's close frame says why, and the worker held its buffer plus one page for it (a quarter of the buffer per partition). */
  const checkDropped = async (clients: SlowClient[]): Promise<void> => {
    for (const c of clients) {
      await waitFor('a slow client\'s connection closed by the worker', () => c.closed, 30_000)
      t.match(c.tail, /event: close\ndata: \{"reason":"slow-client","message":"the client did not read \d+ buffered bytes within 2000 ms/, 'its last frame says why')
      const unsent = Number(/did not read (\d+) buffered bytes/.exec(c.tail)?.[1])
      t.ok(unsent > BUFFER_BYTES && unsent < 2 * BUFFER_BYTES, `it was dropped with ${unsent} bytes unsent (SLUICE_STREAM_BUFFER_BYTES ${BUFFER_BYTES} plus one page)`)
    }
  }

  // live: the load with the reading client, then with two clients that read nothing as well
  await load(1)
  const live = [await slowClient(t, w), await slowClient(t, w)]
  for (const c of live) t.match(c.head, /^HTTP\/1\.1 200/, 'a slow client\'s stream is open')
  const over = await fetch(`http://127.0.0.1:${w.port}/events/stream`)
  t.equal(over.status, 503, 'one stream over SLUICE_STREAM_MAX_CLIENTS=3: 503')
  t.match(await over.json(), { code: 'SLUICE_ERR_STREAM_LIMIT' })
  t.ok(Number(over.headers.get('retry-after')) > 0, 'with Retry-After')
  const liveDropped = readOnceDropped('the live slow clients dropped', live, live.length)
  await load(2)
  t.equal(dataOf(fast).length, EVENTS * PHASES, 'the reading client got every event, once')
  await liveDropped
  await checkDropped(live)
  await waitFor('the dropped streams gone', async () => metricSum(await scrape(w), 'sluice_stream_clients') === 1, 30_000, 200)

  // replay: the worker otherwise idle, two clients due the whole log read nothing
  const logBytes = dataOf(fast).reduce((n, e) => n + JSON.stringify(e).length, 0)
  const before = w.rss()
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, w.rss()) }, 50)
  const replay: SlowClient[] = []
  try {
    replay.push(await slowClient(t, w, ''), await slowClient(t, w, ''))
    await readOnceDropped('the replaying slow clients dropped', replay, live.length + replay.length)
  } finally {
    clearInterval(sampler)
  }
  t.comment(`RSS before the replaying clients ${MiB(before)} MiB, peak while they were open ${MiB(peak)} MiB; the log: ${MiB(logBytes)} MiB of events`)
  t.ok(peak - before < BOUND, `${replay.length} clients that read nothing add ${MiB(peak - before)} MiB to the RSS (under ${MiB(BOUND)} MiB) although they were due ${MiB(replay.length * logBytes)} MiB`)
  await checkDropped(replay)
  t.equal(metricSum(await scrape(w), 'sluice_stream_clients'), 1, 'one stream left open')
})

interface SlowClient {
  /** the first bytes of the answer */
  readonly head: string
  readonly closed: boolean
  /** the last 4 KiB read once it reads again */
  readonly tail: string
  /** reads again, to the end */
  read (): void
}

/** A client that asks for the stream (from `lastEventId` when given), reads the answer's head, then nothing until `read()`. */
async function slowClient (t: Test, w: Worker, lastEventId?: string): Promise<SlowClient> {
  const socket = connect(w.port, '127.0.0.1')
  await once(socket, 'connect')
  const resume = lastEventId === undefined ? '' : `Last-Event-ID: ${lastEventId}\r\n`
  socket.write(`GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n${resume}\r\n`)
  const [head] = await once(socket, 'data') as [Buffer]
  socket.pause()
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy() })
  let closed = false
  let tail = ''
  socket.on('close', () => { closed = true })
  return {
    head: head.toString('latin1'),
    get closed () { return closed },
    get tail () { return tail },
    read: () => {
      socket.on('data', (b: Buffer) => { tail = (tail + b.toString('utf8')).slice(-4096) })
      socket.resume()
    }
  }
}

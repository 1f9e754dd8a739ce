import { connect } from 'node:net'
import { once } from 'node:events'
import { test } from 'tap'
import { metricSum, scrape } from '../../helpers/prom.ts'
import { fixture, produceSample, startWorker, waitAllHandled, waitFor } from '../../helpers/worker-harness.ts'
import { dataOf, openStream } from './ingest-helpers.ts'

// A client that stops reading: its stream waits while its buffer is full, then is dropped
// (the worker never holds more than the buffer and one page for it); a reading client on
// the same worker gets every event; one stream over the limit is refused.
const EVENTS = 10_000 // per phase
const PADDING = 3_000 // ~3.5 KB events: ~35 MB per phase through each stream, more than socket buffers hold

test('a slow client is dropped with a close event while the worker\'s RSS stays flat', { timeout: 300_000 }, async (t) => {
  const fx = await fixture(t, 'rdkafka', { partitions: 3 })
  const w = await startWorker(t, fx, {
    SLUICE_STREAM_BUFFER_BYTES: String(256 * 1024),
    SLUICE_STREAM_SLOW_CLIENT_MS: '2000',
    SLUICE_STREAM_MAX_CLIENTS: '2',
    SLUICE_INFLIGHT_MAX_BYTES: String(8 * 1024 * 1024),
    SLUICE_KAFKA_PREFETCH_BYTES: String(1024 * 1024)
  })
  const fast = await openStream(w)
  t.teardown(() => fast.abort())
  const rssDuring = async (phase: number): Promise<number> => {
    let peak = w.rss()
    const sampler = setInterval(() => { peak = Math.max(peak, w.rss()) }, 100)
    try {
      await produceSample(fx.topic, { count: EVENTS, seed: 1600 + phase, payloadPadding: PADDING })
      await waitAllHandled(fx, EVENTS * phase)
      await waitFor(`${EVENTS * phase} events on the reading client`, () => dataOf(fast).length >= EVENTS * phase, 120_000)
    } finally {
      clearInterval(sampler)
    }
    return peak
  }

  // phase 1: a reading client only; the worker's own working set for this load
  const idle = w.rss()
  const peak1 = await rssDuring(1)

  // phase 2: the same load with a client that asks for the stream, then reads nothing
  const slow = connect(w.port, '127.0.0.1')
  await once(slow, 'connect')
  slow.write('GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n')
  const [head] = await once(slow, 'data') as [Buffer]
  t.match(head.toString('latin1'), /^HTTP\/1\.1 200/, 'the slow client\'s stream is open')
  slow.pause()
  let slowClosed = false
  slow.on('close', () => { slowClosed = true })
  slow.on('error', () => {})
  t.teardown(() => { slow.destroy() })

  const over = await fetch(`http://127.0.0.1:${w.port}/events/stream`)
  t.equal(over.status, 503, 'a third stream over SLUICE_STREAM_MAX_CLIENTS=2: 503')
  t.match(await over.json(), { code: 'SLUICE_ERR_STREAM_LIMIT' })
  t.ok(Number(over.headers.get('retry-after')) > 0, 'with Retry-After')

  // once dropped, the client reads again: what it was sent, then the close event
  let tail = ''
  const dropped = waitFor('the slow client dropped', async () => metricSum(await scrape(w), 'sluice_stream_dropped_total', { reason: 'slow-client' }) === 1, 240_000, 200)
    .then(() => {
      slow.on('data', (b: Buffer) => { tail = (tail + b.toString('utf8')).slice(-4096) })
      slow.resume()
    })
  const peak2 = await rssDuring(2)
  await dropped
  const perPhase = dataOf(fast).slice(EVENTS).reduce((n, e) => n + JSON.stringify(e).length, 0)
  const MiB = (n: number): string => (n / 2 ** 20).toFixed(1)
  t.comment(`RSS idle ${MiB(idle)} MiB, peak with a reading client ${MiB(peak1)} MiB, peak with the slow client too ${MiB(peak2)} MiB; ${MiB(perPhase)} MiB streamed per client in phase 2`)
  t.ok(peak2 - peak1 < 16 * 2 ** 20, `a client that reads nothing adds ${MiB(peak2 - peak1)} MiB to the peak RSS (under 16 MiB) although it was due ${MiB(perPhase)} MiB`)
  t.equal(dataOf(fast).length, EVENTS * 2, 'the reading client got every event, once')

  // the slow client, reading again, finds the close event at the end of what it was sent
  await waitFor('the slow client\'s connection closed by the worker', () => slowClosed, 30_000)
  t.match(tail, /event: close\ndata: \{"reason":"slow-client","message":"the client did not read \d+ buffered bytes within 2000 ms/, 'its last frame says why')
  const metrics = await scrape(w)
  t.equal(metricSum(metrics, 'sluice_stream_clients'), 1, 'one stream left open')
})

// Open-loop load at a fixed rate, as k6's constant-arrival-rate executor makes it: request i
// leaves at start + i / rate whatever the earlier answers, so a slow answer holds back no later
// request and the latency under load is not hidden (coordinated omission). autocannon's fixed
// rates are bursts instead: each connection sends its share of a second's requests back to
// back as the second starts (lib/httpClient.js), so 10 connections at 10 requests/s are 10
// concurrent requests once a second, then nothing. Node's fetch (undici) keeps connections
// alive and opens another when every one is busy.
import { setTimeout as sleep } from 'node:timers/promises'

export interface PacedRequest {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
}

export interface PacedResult {
  /** ms from sending to the whole answer, one per answered request */
  latencies: number[]
  /** answers per HTTP status */
  statuses: Map<number, number>
  /** requests without an answer (connection error or the timeout) */
  failed: number
  sent: number
}

export async function paced (base: string, rate: number, seconds: number, next: () => PacedRequest, timeoutMs = 10_000): Promise<PacedResult> {
  const out: PacedResult = { latencies: [], statuses: new Map(), failed: 0, sent: 0 }
  const total = Math.round(rate * seconds)
  const start = performance.now()
  const pending: Array<Promise<void>> = []
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / rate - performance.now()
    if (wait >= 1) await sleep(wait)
    pending.push(send(base, next(), timeoutMs, out))
  }
  await Promise.all(pending)
  return out
}

async function send (base: string, r: PacedRequest, timeoutMs: number, out: PacedResult): Promise<void> {
  const sent = performance.now()
  out.sent++
  try {
    const res = await fetch(base + r.path, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(timeoutMs) })
    await res.arrayBuffer()
    out.latencies.push(performance.now() - sent)
    out.statuses.set(res.status, (out.statuses.get(res.status) ?? 0) + 1)
  } catch {
    out.failed++
  }
}

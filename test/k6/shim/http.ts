// The part of k6's `k6/http` module the scripts under bench/k6 use: get, post, request and
// the Response (status, body, headers, timings.duration, json(selector)). Like k6's, calls
// block the VU: a worker thread fetches while this thread waits on an Atomics flag.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads'
import { record } from './state.ts'

let worker: Worker | null = null

export interface Params { headers?: Record<string, string>, tags?: Record<string, string>, timeout?: string }

export class Response {
  readonly status: number
  readonly body: string | null
  readonly headers: Record<string, string>
  readonly timings: { duration: number }
  readonly error: string
  readonly url: string

  constructor (url: string, r: { status: number, body: string | null, headers: Record<string, string>, duration: number, error: string }) {
    this.url = url
    this.status = r.status
    this.body = r.body
    this.headers = r.headers
    this.timings = { duration: r.duration }
    this.error = r.error
  }

  /** k6's json([selector]): the body parsed, or the value at a dotted path (gjson's simple form). */
  json (selector?: string): unknown {
    let v: unknown = JSON.parse(this.body ?? 'null')
    if (selector === undefined) return v
    for (const key of selector.split('.')) {
      if (v === null || typeof v !== 'object') return undefined
      v = (v as Record<string, unknown>)[key]
    }
    return v
  }
}

export function request (method: string, url: string, body?: string | null, params: Params = {}): Response {
  worker ??= new Worker(new URL('./fetch-worker.ts', import.meta.url))
  worker.unref()
  const { port1, port2 } = new MessageChannel()
  const flag = new Int32Array(new SharedArrayBuffer(4))
  worker.postMessage({ url, method, body: body ?? null, headers: params.headers ?? {}, port: port2, flag }, [port2])
  Atomics.wait(flag, 0, 0)
  const msg = receiveMessageOnPort(port1)
  port1.close()
  if (msg === undefined) throw new Error(`k6 shim: no answer for ${method} ${url}`)
  const res = new Response(url, msg.message)
  const tags = { method, status: String(res.status), ...(params.tags ?? {}) }
  record('http_reqs', 'counter', 1, tags)
  record('http_req_duration', 'trend', res.timings.duration, tags)
  // k6's default: a status outside 200-399 (or no answer) is a failed request
  record('http_req_failed', 'rate', res.status >= 200 && res.status < 400 ? 0 : 1, tags)
  return res
}

export function get (url: string, params?: Params): Response { return request('GET', url, null, params) }
export function post (url: string, body?: string | null, params?: Params): Response { return request('POST', url, body, params) }

export default { request, get, post }

// The part of k6's `k6/http` module the scripts under bench/k6 use: get, post, request, the
// Response (status, body, headers, timings.duration, json(selector)) and which answers count
// as failed (expectedStatuses, the responseCallback param, setResponseCallback). Like k6's,
// calls block the VU: a worker thread fetches while this thread waits on an Atomics flag.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads'
import { record } from './state.ts'

let worker: Worker | null = null

export interface Params { headers?: Record<string, string>, tags?: Record<string, string>, timeout?: string, responseCallback?: ExpectedStatuses | null }

const KNOWN_PARAMS = new Set(['headers', 'tags', 'timeout', 'responseCallback'])

/** What k6's expectedStatuses returns: the statuses of an expected answer (the others are failed requests). */
export class ExpectedStatuses {
  readonly ranges: ReadonlyArray<{ min: number, max: number }>
  constructor (ranges: Array<{ min: number, max: number }>) { this.ranges = ranges }
  expects (status: number): boolean { return this.ranges.some((r) => status >= r.min && status <= r.max) }
}

/** k6's expectedStatuses(statuses...): each an integer or `{ min, max }`. */
export function expectedStatuses (...statuses: Array<number | { min: number, max: number }>): ExpectedStatuses {
  if (statuses.length === 0) throw new TypeError('expectedStatuses: no status given')
  return new ExpectedStatuses(statuses.map((s) => {
    if (Number.isInteger(s)) return { min: s as number, max: s as number }
    const r = s as { min: unknown, max: unknown }
    if (r !== null && typeof r === 'object' && Number.isInteger(r.min) && Number.isInteger(r.max)) return { min: r.min as number, max: r.max as number }
    throw new TypeError(`expectedStatuses: ${JSON.stringify(s)} is neither a status nor { min, max }`)
  }))
}

// k6's default: a status outside 200-399 (or no answer) is a failed request
let responseCallback: ExpectedStatuses | null = expectedStatuses({ min: 200, max: 399 })

function callback (cb: unknown, where: string): ExpectedStatuses | null {
  if (cb === null || cb instanceof ExpectedStatuses) return cb
  throw new TypeError(`${where}: a responseCallback is what http.expectedStatuses returns, or null`)
}

/** k6's setResponseCallback: the default for requests without a responseCallback param (null: no http_req_failed). */
export function setResponseCallback (cb: ExpectedStatuses | null): void {
  responseCallback = callback(cb, 'setResponseCallback')
}

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
  for (const k of Object.keys(params)) if (!KNOWN_PARAMS.has(k)) throw new TypeError(`k6 shim: request param "${k}" is not one the shim knows`)
  const expected = params.responseCallback === undefined ? responseCallback : callback(params.responseCallback, `${method} ${url}`)
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
  const ok = expected?.expects(res.status)
  const tags = { method, status: String(res.status), ...(ok === undefined ? {} : { expected_response: String(ok) }), ...(params.tags ?? {}) }
  record('http_reqs', 'counter', 1, tags)
  record('http_req_duration', 'trend', res.timings.duration, tags)
  if (ok !== undefined) record('http_req_failed', 'rate', ok ? 0 : 1, tags)
  return res
}

export function get (url: string, params?: Params): Response { return request('GET', url, null, params) }
export function post (url: string, body?: string | null, params?: Params): Response { return request('POST', url, body, params) }

export default { request, get, post, expectedStatuses, setResponseCallback }

/* global __ENV */
// k6 load test of the read endpoints: worker status, an entity's history and its state at a
// time, under ramping virtual users, with the threshold p95 < 100 ms. Setup posts the entities
// it reads (POST /events) and waits until they are stored. Run against a deployment:
//   k6 run -e BASE_URL=http://sluice:8080 [-e TOKEN=...] bench/k6/read.js
// The worker limits each token (or address) to SLUICE_API_RATE_LIMIT requests a minute (600 by
// default): set it above what the run sends, or requests past it answer 429.
import http from 'k6/http'
import { check, sleep } from 'k6'

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080'
const ENTITIES = Number(__ENV.ENTITIES || 20)
const EVENTS = Number(__ENV.EVENTS_PER_ENTITY || 20)
const VUS = Number(__ENV.VUS || 50)
const AUTH = __ENV.TOKEN ? { authorization: `Bearer ${__ENV.TOKEN}` } : {}
// an entity's history is 404 until its first event is stored: not a failed request while waiting for it
const STORED_YET = http.expectedStatuses(200, 404)

export const options = {
  stages: [
    { duration: __ENV.RAMP || '20s', target: VUS },
    { duration: __ENV.HOLD || '1m', target: VUS },
    { duration: '10s', target: 0 }
  ],
  thresholds: {
    http_req_duration: [`p(95)<${__ENV.P95_MS || 100}`],
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999']
  },
  setupTimeout: '120s'
}

export function setup () {
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
  const start = Date.parse('2025-02-25T10:00:00Z')
  const lines = []
  for (let e = 0; e < ENTITIES; e++) {
    for (let v = 1; v <= EVENTS; v++) {
      lines.push(JSON.stringify({
        eventId: `${run}-${e}-${v}`,
        eventType: v === 1 ? 'TASK_CREATED' : 'TASK_UPDATED',
        timestamp: new Date(start + v * 60000).toISOString(),
        aggregateType: 'K6Read',
        aggregateId: `${run}-${e}`,
        version: v,
        payload: { entity: 'K6Read', entityId: `${run}-${e}`, user: 'k6', workspace: 'k6', changes: { step: v } }
      }))
    }
  }
  const res = http.post(`${BASE}/events`, lines.join('\n'), { headers: { 'content-type': 'application/x-ndjson', ...AUTH } })
  if (res.status !== 202 || res.json('accepted') !== lines.length) throw new Error(`setup: POST /events answered ${res.status}: ${String(res.body).slice(0, 300)}`)
  for (let wait = 0; wait < 120; wait++) {
    const last = http.get(`${BASE}/entities/K6Read/${run}-${ENTITIES - 1}/history?limit=1`, { headers: AUTH, tags: { name: 'setup' }, responseCallback: STORED_YET })
    if (last.status === 200 && last.json('total') === EVENTS) return { run, start }
    sleep(1)
  }
  throw new Error('setup: the seeded events were not stored within 120 s')
}

export default function (data) {
  const e = Math.floor(Math.random() * ENTITIES)
  const base = `${BASE}/entities/K6Read/${data.run}-${e}`
  const status = http.get(`${BASE}/admin/status`, { headers: AUTH, tags: { name: 'status' } })
  const history = http.get(`${base}/history?limit=50`, { headers: AUTH, tags: { name: 'history' } })
  const v = 1 + Math.floor(Math.random() * EVENTS)
  const at = new Date(data.start + v * 60000).toISOString()
  const state = http.get(`${base}/state?at=${encodeURIComponent(at)}`, { headers: AUTH, tags: { name: 'state-at' } })
  check(status, { 'status 200': (r) => r.status === 200 })
  check(history, { 'history 200 with every event': (r) => r.status === 200 && r.json('total') === EVENTS })
  check(state, { 'state at a time 200': (r) => r.status === 200 && r.json('state.step') === v })
  sleep(Number(__ENV.SLEEP || 0.1))
}

/* global __ENV, __VU */
// k6 load test of POST /events: ramping virtual users post batches of events, with the seed's
// thresholds (p95 < 200 ms, < 0.1% errors), then checks that every event the worker accepted
// is stored exactly once. Run against a deployment:
//   k6 run -e BASE_URL=http://sluice:8080 [-e TOKEN=...] bench/k6/ingest.js
// The worker limits each token (or address) to SLUICE_API_RATE_LIMIT requests a minute (600 by
// default): set it above what the run sends, or requests past it answer 429.
// Each virtual user writes one entity (K6Load/<run>-<vu>), so the end check reads its history.
import http from 'k6/http'
import { check, sleep } from 'k6'

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080'
const BATCH = Number(__ENV.BATCH || 20)
const VUS = Number(__ENV.VUS || 100)
const HEADERS = { 'content-type': 'application/x-ndjson', ...(__ENV.TOKEN ? { authorization: `Bearer ${__ENV.TOKEN}` } : {}) }
// an entity's history is 404 until its first event is stored: not a failed request while the end check waits
const STORED_YET = http.expectedStatuses(200, 404)

export const options = {
  stages: [
    { duration: __ENV.RAMP || '30s', target: VUS },
    { duration: __ENV.HOLD || '1m', target: VUS },
    { duration: '10s', target: 0 }
  ],
  thresholds: {
    http_req_duration: [`p(95)<${__ENV.P95_MS || 200}`],
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999']
  },
  setupTimeout: '60s',
  teardownTimeout: '300s'
}

function acceptedSoFar () {
  const res = http.get(`${BASE}/metrics`, { headers: HEADERS })
  const m = /^sluice_ingest_events_total\{result="accepted"\} (\d+)/m.exec(res.body || '')
  return m === null ? 0 : Number(m[1])
}

export function setup () {
  return { run: `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`, acceptedBefore: acceptedSoFar() }
}

let version = 0

export default function (data) {
  const entityId = `${data.run}-${__VU}`
  const lines = []
  for (let i = 0; i < BATCH; i++) {
    version++
    lines.push(JSON.stringify({
      eventId: `${entityId}-${version}`,
      eventType: version === 1 ? 'TASK_CREATED' : 'TASK_UPDATED',
      timestamp: new Date().toISOString(),
      aggregateType: 'K6Load',
      aggregateId: entityId,
      version,
      payload: { entity: 'K6Load', entityId, user: `vu_${__VU}`, workspace: 'k6', changes: { step: version, note: 'load test' } },
      metadata: { source: 'k6', correlationId: `${data.run}` }
    }))
  }
  const res = http.post(`${BASE}/events`, lines.join('\n'), { headers: HEADERS })
  check(res, {
    'status is 202': (r) => r.status === 202,
    'every event accepted': (r) => r.status === 202 && r.json('accepted') === BATCH
  })
  sleep(Number(__ENV.SLEEP || 0.1))
}

/** Every accepted event id stored exactly once: the run's entities' histories, against the worker's accepted count. */
export function teardown (data) {
  const accepted = acceptedSoFar() - data.acceptedBefore
  let stored = 0
  let duplicates = 0
  for (let wait = 0; wait < 120; wait++) {
    stored = 0
    duplicates = 0
    for (let vu = 1; vu <= VUS; vu++) {
      const ids = {}
      let after = 0
      for (;;) {
        const res = http.get(`${BASE}/entities/K6Load/${data.run}-${vu}/history?limit=1000&after=${after}`, { headers: HEADERS, tags: { name: 'end-check' }, responseCallback: STORED_YET })
        if (res.status !== 200) break
        const page = res.json()
        for (const e of page.events) {
          if (ids[e.eventId]) duplicates++
          ids[e.eventId] = true
          stored++
        }
        if (page.next === null) break
        after = page.next
      }
    }
    if (stored >= accepted) break
    sleep(1)
  }
  check({ accepted, stored, duplicates }, {
    'every accepted event stored': (s) => s.stored === s.accepted,
    'no event stored twice': (s) => s.duplicates === 0
  })
  if (stored !== accepted || duplicates !== 0) throw new Error(`end check: ${accepted} events accepted, ${stored} stored, ${duplicates} stored twice`)
}

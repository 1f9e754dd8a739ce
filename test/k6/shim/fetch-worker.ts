// The worker thread of the shim's synchronous HTTP: fetches, then wakes the blocked VU.
import { parentPort } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'

interface Job { url: string, method: string, body: string | null, headers: Record<string, string>, port: MessagePort, flag: Int32Array }

parentPort?.on('message', (job: Job) => {
  const t0 = performance.now()
  fetch(job.url, { method: job.method, body: job.body ?? undefined, headers: job.headers })
    .then(async (res) => {
      const body = await res.text()
      const headers: Record<string, string> = {}
      res.headers.forEach((v, k) => { headers[k] = v })
      job.port.postMessage({ status: res.status, body, headers, duration: performance.now() - t0, error: '' })
    })
    .catch((err: Error) => { job.port.postMessage({ status: 0, body: null, headers: {}, duration: performance.now() - t0, error: err.message }) })
    .finally(() => {
      Atomics.store(job.flag, 0, 1)
      Atomics.notify(job.flag, 0)
    })
})

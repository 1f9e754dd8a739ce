import { Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import type { Pool } from 'pg'
import { deadLetterCounts } from './dlq-store.ts'

/** sluice_dead_letters{status,code}: counted in sluice_dlq at scrape time (the group's, not this worker's). */
export function deadLetterGauges (registry: Registry, pool: Pool): Gauge<'status' | 'code'> {
  return new Gauge({
    name: 'sluice_dead_letters',
    help: 'Dead letters in sluice_dlq by status (dead, redriving, redriven, discarded) and error code',
    labelNames: ['status', 'code'],
    registers: [registry],
    async collect () {
      let rows
      try {
        rows = await deadLetterCounts(pool)
      } catch {
        return // the database is down: the last values stay, /metrics still answers
      }
      this.reset()
      for (const r of rows) this.set({ status: r.status, code: r.code }, r.n)
    }
  })
}

// TICKET_OPENED events and a schema whose strictness decides which are poison: the control
// plane's tests fix the schema and watch dead letters come back.
import { randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { RdkafkaProducer } from '../../src/kafka/producer.ts'
import { brokers, uniqueName } from './worker-harness.ts'

/** A schemas directory whose TICKET_OPENED allows priorities up to `maxPriority`. */
export function ticketSchemas (maxPriority: number, dir = `.sluice/test-schemas/${uniqueName('schemas')}`): string {
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}/TICKET_OPENED.json`, JSON.stringify({
    type: 'object',
    required: ['payload'],
    properties: { payload: { type: 'object', required: ['priority'], properties: { priority: { type: 'integer', maximum: maxPriority } } } }
  }))
  return dir
}

export interface Ticket { eventId: string, key: string, value: string, partition: number }

export function tickets (n: number, priority: number, partitions: number, from = 0): Ticket[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `t-${from + i}-${randomUUID().slice(0, 8)}`
    const eventId = randomUUID()
    const value = JSON.stringify({
      eventId,
      eventType: 'TICKET_OPENED',
      timestamp: new Date().toISOString(),
      aggregateType: 'Ticket',
      aggregateId: id,
      version: 1,
      payload: { entity: 'Ticket', entityId: id, user: 'op', priority }
    })
    return { eventId, key: id, value, partition: (from + i) % partitions }
  })
}

export async function produceTickets (topic: string, list: readonly Ticket[], extra: Array<{ key: string, value: string, partition: number }> = []): Promise<void> {
  const p = new RdkafkaProducer({ brokers, clientId: uniqueName('tickets') })
  await p.connect()
  try {
    await p.produceBatch([...list, ...extra].map((x) => ({ topic, key: x.key, value: x.value, partition: x.partition })))
  } finally {
    await p.close()
  }
}

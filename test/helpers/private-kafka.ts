import { resolve } from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import { deleteTopics, ensureTopics } from '../../src/kafka/admin.ts'
import { quoteIdent } from '../../src/db/quote-ident.ts'
import { dropSchema } from './pg-schema.ts'
import { stackScript } from './stack-script.ts'
import { freePort, pgUrl, uniqueName } from './worker-harness.ts'
import type { Fixture } from './worker-harness.ts'

export interface PrivateKafka {
  readonly brokers: string
  start (): Promise<void>
  stop (): Promise<void>
}

/** A Kafka of the test's own (the project's stack script, other ports and directory), purged at the end. */
export async function privateKafka (t: Test): Promise<PrivateKafka> {
  const port = await freePort()
  const controller = await freePort()
  const dir = resolve('.sluice', uniqueName('test-kafka'))
  const env = { SLUICE_KAFKA_PORT: String(port), SLUICE_KAFKA_CONTROLLER_PORT: String(controller), SLUICE_KAFKA_HEAP: '512m' }
  const k: PrivateKafka = {
    brokers: `127.0.0.1:${port}`,
    start: async () => { await stackScript(dir, ['up', 'kafka'], env) },
    stop: async () => { await stackScript(dir, ['down', 'kafka'], env) }
  }
  t.teardown(async () => { await stackScript(dir, ['down', '--purge', 'kafka'], env) })
  await k.start()
  return k
}

/** An rdkafka fixture on a private Kafka: a topic of 3 partitions, a group and a schema of its own, dropped when the test ends. */
export async function privateFixture (t: Test, kafka: PrivateKafka, label: string): Promise<Fixture> {
  const topic = uniqueName(label)
  const schema = uniqueName(label).toLowerCase()
  await ensureTopics(kafka.brokers, [{ name: topic, partitions: 3 }])
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2, options: `-c search_path=${quoteIdent(schema)}` })
  pool.on('error', () => {})
  t.teardown(async () => {
    await pool.end().catch(() => {})
    await dropSchema(pgUrl, schema).catch(() => {})
    await deleteTopics(kafka.brokers, [topic, topic + '.dlq']).catch(() => {})
  })
  return { source: 'rdkafka', topic, dlqTopic: topic + '.dlq', group: uniqueName(label + '_g'), schema, pool, pgUrl }
}

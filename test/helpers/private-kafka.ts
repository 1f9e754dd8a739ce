import { resolve } from 'node:path'
import type { Test } from 'tap'
import { stackScript } from './stack-script.ts'
import { freePort, uniqueName } from './worker-harness.ts'

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

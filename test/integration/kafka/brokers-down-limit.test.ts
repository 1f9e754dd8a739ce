import { test } from 'tap'
import { privateFixture, privateKafka } from '../../helpers/private-kafka.ts'
import { startWorker } from '../../helpers/worker-harness.ts'
import type { SourceKind } from '../../helpers/worker-harness.ts'

// Kafka unreachable for SLUICE_KAFKA_DOWN_TIMEOUT_MS stops the worker (exit 1,
// SLUICE_ERR_KAFKA_TRANSIENT) for its supervisor to restart, whichever way the source notices:
// rdkafka's all-brokers-down timer (its error events carry no code: the text is matched),
// rdkafka's replacement of a consumer without a group coordinator that cannot connect again,
// @platformatic/kafka's failing fetches and heartbeats.
const cases: Array<{ name: string, source: SourceKind, env: Record<string, string>, says: RegExp }> = [
  // the watch off: only the all-brokers-down timer can stop this one
  { name: 'rdkafka, all brokers down', source: 'rdkafka', env: { SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS: '0' }, says: /all Kafka brokers unreachable for \d+ s/ },
  { name: 'rdkafka, its replaced consumer', source: 'rdkafka', env: { SLUICE_KAFKA_COORDINATOR_TIMEOUT_MS: '2000' }, says: /no Kafka broker reachable for \d+ s/ },
  { name: '@platformatic/kafka', source: 'platformatic', env: {}, says: /kafka (fetches|group heartbeats) failing for \d+ s/ }
]

for (const c of cases) {
  test(`${c.name}: unreachable for the limit, the worker stops`, { timeout: 300_000 }, async (t) => {
    const kafka = await privateKafka(t)
    const fx = { ...await privateFixture(t, kafka, 'down_limit'), source: c.source }
    const w = await startWorker(t, fx, { SLUICE_KAFKA_BROKERS: kafka.brokers, SLUICE_KAFKA_DOWN_TIMEOUT_MS: '5000', ...c.env })
    await kafka.stop()
    const stopped = Date.now()
    // the limit, a metadata probe or a connect attempt (15 s) after it, and the shutdown
    const code = await Promise.race([w.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 150_000).unref())])
    const after = Date.now() - stopped
    t.equal(code, 1, `exit 1 (${after} ms after the broker stopped)`)
    t.ok(after >= 5000, 'not before the limit')
    const failed = w.log().split('\n').find((l) => l.includes('"kafka source failed"')) ?? ''
    t.match(failed, /"code":"SLUICE_ERR_KAFKA_TRANSIENT"/, 'the failure is logged with its code')
    t.match(failed, c.says, 'and says what was unreachable for how long')
  })
}

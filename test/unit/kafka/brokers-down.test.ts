import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { BrokersDownTimer } from '../../../src/kafka/brokers-down.ts'
import type { SluiceError } from '../../../src/errors.ts'

// positive outcomes are awaited (a probe, a failure), not slept for; the cancellations are
// checked over several times the limit. The timer is unref'd (it must not hold a stopping
// worker), so each test keeps the process alive while it waits.
function keepAlive (t: { teardown: (fn: () => void) => void }): void {
  const handle = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(handle))
}

test('down: after the limit, a failed probe fails the source; a good one does not', async (t) => {
  keepAlive(t)
  const failed: SluiceError[] = []
  let answer: { message: string } | null = { message: 'Local: Broker transport failure' }
  let probes = 0
  let probed: () => void = () => {}
  let failedNow: () => void = () => {}
  const timer = new BrokersDownTimer(50, (done) => { probes++; setImmediate(() => { done(answer); probed() }); return true }, (err) => { failed.push(err); failedNow() })
  const failure = new Promise<void>((resolve) => { failedNow = resolve })
  timer.down()
  timer.down() // one timer at a time
  await failure
  t.equal(probes, 1, 'probed once')
  t.equal(failed.length, 1, 'failed')
  t.equal(failed[0]?.code, 'SLUICE_ERR_KAFKA_TRANSIENT')
  t.match(failed[0]?.message, /all Kafka brokers unreachable for \d+ s: Local: Broker transport failure/)
  answer = null
  const second = new Promise<void>((resolve) => { probed = resolve })
  timer.down()
  await second
  t.equal(probes, 2, 'armed again after the answer')
  t.equal(failed.length, 1, 'brokers answering: no failure')
})

test('up cancels; no consumer to probe lets it be armed again', async (t) => {
  keepAlive(t)
  let probes = 0
  let consumer = false
  let probed: () => void = () => {}
  const next = (): Promise<void> => new Promise<void>((resolve) => { probed = resolve })
  const timer = new BrokersDownTimer(30, (done) => { probes++; if (consumer) done(null); probed(); return consumer }, () => t.fail('not expected'))
  timer.down()
  timer.up()
  await sleep(150)
  t.equal(probes, 0, 'cancelled before the limit')
  let p = next()
  timer.down()
  await p
  t.equal(probes, 1, 'probed with no consumer')
  consumer = true
  p = next()
  timer.down()
  await p
  t.equal(probes, 2, 'armed again')
  const never = new BrokersDownTimer(0, () => { probes++; return true }, () => t.fail('not expected'))
  never.down()
  await sleep(100)
  t.equal(probes, 2, 'limit 0: never')
})

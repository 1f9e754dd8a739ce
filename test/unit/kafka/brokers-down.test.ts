import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { BrokersDownTimer } from '../../../src/kafka/brokers-down.ts'
import type { SluiceError } from '../../../src/errors.ts'

test('down: after the limit, a failed probe fails the source; a good one does not', async (t) => {
  const failed: SluiceError[] = []
  let answer: { message: string } | null = { message: 'Local: Broker transport failure' }
  let probes = 0
  const timer = new BrokersDownTimer(50, (done) => { probes++; setImmediate(() => done(answer)); return true }, (err) => failed.push(err))
  timer.down()
  timer.down() // one timer at a time
  await sleep(150)
  t.equal(probes, 1, 'probed once')
  t.equal(failed.length, 1, 'failed')
  t.equal(failed[0]?.code, 'SLUICE_ERR_KAFKA_TRANSIENT')
  t.match(failed[0]?.message, /all Kafka brokers unreachable for \d+ s: Local: Broker transport failure/)
  answer = null
  timer.down()
  await sleep(150)
  t.equal(probes, 2, 'armed again after the answer')
  t.equal(failed.length, 1, 'brokers answering: no failure')
})

test('up cancels; no consumer to probe lets it be armed again', async (t) => {
  let probes = 0
  let consumer = false
  const timer = new BrokersDownTimer(30, (done) => { probes++; if (consumer) done(null); return consumer }, () => t.fail('not expected'))
  timer.down()
  timer.up()
  await sleep(90)
  t.equal(probes, 0, 'cancelled before the limit')
  timer.down()
  await sleep(90)
  t.equal(probes, 1, 'probed with no consumer')
  consumer = true
  timer.down()
  await sleep(90)
  t.equal(probes, 2, 'armed again')
  const never = new BrokersDownTimer(0, () => { probes++; return true }, () => t.fail('not expected'))
  never.down()
  await sleep(30)
  t.equal(probes, 2, 'limit 0: never')
})

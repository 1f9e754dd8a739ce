import { createRequire } from 'node:module'
import Kafka from 'node-rdkafka'
import { test } from 'tap'
import { isAllBrokersDown } from '../../../src/kafka/rdkafka-client.ts'

// node-rdkafka's event_cb hands an error event over as a plain Error with librdkafka's text
// (callbacks.cc), and lib/client.js wraps it with LibrdKafkaError.create: the code is lost
const LibrdKafkaError = createRequire(import.meta.url)('node-rdkafka/lib/error.js') as { create: (e: Error) => { code: number, message: string } }
const fromEvent = (text: string): { code: number, message: string } => LibrdKafkaError.create(new Error(text))

test('isAllBrokersDown: by code, and by text where node-rdkafka dropped the code', async (t) => {
  const e = fromEvent('Local: All broker connections are down')
  t.equal(e.code, -1, 'node-rdkafka gives an error event no code')
  t.ok(isAllBrokersDown(e), 'the event as the source receives it')
  t.ok(isAllBrokersDown({ code: Kafka.CODES.ERRORS.ERR__ALL_BROKERS_DOWN, message: '' }), 'a coded one')
  t.notOk(isAllBrokersDown(fromEvent('Local: Broker transport failure')), 'one broker connection')
  t.notOk(isAllBrokersDown({ code: -1 }), 'no text')
})

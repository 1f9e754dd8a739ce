import { test } from 'tap'
import { deleteTopics, ensureTopics } from '../../../src/kafka/admin.ts'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import { SluiceError } from '../../../src/errors.ts'

// Topic administration against the real Kafka of scripts/stack.sh: a worker whose topics exist
// checks them through its connected producer and makes no Admin client.
const BROKERS = process.env.SLUICE_KAFKA_BROKERS
if (BROKERS === undefined || BROKERS === '') {
  throw new Error('SLUICE_KAFKA_BROKERS is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const brokers = BROKERS
// nothing listens there: an Admin client made for it fails
const NOWHERE = '127.0.0.1:9'

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

test('ensureTopics asks the connected producer first, and the Admin client only for what is missing', async (t) => {
  const ready = uniqueName('admin_ready')
  const missing = uniqueName('admin_missing')
  const created = uniqueName('admin_created')
  t.teardown(async () => { await deleteTopics(brokers, [ready, missing, created]) })
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('admin') })
  await producer.connect()
  t.teardown(async () => { await producer.close() })
  await ensureTopics(brokers, [{ name: ready, partitions: 2 }])

  t.same([...await producer.readyTopics([ready, missing])], [ready], 'the existing topic is ready, the missing one left out')
  t.same([...await producer.readyTopics([missing])], [], 'and reading the metadata did not create it')

  await ensureTopics(NOWHERE, [{ name: ready, partitions: 2 }], { known: producer, timeoutMs: 3000 })
  t.pass('every topic ready: no Admin client (its brokers are unreachable)')
  try {
    await ensureTopics(NOWHERE, [{ name: ready, partitions: 2 }], { timeoutMs: 3000 })
    t.fail('without the producer, the Admin client is made and fails')
  } catch (err) {
    t.ok(err instanceof SluiceError, 'without the producer, the Admin client is made and fails')
  }

  await ensureTopics(brokers, [{ name: ready, partitions: 2 }, { name: created, partitions: 3 }], { known: producer })
  t.same([...await producer.readyTopics([ready, created])].sort(), [ready, created].sort(), 'a missing topic is created by the Admin client')
})

test('with the connected client, a missing topic is created natively; a request the broker refuses is fatal', async (t) => {
  const made = uniqueName('admin_native')
  const refused = uniqueName('admin_refused')
  t.teardown(async () => { await deleteTopics(brokers, [made, refused]) })
  const producer = new RdkafkaProducer({ brokers, clientId: uniqueName('admin') })
  await producer.connect()
  t.teardown(async () => { await producer.close() })

  await ensureTopics(brokers, [{ name: made, partitions: 3, config: { 'retention.ms': '3600000' } }], { known: producer })
  t.same([...await producer.readyTopics([made])], [made], 'created and ready (every partition has a leader) when ensureTopics returns')
  await ensureTopics(brokers, [{ name: made, partitions: 5 }], { known: producer })
  t.pass('an existing topic is left as it is')

  // the local stack is one broker: three replicas cannot be placed
  try {
    await ensureTopics(brokers, [{ name: refused, partitions: 1, replicationFactor: 3 }], { known: producer, timeoutMs: 10_000 })
    t.fail('a replication factor the cluster cannot give is refused')
  } catch (err) {
    t.match(err, { code: 'SLUICE_ERR_KAFKA_FATAL', message: new RegExp(`creating Kafka topic ${refused}: .*\\(code 38\\)`) }, 'refused for good: fatal, with the broker\'s code')
  }
  t.same([...await producer.readyTopics([refused])], [], 'and nothing was created')
})

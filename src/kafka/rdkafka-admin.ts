import Kafka from 'node-rdkafka'
import type { LibrdKafkaError } from 'node-rdkafka'
import { SluiceError, errorMessage } from '../errors.ts'
import { brokerList } from './brokers.ts'

/** What createTopicsNative makes: a topic's name, partitions, replicas and settings. */
export interface NativeTopicSpec {
  name: string
  partitions: number
  replicationFactor: number
  config: Record<string, string>
}

const E = Kafka.CODES.ERRORS

/**
 * Broker answers that no retry changes (the request itself is refused): a bad name, partition
 * count, replication factor or setting, a policy, missing rights, an unsupported request.
 */
const REFUSED = new Set<number>([
  E.ERR_TOPIC_EXCEPTION, E.ERR_TOPIC_AUTHORIZATION_FAILED, E.ERR_CLUSTER_AUTHORIZATION_FAILED,
  E.ERR_INVALID_PARTITIONS, E.ERR_INVALID_REPLICATION_FACTOR, E.ERR_INVALID_REPLICA_ASSIGNMENT,
  E.ERR_INVALID_CONFIG, E.ERR_POLICY_VIOLATION, E.ERR_UNSUPPORTED_VERSION, E.ERR_INVALID_REQUEST
])

/** A refused request is fatal (SLUICE_ERR_KAFKA_FATAL); anything else (no broker, a timeout, no controller yet) transient. */
export function createTopicError (name: string, err: LibrdKafkaError): SluiceError {
  const code = REFUSED.has(err.code) ? 'SLUICE_ERR_KAFKA_FATAL' : 'SLUICE_ERR_KAFKA_TRANSIENT'
  return new SluiceError(code, `creating Kafka topic ${name}: ${errorMessage(err)} (code ${err.code})`, { cause: err })
}

/**
 * Creates topics with node-rdkafka's AdminClient: native, so nothing more is loaded or
 * compiled (@platformatic/kafka's Admin costs a worker ~0.3 s of CPU to import, on the first
 * start against a new topic). A topic that exists already (made meanwhile by another worker)
 * is no error. Whether the metadata shows them yet is the caller's to wait for: this client
 * cannot read metadata.
 */
export async function createTopicsNative (brokers: string | readonly string[], topics: readonly NativeTopicSpec[], opts: { clientId: string, timeoutMs: number }): Promise<void> {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': brokerList(brokers), 'client.id': opts.clientId })
  try {
    for (const t of topics) {
      await new Promise<void>((resolve, reject) => {
        admin.createTopic({ topic: t.name, num_partitions: t.partitions, replication_factor: t.replicationFactor, config: t.config }, opts.timeoutMs, (err) => {
          if (err === undefined || err === null || err.code === E.ERR_TOPIC_ALREADY_EXISTS) resolve()
          else reject(createTopicError(t.name, err))
        })
      })
    }
  } finally {
    admin.disconnect()
  }
}

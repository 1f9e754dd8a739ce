import type { Logger } from 'pino'
import type { Config } from '../config/config.ts'
import { PlatformaticSource } from './platformatic-source.ts'
import { RdkafkaSource } from './rdkafka-source.ts'
import type { Source } from './types.ts'

/** The configured source: node-rdkafka (default) or @platformatic/kafka. */
export function createSource (config: Readonly<Config>, logger: Logger): Source {
  const common = {
    brokers: config.kafka.brokers,
    groupId: config.kafka.group,
    clientId: config.kafka.clientId,
    topics: [...config.pipelines.keys()],
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    heartbeatIntervalMs: config.kafka.heartbeatIntervalMs,
    logger: logger.child({ component: 'source', source: config.kafka.source })
  }
  return config.kafka.source === 'platformatic'
    ? new PlatformaticSource(common)
    : new RdkafkaSource({ ...common, fetchBatch: config.kafka.fetchBatch })
}

import type { Logger } from 'pino'
import type { Config } from '../config/config.ts'
import { RdkafkaSource } from './rdkafka-source.ts'
import type { Source } from './types.ts'

/** The configured source: node-rdkafka (default) or @platformatic/kafka (imported only then: 0.7-0.8 s). */
export async function createSource (config: Readonly<Config>, logger: Logger): Promise<Source> {
  const common = {
    brokers: config.kafka.brokers,
    groupId: config.kafka.group,
    clientId: config.kafka.clientId,
    topics: [...config.pipelines.keys()],
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    heartbeatIntervalMs: config.kafka.heartbeatIntervalMs,
    // SLUICE_KAFKA_DOWN_TIMEOUT_MS: Kafka unreachable this long stops the worker (0: never)
    brokerDownTimeoutMs: config.kafka.downTimeoutMs,
    // static group membership (SLUICE_KAFKA_INSTANCE_ID): a restarted worker takes its partitions back
    ...(config.kafka.instanceId !== null ? { groupInstanceId: config.kafka.instanceId } : {}),
    logger: logger.child({ component: 'source', source: config.kafka.source })
  }
  // SLUICE_KAFKA_PREFETCH_BYTES: what a source may fetch ahead of the pipeline (unset: its defaults)
  const prefetch = config.kafka.prefetchBytes
  if (config.kafka.source === 'platformatic') {
    const { PlatformaticSource } = await import('./platformatic-source.ts')
    return new PlatformaticSource({ ...common, ...(prefetch !== null ? { maxBytes: prefetch, maxBytesPerPartition: Math.min(prefetch, 1_048_576) } : {}) })
  }
  return new RdkafkaSource({
    ...common,
    fetchBatch: config.kafka.fetchBatch,
    ...(config.kafka.debug !== null ? { debug: config.kafka.debug } : {}),
    coordinatorTimeoutMs: config.kafka.coordinatorTimeoutMs,
    // two consume calls' messages can be in hand beside the in-flight ones (the next is fetched
    // while one is handled): a quarter of the in-flight budget each keeps the overshoot bounded
    fetchBatchBytes: Math.min(config.kafka.fetchBatchBytes, Math.max(65_536, Math.floor(config.inflight.maxBytes / 4))),
    ...(prefetch !== null ? { config: { 'queued.max.messages.kbytes': Math.ceil(prefetch / 1024), 'fetch.max.bytes': prefetch, 'max.partition.fetch.bytes': Math.min(prefetch, 1_048_576) } } : {})
  })
}

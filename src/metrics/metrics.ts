import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * Every decision the worker takes, as Prometheus metrics, in a registry of its own (so two
 * workers in one process, as in tests, do not collide). Labels are bounded: pipeline, route,
 * error code, topic and partition.
 */
export class SluiceMetrics {
  readonly registry = new Registry()
  readonly consumed: Counter<'pipeline' | 'topic'>
  readonly stored: Counter<'pipeline' | 'route'>
  readonly duplicates: Counter<'pipeline' | 'route' | 'kind'>
  readonly deadLettered: Counter<'pipeline' | 'code'>
  readonly retries: Counter<'operation' | 'code'>
  readonly batchRows: Histogram
  readonly batchBytes: Histogram
  readonly copyDuration: Histogram
  readonly inflightMessages: Gauge
  readonly inflightBytes: Gauge
  readonly pausedPartitions: Gauge<'reason'>
  readonly lag: Gauge<'topic' | 'partition'>
  readonly assignedPartitions: Gauge
  readonly snapshots: Counter<'kind' | 'outcome'>
  readonly snapshotBytes: Counter<'kind'>

  constructor () {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 })
    this.consumed = new Counter({ name: 'sluice_messages_consumed_total', help: 'Messages consumed from Kafka', labelNames: ['pipeline', 'topic'], registers })
    this.stored = new Counter({ name: 'sluice_events_stored_total', help: 'Events durably stored', labelNames: ['pipeline', 'route'], registers })
    this.duplicates = new Counter({ name: 'sluice_duplicates_dropped_total', help: 'Events dropped because their event id was already stored, by kind (identical, restamped, differing, redelivered, unverified)', labelNames: ['pipeline', 'route', 'kind'], registers })
    this.deadLettered = new Counter({ name: 'sluice_dead_lettered_total', help: 'Messages sent to the dead-letter queue', labelNames: ['pipeline', 'code'], registers })
    this.retries = new Counter({ name: 'sluice_retries_total', help: 'Retries of transient failures', labelNames: ['operation', 'code'], registers })
    this.batchRows = new Histogram({ name: 'sluice_batch_rows', help: 'Messages per flushed batch', buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000], registers })
    this.batchBytes = new Histogram({ name: 'sluice_batch_bytes', help: 'Message bytes per flushed batch', buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 2e6, 4e6, 8e6, 16e6], registers })
    this.copyDuration = new Histogram({ name: 'sluice_copy_duration_seconds', help: 'Duration of a batch transaction (COPY, insert, dead letters, offsets)', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers })
    this.inflightMessages = new Gauge({ name: 'sluice_inflight_messages', help: 'Messages consumed and not yet durable', registers })
    this.inflightBytes = new Gauge({ name: 'sluice_inflight_bytes', help: 'Bytes of messages consumed and not yet durable', registers })
    this.pausedPartitions = new Gauge({ name: 'sluice_paused_partitions', help: 'Assigned partitions currently paused', labelNames: ['reason'], registers })
    this.lag = new Gauge({ name: 'sluice_partition_lag', help: 'High watermark minus the stored next offset', labelNames: ['topic', 'partition'], registers })
    this.assignedPartitions = new Gauge({ name: 'sluice_assigned_partitions', help: 'Partitions assigned to this worker', registers })
    this.snapshots = new Counter({ name: 'sluice_snapshots_total', help: 'Snapshots stored in S3 (outcome uploaded) or given up (failed)', labelNames: ['kind', 'outcome'], registers })
    this.snapshotBytes = new Counter({ name: 'sluice_snapshot_bytes_total', help: 'Bytes of snapshot objects stored in S3', labelNames: ['kind'], registers })
  }
}

import type { KafkaMessage } from '../kafka/types.ts'
import type { Sink, SinkBuffer } from '../sinks/sink.ts'
import type { DlqEntry } from '../sinks/dlq/dlq-entry.ts'
import type { PartitionLoad } from './inflight-budget.ts'
import { releasable } from './release.ts'

/** The records of one route of one partition, waiting for the next flush. */
export interface RouteBuffer {
  readonly pipeline: string
  readonly route: string
  readonly sink: Sink<unknown>
  readonly buffer: SinkBuffer<unknown>
}

/** One partition's work between two flushes: routed records, dead letters, next offset. */
export class PartitionPending {
  readonly topic: string
  readonly partition: number
  /** the partition's share of the in-flight budget, released when this work is durable or dropped */
  readonly load: PartitionLoad
  readonly routes = new Map<string, RouteBuffer>()
  readonly dlq: DlqEntry[] = []
  nextOffset = -1
  messages = 0
  bytes = 0
  /** large values freed once the batch is durable (release.ts) */
  readonly large: Buffer[] = []
  /** the sink work its lane waits for before sealing it (lane.ts), once seen */
  awaited: Promise<void> | null = null

  constructor (topic: string, partition: number, load: PartitionLoad) {
    this.topic = topic
    this.partition = partition
    this.load = load
  }

  add (pipeline: string, route: string, sink: Sink<unknown>, record: unknown, origin: KafkaMessage): void {
    let rb = this.routes.get(route)
    if (rb === undefined) { // a partition belongs to one pipeline, so its route names are unique
      rb = { pipeline, route, sink, buffer: sink.createBuffer() }
      this.routes.set(route, rb)
    }
    rb.buffer.add(record, origin)
  }

  /** Sink work started by its records that is still running (SinkBuffer.waiting), or null. */
  waiting (): Promise<void> | null {
    for (const rb of this.routes.values()) {
      const w = rb.buffer.waiting?.() ?? null
      if (w !== null) return w
    }
    return null
  }

  consumed (origin: KafkaMessage): void {
    this.nextOffset = origin.offset + 1
    this.messages++
    this.bytes += origin.size
    if (releasable(origin.value)) this.large.push(origin.value)
  }
}

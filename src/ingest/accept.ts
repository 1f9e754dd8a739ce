import { SluiceError, isSluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'
import type { PipelineDefinition } from '../pipeline/definition.ts'
import type { EntityEvent } from '../model/event.ts'
import type { ProduceItem } from './event-producer.ts'

/** One item of a POST /events answer: where the event went, or why it was refused. */
export interface ItemResult {
  index: number
  eventId?: string
  partition?: number
  offset?: number
  code?: string
  message?: string
}

export interface Checked {
  /** the items to produce, in body order */
  produce: ProduceItem[]
  /** for each item to produce, its index in the body */
  indexes: number[]
  /** per body item: filled for the refused ones (and the event id of the accepted ones) */
  results: ItemResult[]
}

/**
 * Runs every item through the topic's pipeline exactly as the worker runs a Kafka message (its
 * composed stage: decode, validate, ... then its classifier and route), so that an item the
 * worker would dead-letter at a stage is refused here with the same code and message. The
 * accepted ones are produced as they came (their own bytes), keyed by entity id (the event id
 * when there is none): an entity's events share a partition and stay in order.
 */
export function checkItems (pipeline: PipelineDefinition<unknown>, topic: string, raws: readonly Buffer[]): Checked {
  const out: Checked = { produce: [], indexes: [], results: new Array(raws.length) }
  for (let i = 0; i < raws.length; i++) {
    const value = raws[i] as Buffer
    const origin: KafkaMessage = { topic, partition: -1, offset: -1, key: null, value, timestamp: Date.now(), headers: undefined, size: value.length }
    try {
      const record = pipeline.stage.run(value, origin)
      const route = pipeline.classify(record)
      if (pipeline.routes[route] === undefined) throw new SluiceError('SLUICE_ERR_ROUTE', `no sink for route "${route}" in pipeline ${pipeline.name}`)
      const e = record as Partial<EntityEvent>
      const eventId = typeof e.eventId === 'string' ? e.eventId : null
      const key = typeof e.entityId === 'string' ? e.entityId : eventId
      out.produce.push({ key: Buffer.from(key ?? ''), value })
      out.indexes.push(i)
      out.results[i] = eventId === null ? { index: i } : { index: i, eventId }
    } catch (err) {
      // the worker stops on anything but a poison error (a bug in a stage): here it is a 500
      if (!isSluiceError(err) || !err.poison) throw err
      out.results[i] = { index: i, code: err.code, message: err.message }
    }
  }
  return out
}

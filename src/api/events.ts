import type { FastifyInstance, FastifyReply } from 'fastify'
import { Counter } from 'prom-client'
import type { Registry } from 'prom-client'
import { isSluiceError } from '../errors.ts'
import { checkItems } from '../ingest/accept.ts'
import type { ItemResult } from '../ingest/accept.ts'
import { splitBody } from '../ingest/body-items.ts'
import type { BodyFormat } from '../ingest/body-items.ts'
import { IngestUnavailable } from '../ingest/event-producer.ts'
import type { Delivery, IngestProducer } from '../ingest/event-producer.ts'
import type { PipelineDefinition } from '../pipeline/definition.ts'
import { envelopeSchema } from '../stages/validate-envelope.ts'

const EMPTY = Buffer.alloc(0)

export interface EventsOptions {
  topic: string
  pipeline: PipelineDefinition<unknown>
  producer: Pick<IngestProducer, 'produce'>
  maxEvents: number
  maxBodyBytes: number
  registry: Registry
}

const NDJSON = ['application/x-ndjson', 'application/ndjson', 'application/jsonl']

const item = {
  type: 'object',
  properties: {
    index: { type: 'integer', description: 'position of the event in the body (NDJSON: among its non-blank lines), from 0' },
    eventId: { type: 'string' },
    partition: { type: 'integer' },
    offset: { type: 'integer' },
    code: { type: 'string', description: 'why the event was refused: the code the worker dead-letters it with' },
    message: { type: 'string' }
  }
} as const

const answer = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
    accepted: { type: 'integer' },
    rejected: { type: 'integer' },
    items: { type: 'array', items: item }
  }
} as const

const envelope = { ...envelopeSchema, description: 'an event (the envelope\'s documented field-name variants are accepted)' }

/**
 * POST /events (docs/ingest.md): one event, a JSON array of events, or NDJSON. Every event
 * goes through the topic's pipeline (checkItems); the accepted ones are produced (acks=all,
 * idempotent) and the answer lists, per event, its partition and offset or its code and
 * message. 202 when at least one event was accepted, 400 when none was, 503 (Retry-After)
 * when Kafka could not take them: retrying the same request is safe, the worker stores an
 * event id once.
 */
export async function eventRoutes (app: FastifyInstance, opts: EventsOptions): Promise<void> {
  const events = new Counter({ name: 'sluice_ingest_events_total', help: 'Events received by POST /events, by result', labelNames: ['result'], registers: [opts.registry] })
  // the raw bytes: items are cut out of the body, never re-serialised (stored means as produced)
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(['application/json', ...NDJSON], { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes }, (_req, body, done) => { done(null, body) })

  app.post<{ Body: unknown }>('/events', {
    config: { scope: 'ingest' },
    bodyLimit: opts.maxBodyBytes,
    schema: {
      body: {
        description: `One event (application/json), a JSON array of up to ${opts.maxEvents} events, or NDJSON (application/x-ndjson, one event per line); at most ${opts.maxBodyBytes} bytes.`,
        oneOf: [envelope, { type: 'array', maxItems: opts.maxEvents, items: envelope }]
      },
      response: { 202: answer, 400: answer, 413: answer, 415: answer, 503: answer }
    },
    // the body schema documents; the pipeline's own stages validate each event (per item)
    validatorCompiler: () => () => true
  }, async (req, reply) => {
    const format: BodyFormat = NDJSON.includes(String(req.headers['content-type']).split(';')[0]?.trim().toLowerCase() ?? '') ? 'ndjson' : 'json'
    // a body another parser read (Fastify's own text/plain) is a media type this route does not take
    if (req.body !== undefined && !Buffer.isBuffer(req.body)) {
      return reply.code(415).send({ statusCode: 415, code: 'SLUICE_ERR_INGEST_BODY', error: 'Unsupported Media Type', message: `content-type ${String(req.headers['content-type'])} is not accepted: send application/json or application/x-ndjson` })
    }
    let raws: Buffer[]
    try {
      // no body at all (no content type, nothing sent) is a body without events: 400, not a throw
      raws = splitBody(req.body ?? EMPTY, format, opts.maxEvents)
    } catch (err) {
      if (!isSluiceError(err)) throw err
      const status = err.message.startsWith('more than') ? 413 : 400
      return reply.code(status).send({ statusCode: status, code: err.code, error: status === 413 ? 'Payload Too Large' : 'Bad Request', message: err.message })
    }
    const checked = checkItems(opts.pipeline, opts.topic, raws)
    const rejected = raws.length - checked.produce.length
    if (rejected > 0) events.inc({ result: 'rejected' }, rejected)
    if (checked.produce.length === 0) {
      const first = checked.results[0] as ItemResult
      return reply.code(400).send({ statusCode: 400, code: first.code, error: 'Bad Request', message: raws.length === 1 ? first.message : `no event accepted: index 0: ${first.message ?? ''}`, accepted: 0, rejected, items: checked.results })
    }
    let deliveries: Delivery[]
    try {
      deliveries = await opts.producer.produce(checked.produce)
    } catch (err) {
      if (!(err instanceof IngestUnavailable)) throw err
      events.inc({ result: 'unavailable' }, checked.produce.length)
      return unavailable(reply, err.retryAfterS, err.message, checked.results.filter((r) => r.code !== undefined), rejected)
    }
    let failed = 0
    let why = ''
    for (let k = 0; k < deliveries.length; k++) {
      const d = deliveries[k] as Delivery
      const r = checked.results[checked.indexes[k] as number] as ItemResult
      if ('error' in d) {
        failed++
        why = d.error.message
        r.code = d.error.code
        r.message = d.error.message
      } else {
        r.partition = d.partition
        r.offset = d.offset
      }
    }
    const accepted = checked.produce.length - failed
    if (accepted > 0) events.inc({ result: 'accepted' }, accepted)
    if (failed > 0) {
      events.inc({ result: 'unavailable' }, failed)
      return unavailable(reply, 5, `${failed} of ${checked.produce.length} events were not acknowledged by Kafka (${why}); retry the request`, checked.results, rejected, accepted)
    }
    return reply.code(202).send({ accepted, rejected, items: checked.results })
  })
}

function unavailable (reply: FastifyReply, retryAfterS: number, message: string, items: ItemResult[], rejected: number, accepted = 0): FastifyReply {
  return reply.code(503).header('retry-after', String(retryAfterS))
    .send({ statusCode: 503, code: 'SLUICE_ERR_INGEST_UNAVAILABLE', error: 'Service Unavailable', message, accepted, rejected, items })
}

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import type { ValidateFunction } from 'ajv'
import { SluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'
import type { EntityEvent } from '../model/event.ts'
import type { Stage } from '../pipeline/stage.ts'
import { normalizeEnvelope } from './normalize-envelope.ts'

/** The normalised envelope every event must satisfy (design.md's envelope). */
export const envelopeSchema = {
  type: 'object',
  required: ['eventId', 'eventType', 'timestamp', 'payload'],
  properties: {
    eventId: { type: 'string', minLength: 1, maxLength: 200 },
    eventType: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$' },
    // ISO-8601 with a zone; the calendar check is PostgreSQL's (an impossible date is a row it rejects)
    timestamp: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}(:?\\d{2})?)$' },
    aggregateType: { type: ['string', 'null'], maxLength: 100 },
    entity: { type: ['string', 'null'], maxLength: 100 },
    entityId: { type: ['string', 'null'], maxLength: 200 },
    version: { type: ['integer', 'null'], minimum: 0 },
    userName: { type: ['string', 'null'], maxLength: 200 },
    workspace: { type: ['string', 'null'], maxLength: 200 },
    payload: { type: 'object' },
    metadata: { type: ['object', 'null'] },
    correlationId: { type: ['string', 'null'], maxLength: 200 },
    causationId: { type: ['string', 'null'], maxLength: 200 }
  }
} as const

export interface ValidateOptions {
  /** a directory of `<EVENT_TYPE>.json` JSON Schemas applied to events of that type (optional) */
  schemasDir?: string
}

function describe (v: ValidateFunction): string {
  return (v.errors ?? []).slice(0, 3).map((e) => `${e.instancePath === '' ? '(event)' : e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')
}

/** Loads and compiles the per-event-type schemas once, at start-up. */
export function loadTypeSchemas (ajv: Ajv, dir: string): Map<string, ValidateFunction> {
  const out = new Map<string, ValidateFunction>()
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue
    const type = file.slice(0, -5)
    let schema: unknown
    try {
      schema = JSON.parse(readFileSync(join(dir, file), 'utf8'))
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_CONFIG', `schema ${join(dir, file)} is not valid JSON: ${(err as Error).message}`, { cause: err })
    }
    try {
      out.set(type, ajv.compile(schema as object))
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_CONFIG', `schema ${join(dir, file)} does not compile: ${(err as Error).message}`, { cause: err })
    }
  }
  return out
}

/**
 * Normalises the seeds' variants, then validates with precompiled ajv validators: the
 * envelope, and the event type's own schema when there is one. Failures are poison
 * (SLUICE_ERR_ENVELOPE, SLUICE_ERR_SCHEMA) with ajv's first errors as the reason.
 */
export function validateEnvelope (opts: ValidateOptions = {}): Stage<unknown, EntityEvent> {
  const ajv = new Ajv({ allErrors: false, strict: false })
  const envelope: ValidateFunction = ajv.compile(envelopeSchema)
  const byType = opts.schemasDir === undefined ? new Map<string, ValidateFunction>() : loadTypeSchemas(ajv, opts.schemasDir)
  return {
    name: 'validate',
    run (raw: unknown, _origin: KafkaMessage): EntityEvent {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw new SluiceError('SLUICE_ERR_ENVELOPE', `event must be a JSON object, got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : typeof raw}`)
      }
      const e = normalizeEnvelope(raw as Record<string, unknown>)
      if (!envelope(e)) throw new SluiceError('SLUICE_ERR_ENVELOPE', `invalid envelope: ${describe(envelope)}`)
      const type = e.eventType as string
      const typed = byType.get(type)
      if (typed !== undefined && !typed(e)) {
        throw new SluiceError('SLUICE_ERR_SCHEMA', `${type} does not match its schema: ${describe(typed)}`)
      }
      return e as unknown as EntityEvent
    }
  }
}

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import type { ValidateFunction } from 'ajv'
import { SluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'
import { isoTimePattern, isoTimeProblem } from '../iso-time.ts'
import type { EntityEvent, EventSource, SourceSpans } from '../model/event.ts'
import type { Stage } from '../pipeline/stage.ts'
import type { TopMember } from './json-scan.ts'
import { normalizeEnvelope } from './normalize-envelope.ts'
import { sourceOf } from './source-text.ts'
import type { SourceText } from './source-text.ts'

/** The normalised envelope every event must satisfy (design.md's envelope). */
export const envelopeSchema = {
  type: 'object',
  required: ['eventId', 'eventType', 'timestamp', 'payload'],
  properties: {
    eventId: { type: 'string', minLength: 1, maxLength: 200 },
    eventType: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$' },
    // ISO-8601 with a zone; the calendar and what timestamptz holds exactly: isoTimeProblem (SLUICE_ERR_TIMESTAMP)
    timestamp: { type: 'string', pattern: isoTimePattern },
    aggregateType: { type: ['string', 'null'], maxLength: 100 },
    entity: { type: ['string', 'null'], maxLength: 100 },
    entityId: { type: ['string', 'null'], maxLength: 200 },
    // parsed exactly from the producer's text before validation (exactVersion, SLUICE_ERR_VERSION)
    version: {},
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

const MAX_BIGINT = 9223372036854775807n
const WHOLE = /^(0|[1-9][0-9]{0,18})$/

/** What a dead letter quotes of the producer's text. */
function quote (text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text
}

/**
 * The envelope's version from the producer's own text: a whole number 0 .. 2^63-1 written
 * without fraction or exponent (what the bigint column holds), else poison quoting the text.
 * Without the text (an object handed over by code), a safe integer.
 */
function exactVersion (value: unknown, text: string | undefined): bigint | null {
  if (value === null || value === undefined) return null
  if (typeof value !== 'number') throw new SluiceError('SLUICE_ERR_ENVELOPE', `invalid envelope: /version must be integer or null, got ${typeof value}`)
  const t = text ?? String(value)
  if (WHOLE.test(t)) {
    const v = BigInt(t)
    if (v <= MAX_BIGINT) return v
  }
  throw new SluiceError('SLUICE_ERR_VERSION', `version must be a whole number from 0 to ${MAX_BIGINT} without fraction or exponent, got ${quote(t)}`)
}

function textOf (src: SourceText, m: TopMember): string {
  return src.buf.toString('utf8', m.start, m.end)
}

/** A name given twice is poison: JSON.parse keeps the last, so the first would vanish. */
function checkDistinct (members: readonly TopMember[]): void {
  const n = members.length
  // pairs for the usual dozen (no Map per message); a Set when hostile input has thousands
  if (n <= 16) {
    for (let i = 1; i < n; i++) {
      const name = (members[i] as TopMember).name
      for (let j = 0; j < i; j++) if ((members[j] as TopMember).name === name) throw twice(name)
    }
    return
  }
  const seen = new Set<string>()
  for (const m of members) {
    if (seen.has(m.name)) throw twice(m.name)
    seen.add(m.name)
  }
}

function twice (name: string): SluiceError {
  return new SluiceError('SLUICE_ERR_ENVELOPE', `invalid envelope: member ${JSON.stringify(quote(name))} appears twice`)
}

/** The member named `name` (the names are distinct: checkDistinct). */
function memberNamed (members: readonly TopMember[], name: string): TopMember | undefined {
  for (let i = 0; i < members.length; i++) if ((members[i] as TopMember).name === name) return members[i]
  return undefined
}

const NONE: readonly TopMember[] = []

/**
 * The producer's text of payload and metadata, and of the members no column holds (`extra`),
 * read from the message's bytes when a sink asks for it rather than when the event is
 * decoded: a SNAPSHOT_CHUNK's payload (its `data` a BulkString, ~700 KB) would otherwise be
 * copied into a string per message, which the S3 sink never reads (it stores a slimmed
 * payload) and V8 frees only on a full collection. A sink reads it while the message is in
 * flight; after its batch (pipeline/release.ts) it is gone, and asking throws.
 */
class SourceTexts implements EventSource {
  readonly payload: object
  readonly metadata: object | null
  readonly #src: SourceText
  readonly #payload: TopMember
  readonly #metadata: TopMember | null
  readonly #extra: readonly TopMember[]

  constructor (src: SourceText, used: ReadonlySet<string>, payloadName: string, payload: object, metadata: object | null) {
    this.payload = payload
    this.metadata = metadata
    this.#src = src
    this.#payload = memberNamed(src.members, payloadName) as TopMember
    this.#metadata = metadata === null ? null : memberNamed(src.members, 'metadata') ?? null
    let extra: TopMember[] | null = null
    for (const m of src.members) if (!used.has(m.name)) (extra ??= []).push(m)
    this.#extra = extra ?? NONE
  }

  get payloadJson (): string { return this.#text(this.#payload) }

  get metadataJson (): string | null { return this.#metadata === null ? null : this.#text(this.#metadata) }

  get spans (): SourceSpans | null {
    const src = this.#src
    if (!src.copyPlain) return null
    const p = this.#payload
    const m = this.#metadata
    this.#live(p)
    if (m !== null) this.#live(m)
    return { buf: src.buf, payloadStart: p.start, payloadEnd: p.end, metadataStart: m === null ? -1 : m.start, metadataEnd: m === null ? -1 : m.end }
  }

  get extraJson (): string | null {
    if (this.#extra.length === 0) return null
    let text = '{'
    for (let i = 0; i < this.#extra.length; i++) {
      const m = this.#extra[i] as TopMember
      text += (i === 0 ? '' : ',') + this.#live(m).buf.toString('utf8', m.keyStart, m.keyEnd) + ':' + textOf(this.#src, m)
    }
    return text + '}'
  }

  #text (m: TopMember): string {
    return textOf(this.#live(m), m)
  }

  /** The message's text, unless it was released (its buffer emptied) after its batch. */
  #live (m: TopMember): SourceText {
    if (this.#src.buf.length < m.end) throw new SluiceError('SLUICE_ERR_PIPELINE', 'the producer\'s text of an event read after its Kafka message was released')
    return this.#src
  }
}

/**
 * Normalises the seeds' variants, then validates with precompiled ajv validators: the
 * envelope, and the event type's own schema when there is one. Failures are poison
 * (SLUICE_ERR_ENVELOPE, SLUICE_ERR_SCHEMA) with ajv's first errors as the reason; a version
 * that is not a bigint as written is SLUICE_ERR_VERSION, a timestamp that timestamptz cannot
 * hold exactly SLUICE_ERR_TIMESTAMP. An event decoded by decodeJson carries the producer's
 * text of its JSON columns (EventSource).
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
      const o = raw as Record<string, unknown>
      const src = sourceOf(o)
      if (src !== undefined) checkDistinct(src.members)
      const used = new Set<string>()
      const e = normalizeEnvelope(o, used)
      const versionMember = src === undefined ? undefined : memberNamed(src.members, 'version')
      e.version = exactVersion(e.version, versionMember === undefined || src === undefined ? undefined : textOf(src, versionMember))
      if (!envelope(e)) throw new SluiceError('SLUICE_ERR_ENVELOPE', `invalid envelope: ${describe(envelope)}`)
      const problem = isoTimeProblem(e.timestamp as string)
      if (problem !== null) throw new SluiceError('SLUICE_ERR_TIMESTAMP', `timestamp "${quote(e.timestamp as string)}" ${problem}`)
      const type = e.eventType as string
      const typed = byType.get(type)
      if (typed !== undefined && !typed(e)) {
        throw new SluiceError('SLUICE_ERR_SCHEMA', `${type} does not match its schema: ${describe(typed)}`)
      }
      const event = e as unknown as EntityEvent
      if (src !== undefined) event.source = new SourceTexts(src, used, o.payload !== undefined ? 'payload' : 'data', event.payload, event.metadata)
      return event
    }
  }
}

// Generated envelopes for the hostile-input property test: the JSON text is written here,
// not by JSON.stringify, so that escapes, number literals and member order are the
// generator's choice; each message says what sluice must do with it.
import fc from 'fast-check'

export type Fault = 'none' | 'utf8-bytes' | 'too-deep' | 'nul' | 'lone-surrogate' | 'version' | 'timestamp' | 'numeric-overflow'

export const faultCode: Record<Exclude<Fault, 'none'>, string> = {
  'utf8-bytes': 'SLUICE_ERR_UTF8',
  'too-deep': 'SLUICE_ERR_TOO_DEEP',
  nul: 'SLUICE_ERR_NUL',
  'lone-surrogate': 'SLUICE_ERR_UTF8',
  version: 'SLUICE_ERR_VERSION',
  timestamp: 'SLUICE_ERR_TIMESTAMP',
  'numeric-overflow': 'SLUICE_ERR_ROW_REJECTED'
}

export interface Generated {
  value: Buffer
  fault: Fault
  eventId: string
  /** what the columns must hold when stored */
  columns: { event_type: string, entity: string, entity_id: string, user_name: string, workspace: string, correlation_id: string, causation_id: string, version: string }
  payloadText: string
  extraText: string | null
}

const ENVELOPE_NAMES = new Set(['eventId', 'event_id', 'id', 'eventType', 'event_type', 'type', 'timestamp', 'time', 'occurredAt', 'occurred_at',
  'payload', 'data', 'aggregateType', 'aggregate_type', 'aggregateId', 'aggregate_id', 'version', 'user', 'userName', 'userId', 'user_id',
  'workspace', 'metadata', 'correlationId', 'correlation_id', 'causationId', 'causation_id'])
const PAYLOAD_NAMES = new Set(['entity', 'entityType', 'entity_type', 'entityId', 'entity_id', 'user', 'userName', 'user_name', 'workspace'])
const TYPES = ['TASK_UPDATED', 'USER_LOGGED_IN', 'COMMENT_ADDED', 'WORKFLOW_STARTED', 'STATUS_CHANGED', 'ROLE_ASSIGNED', 'NOTIFICATION_SENT']

/** Any Unicode text without NUL (faults add it on purpose), up to `max` code points. */
const text = (max: number): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength: max }).map((s) => s.replace(/[\0\p{Surrogate}]/gu, '_'))

/** A JSON string literal of `s`, each character written plainly or escaped as `pick` says. */
function literal (s: string, pick: () => number): string {
  let out = '"'
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number
    const how = pick() % 4
    if (ch === '"' || ch === '\\') out += '\\' + ch
    else if (cp < 0x20) out += how === 0 && ch === '\n' ? '\\n' : '\\u' + cp.toString(16).padStart(4, '0')
    else if (how === 0 && cp > 0xffff) {
      const v = cp - 0x10000
      out += `\\u${(0xd800 + (v >> 10)).toString(16)}\\u${(0xdc00 + (v & 0x3ff)).toString(16).toUpperCase()}`
    } else if (how === 1 && cp <= 0xffff) out += '\\u' + cp.toString(16).padStart(4, '0')
    else if (how === 2 && ch === '/') out += '\\/'
    else out += ch
  }
  return out + '"'
}

/** A JSON number literal of any magnitude and precision that PostgreSQL's numeric holds. */
const numberText: fc.Arbitrary<string> = fc.tuple(
  fc.boolean(), fc.stringMatching(/^(0|[1-9][0-9]{0,40})$/), fc.option(fc.stringMatching(/^[0-9]{1,40}$/)),
  fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 999 })))
).map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac === null ? '' : '.' + frac}${exp === null ? '' : exp[0] + exp[1] + String(exp[2])}`)

type Tree = { k: 'num', t: string } | { k: 'str', s: string } | { k: 'lit', t: string } | { k: 'arr', v: Tree[] } | { k: 'obj', v: Array<[string, Tree]> }

const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    numberText.map((t): Tree => ({ k: 'num', t })),
    text(12).map((s): Tree => ({ k: 'str', s })),
    fc.constantFrom('true', 'false', 'null').map((t): Tree => ({ k: 'lit', t })),
    fc.array(tie('t'), { maxLength: 3 }).map((v): Tree => ({ k: 'arr', v })),
    fc.uniqueArray(fc.tuple(text(8), tie('t')), { maxLength: 4, selector: ([key]) => key }).map((v): Tree => ({ k: 'obj', v }))
  )
})).t

function write (t: Tree, pick: () => number): { text: string, depth: number } {
  switch (t.k) {
    case 'num': return { text: t.t, depth: 0 }
    case 'lit': return { text: t.t, depth: 0 }
    case 'str': return { text: literal(t.s, pick), depth: 0 }
    case 'arr': {
      const items = t.v.map((x) => write(x, pick))
      return { text: `[${items.map((i) => i.text).join(',')}]`, depth: 1 + Math.max(0, ...items.map((i) => i.depth)) }
    }
    case 'obj': {
      const items = t.v.map(([key, x]) => ({ key: literal(key, pick), ...write(x, pick) }))
      return { text: `{${items.map((i) => `${i.key}:${i.text}`).join(', ')}}`, depth: 1 + Math.max(0, ...items.map((i) => i.depth)) }
    }
  }
}

const faults = fc.constantFrom<Fault>('none', 'none', 'none', 'none', 'none', 'none', 'none', 'utf8-bytes', 'too-deep', 'nul', 'lone-surrogate', 'version', 'timestamp', 'numeric-overflow')

const INVALID_UTF8 = [[0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe9], [0xff]]

/**
 * Envelopes: arbitrary Unicode in values and keys (escaped or not), nested values, numbers of
 * any magnitude and precision, members outside the envelope, and at most one fault each.
 * `maxDepth` is the worker's SLUICE_MAX_JSON_DEPTH: payloads nest up to it and past it.
 * `make(i)` writes the message with a unique event id (`i:` + generated text).
 */
export function envelopes (maxDepth: number): fc.Arbitrary<{ fault: Fault, make: (i: number) => Generated }> {
  return fc.record({
    fault: faults,
    id: text(20),
    type: fc.constantFrom(...TYPES),
    ts: fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
    entity: text(100),
    entityId: text(200),
    user: text(40),
    workspace: text(40),
    correlation: text(40),
    causation: text(40),
    version: fc.oneof(fc.bigInt({ min: 0n, max: 9223372036854775807n }), fc.constant(9223372036854775807n)),
    members: fc.uniqueArray(fc.tuple(text(10), tree), { maxLength: 5, selector: ([k]) => k }),
    extra: fc.uniqueArray(fc.tuple(fc.oneof(text(10), fc.constant('data'), fc.constant('source')), tree), { maxLength: 3, selector: ([k]) => k }),
    nest: fc.nat(),
    badBytes: fc.constantFrom(...INVALID_UTF8),
    badVersion: fc.constantFrom('1e400', '9223372036854775808', '3.0', '1E2', '-1', '99999999999999999999999'),
    badTime: fc.constantFrom('2016-12-31T23:59:60Z', '2025-02-25T10:45:00.1234567Z', '2025-02-25T24:00:00Z', '0000-06-01T00:00:00Z', '2025-02-25T10:45:00+23:59', '2023-02-29T00:00:00Z'),
    offset: fc.constantFrom('Z', '+00:00', '-05:30', '+15:59', '-0800'),
    escapes: fc.array(fc.nat(), { minLength: 1, maxLength: 64 })
  }).map((g) => ({
    fault: g.fault,
    make: (i: number): Generated => {
      let n = 0
      const pick = (): number => g.escapes[n++ % g.escapes.length] as number
      // the document nests: envelope 1, payload 2, its members 2 + their own depth
      const nestedDepth = g.fault === 'too-deep' ? maxDepth - 1 + (g.nest % 4) : g.nest % (maxDepth - 1)
      const members = g.members.filter(([k]) => !PAYLOAD_NAMES.has(k)).map(([k, v]) => ({ key: literal(k, pick), ...write(v, pick) }))
      const extras = g.extra.filter(([k]) => !ENVELOPE_NAMES.has(k) || k === 'data').map(([k, v]) => ({ key: literal(k, pick), ...write(v, pick) }))
      const depth = Math.max(2 + nestedDepth, ...members.map((m) => 2 + m.depth), ...extras.map((m) => 1 + m.depth))
      const fault: Fault = depth > maxDepth ? 'too-deep' : g.fault
      let payloadText = '{' + [
        `"entity":${literal(g.entity, pick)}`, `"entityId":${literal(g.entityId, pick)}`, `"user":${literal(g.user, pick)}`, `"workspace":${literal(g.workspace, pick)}`,
        ...members.map((m) => `${m.key}: ${m.text}`),
        `"nested" :${'['.repeat(nestedDepth)}1${']'.repeat(nestedDepth)}`
      ].join(',') + '}'
      if (fault === 'nul') payloadText = payloadText.slice(0, -1) + ',"z":"a\\u0000b"}'
      if (fault === 'lone-surrogate') payloadText = payloadText.slice(0, -1) + ',"z":"a\\udc01b"}'
      if (fault === 'numeric-overflow') payloadText = payloadText.slice(0, -1) + ',"z":1e200000}'
      const extraTexts = extras.map((m) => `${m.key}:${m.text}`)
      const versionText = fault === 'version' ? g.badVersion : g.version.toString()
      const timeText = fault === 'timestamp' ? g.badTime : g.ts.toISOString().replace(/Z$/, g.offset)
      const eventId = `${i}:${g.id}`
      const head = `{"eventType":"${g.type}","timestamp":"${timeText}","version":${versionText},"payload":${payloadText},"eventId":`
      const tail = `,"metadata":{"correlationId":${literal(g.correlation, pick)},"causationId":${literal(g.causation, pick)},"n":${'1'.repeat(30)}.5}` +
        (extraTexts.length === 0 ? '' : ',' + extraTexts.join(',')) + '}'
      const value = fault === 'utf8-bytes'
        ? Buffer.concat([Buffer.from(head + `"${i}:`), Buffer.from(g.badBytes), Buffer.from('"' + tail)])
        : Buffer.from(head + literal(eventId, pick) + tail)
      return {
        value,
        fault,
        eventId,
        columns: { event_type: g.type, entity: g.entity, entity_id: g.entityId, user_name: g.user, workspace: g.workspace, correlation_id: g.correlation, causation_id: g.causation, version: g.version.toString() },
        payloadText,
        extraText: extraTexts.length === 0 ? null : `{${extraTexts.join(',')}}`
      }
    }
  }))
}

import type { TopMember } from './json-scan.ts'

/** Where a decoded top-level object came from: the message's bytes and its members' spans. */
export interface SourceText {
  readonly buf: Buffer
  readonly members: readonly TopMember[]
  /** no byte of buf needs COPY escaping (json-scan.ts, Scan.copyPlain) */
  readonly copyPlain: boolean
}

// Carried by the parsed object itself, so that stages between decode and validate need not
// carry it: a non-enumerable symbol, which neither JSON, Object.keys nor a spread copy sees (an
// object a later stage makes has no source, as before). A WeakMap did the same at the cost of
// one ephemeron per message for the garbage collector (bench/hot-path.ts).
const SOURCE: unique symbol = Symbol('sluice.source')

/** Remembers the bytes a parsed top-level object was read from (the decode stage). */
export function rememberSource (parsed: object, source: SourceText): void {
  // one descriptor for every message, not one object each (not writable, enumerable or configurable)
  DESCRIPTOR.value = source
  Object.defineProperty(parsed, SOURCE, DESCRIPTOR)
  DESCRIPTOR.value = undefined
}

const DESCRIPTOR: PropertyDescriptor = { value: undefined }

/** The bytes a parsed object was read from, when the decode stage read it. */
export function sourceOf (parsed: object): SourceText | undefined {
  return (parsed as { [SOURCE]?: SourceText })[SOURCE]
}

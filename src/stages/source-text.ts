import type { TopMember } from './json-scan.ts'

/** Where a decoded top-level object came from: the message's bytes and its members' spans. */
export interface SourceText {
  readonly buf: Buffer
  readonly members: readonly TopMember[]
}

// keyed by the parsed object, so that stages between decode and validate need not carry it
const sources = new WeakMap<object, SourceText>()

/** Remembers the bytes a parsed top-level object was read from (the decode stage). */
export function rememberSource (parsed: object, source: SourceText): void {
  sources.set(parsed, source)
}

/** The bytes a parsed object was read from, when the decode stage read it. */
export function sourceOf (parsed: object): SourceText | undefined {
  return sources.get(parsed)
}

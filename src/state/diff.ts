import type { Json, JsonObject } from './fold.ts'

/** What changed between two states, field by field (top-level fields of the state). */
export interface StateDiff {
  /** fields only in `to` */
  added: Record<string, Json>
  /** fields only in `from`, with their old value */
  removed: Record<string, Json>
  /** fields in both whose value differs */
  changed: Record<string, { old: Json, new: Json }>
  /** fields in both with the same value */
  unchanged: number
}

/** Deep equality of JSON values (object key order does not matter; array order does). */
export function jsonEqual (a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true
  if (a === null || b === null || a === undefined || b === undefined || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((x, i) => jsonEqual(x, b[i]))
  }
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]))
}

export function diffStates (from: JsonObject, to: JsonObject): StateDiff {
  const out: StateDiff = { added: {}, removed: {}, changed: {}, unchanged: 0 }
  for (const [k, v] of Object.entries(from)) {
    if (!Object.hasOwn(to, k)) out.removed[k] = v
    else if (jsonEqual(v, to[k])) out.unchanged++
    else out.changed[k] = { old: v, new: to[k] as Json }
  }
  for (const [k, v] of Object.entries(to)) if (!Object.hasOwn(from, k)) out.added[k] = v
  return out
}

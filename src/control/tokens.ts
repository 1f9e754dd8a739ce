import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { SluiceError, errorMessage } from '../errors.ts'

export const scopes = ['read', 'operate', 'ingest'] as const
export type Scope = typeof scopes[number]

/** One bearer token of the tokens file: its name (who, in the audit) and what it may do. */
export interface TokenEntry {
  name: string
  scopes: ReadonlySet<Scope>
  /** sha256 of the token (32 bytes) */
  hash: Buffer
}

const NAME = /^[A-Za-z0-9._@:-]{1,100}$/
const HEX = /^[0-9a-f]{64}$/

function bad (file: string, where: string, why: string): SluiceError {
  // never the hash or the token in the message: an entry is named by its position and name
  return new SluiceError('SLUICE_ERR_CONFIG', `API tokens file ${file}: ${where} ${why}`)
}

/**
 * Parses the tokens file: a JSON array of `{ "name", "scopes": [...], "sha256": "<64 hex>" }`.
 * Anything else (unknown field, unknown scope, duplicate name or hash) is a fatal
 * configuration error naming the entry, so a typo never silently locks an operator out or in.
 */
export function parseTokens (text: string, file: string): TokenEntry[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw bad(file, 'the file', `is not valid JSON (${errorMessage(err)})`)
  }
  if (!Array.isArray(doc)) throw bad(file, 'the file', 'must be a JSON array of { "name", "scopes", "sha256" }')
  const out: TokenEntry[] = []
  const names = new Set<string>()
  const hashes = new Set<string>()
  doc.forEach((e: unknown, i: number) => {
    const where = `entry ${i}`
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw bad(file, where, 'is not an object')
    const o = e as Record<string, unknown>
    for (const k of Object.keys(o)) if (!['name', 'scopes', 'sha256'].includes(k)) throw bad(file, where, `has an unknown field "${k.slice(0, 40)}"`)
    if (typeof o.name !== 'string' || !NAME.test(o.name)) throw bad(file, where, 'needs a "name" of 1-100 letters, digits or ._@:-')
    const named = `${where} ("${o.name}")`
    if (names.has(o.name)) throw bad(file, named, 'repeats a name')
    if (!Array.isArray(o.scopes) || o.scopes.length === 0) throw bad(file, named, `needs "scopes": a non-empty array of ${scopes.join(', ')}`)
    for (const s of o.scopes) if (!scopes.includes(s as Scope)) throw bad(file, named, `has an unknown scope "${String(s).slice(0, 40)}" (one of ${scopes.join(', ')})`)
    if (typeof o.sha256 !== 'string' || !HEX.test(o.sha256)) throw bad(file, named, 'needs "sha256": the token\'s SHA-256 as 64 lowercase hex digits')
    if (hashes.has(o.sha256)) throw bad(file, named, 'has the same token hash as an earlier entry')
    names.add(o.name)
    hashes.add(o.sha256)
    out.push({ name: o.name, scopes: new Set(o.scopes as Scope[]), hash: Buffer.from(o.sha256, 'hex') })
  })
  return out
}

export function loadTokens (file: string): TokenEntry[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_CONFIG', `API tokens file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { cause: err })
  }
  return parseTokens(text, file)
}

export function hashToken (token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** The entry of a presented token: every entry is compared in constant time, no early exit. */
export function matchToken (entries: readonly TokenEntry[], token: string): TokenEntry | null {
  const h = hashToken(token)
  let found: TokenEntry | null = null
  for (const e of entries) if (timingSafeEqual(e.hash, h) && found === null) found = e
  return found
}

// Tokens files and JWTs for the API tests: random tokens, their sha256 in a file of the test's own.
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import type { Test } from 'tap'
import { startWorker, uniqueName, waitFor } from './worker-harness.ts'
import type { Fixture, Worker } from './worker-harness.ts'

export interface TestTokens {
  file: string
  /** name -> the bearer token */
  tokens: Record<string, string>
}

/** Writes a tokens file with one random token per entry. */
export function writeTokens (entries: Record<string, string[]>): TestTokens {
  mkdirSync('.sluice/test-tokens', { recursive: true })
  const file = `.sluice/test-tokens/${uniqueName('tokens')}.json`
  const tokens: Record<string, string> = {}
  const rows = Object.entries(entries).map(([name, scopes]) => {
    const token = randomBytes(24).toString('base64url')
    tokens[name] = token
    return { name, scopes, sha256: createHash('sha256').update(token).digest('hex') }
  })
  writeFileSync(file, JSON.stringify(rows, null, 2))
  return { file, tokens }
}

/** An HS256 JWT signed with `secret`. */
export function hs256 (secret: string, claims: Record<string, unknown>): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`
}

export interface Answer { status: number, headers: Headers, body: any }

/** One API call with an optional bearer token. */
export async function api (port: number, method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const h: Record<string, string> = { ...headers }
  if (token !== undefined) h.authorization = `Bearer ${token}`
  if (body !== undefined) h['content-type'] = 'application/json'
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, headers: res.headers, body: parsed }
}

/** startWorker with a longer readiness wait (a loaded machine can take over a minute). */
export async function startReady (t: Test, fx: Fixture, env: Record<string, string>, timeoutMs = 240_000): Promise<Worker> {
  const w = await startWorker(t, fx, env, { waitReady: false })
  await waitFor(`worker ${w.pid} to be ready (log ${w.logFile})`, async () => {
    if (w.proc.exitCode !== null) throw new Error(`worker exited with ${w.proc.exitCode}; log ${w.logFile}:\n${w.log().slice(-2000)}`)
    const res = await fetch(`http://127.0.0.1:${w.port}/health/ready`).catch(() => null)
    return res?.status === 200
  }, timeoutMs, 250)
  return w
}

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { SluiceError, errorCodes } from '../../src/errors.ts'
import type { ErrorCode } from '../../src/errors.ts'

test('every error code is documented with its kind in docs/errors.md', async (t) => {
  const doc = readFileSync('docs/errors.md', 'utf8')
  const rows = new Map<string, string>()
  for (const m of doc.matchAll(/^\| `(SLUICE_ERR_[A-Z0-9_]+)` \| (poison|transient|fatal) \|/gm)) rows.set(m[1] as string, m[2] as string)
  for (const [code, kind] of Object.entries(errorCodes)) {
    t.equal(rows.get(code), kind, `${code} is documented as ${kind}`)
  }
  for (const code of rows.keys()) t.ok(code in errorCodes, `${code} in the doc exists in src/errors.ts`)
})

test('an error carries its code, kind and cause', async (t) => {
  const cause = new Error('boom')
  for (const code of Object.keys(errorCodes) as ErrorCode[]) {
    const err = new SluiceError(code, 'x', { cause })
    t.equal(err.kind, errorCodes[code])
    t.equal(err.cause, cause)
    t.equal([err.poison, err.transient, err.fatal].filter(Boolean).length, 1, `${code} is exactly one kind`)
  }
})

test('every error code is raised somewhere in src/', async (t) => {
  const files = readdirSync('src', { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && f !== 'errors.ts')
  const text = files.map((f) => readFileSync(join('src', f), 'utf8')).join('\n')
  for (const code of Object.keys(errorCodes)) {
    t.ok(text.includes(`'${code}'`), `${code} appears (quoted) in a src/ file other than errors.ts`)
  }
})

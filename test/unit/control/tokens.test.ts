import { createHash } from 'node:crypto'
import { test } from 'tap'
import { matchToken, parseTokens } from '../../../src/control/tokens.ts'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

test('a tokens file: entries with names, scopes and hashes; a token matches its entry only', async (t) => {
  const entries = parseTokens(JSON.stringify([
    { name: 'oncall', scopes: ['read', 'operate'], sha256: sha('s3cret-1') },
    { name: 'dash', scopes: ['read'], sha256: sha('s3cret-2') }
  ]), 'tokens.json')
  t.equal(matchToken(entries, 's3cret-1')?.name, 'oncall')
  t.same([...(matchToken(entries, 's3cret-1')?.scopes ?? [])], ['read', 'operate'])
  t.equal(matchToken(entries, 's3cret-2')?.name, 'dash')
  t.equal(matchToken(entries, 's3cret-3'), null, 'an unknown token matches nothing')
  t.equal(matchToken(entries, ''), null, 'an empty token matches nothing')
  t.equal(matchToken([], 's3cret-1'), null, 'no entries: nothing matches')
})

test('a bad entry is SLUICE_ERR_CONFIG naming it, never its hash', async (t) => {
  const h = sha('x')
  const bad: Array<[unknown, RegExp]> = [
    [{}, /must be a JSON array/],
    [[1], /entry 0 is not an object/],
    [[{ name: 'a', scopes: ['read'], sha256: h, extra: 1 }], /entry 0 has an unknown field "extra"/],
    [[{ name: '', scopes: ['read'], sha256: h }], /entry 0 needs a "name"/],
    [[{ name: 'a', scopes: [], sha256: h }], /entry 0 \("a"\) needs "scopes"/],
    [[{ name: 'a', scopes: ['admin'], sha256: h }], /entry 0 \("a"\) has an unknown scope "admin"/],
    [[{ name: 'a', scopes: ['read'], sha256: h.toUpperCase() }], /entry 0 \("a"\) needs "sha256"/],
    [[{ name: 'a', scopes: ['read'], sha256: h }, { name: 'a', scopes: ['read'], sha256: sha('y') }], /entry 1 \("a"\) repeats a name/],
    [[{ name: 'a', scopes: ['read'], sha256: h }, { name: 'b', scopes: ['read'], sha256: h }], /entry 1 \("b"\) has the same token hash/]
  ]
  for (const [doc, message] of bad) {
    const err = (() => { try { parseTokens(JSON.stringify(doc), 'f.json'); return null } catch (e) { return e as Error & { code: string } } })()
    t.equal(err?.code, 'SLUICE_ERR_CONFIG', `${JSON.stringify(doc).slice(0, 60)}: SLUICE_ERR_CONFIG`)
    t.match(err?.message, message)
    t.notOk(err?.message.includes(h), 'the hash is not in the message')
  }
  t.throws(() => parseTokens('[{', 'f.json'), { code: 'SLUICE_ERR_CONFIG', message: /f\.json: the file is not valid JSON/ })
})

import { test } from 'tap'
import { altersEscapedKeys, checkRuntime } from '../../../src/runtime.ts'

// nodejs/node issue 63785: fails on Node 24.x / 26.x, whose JSON.parse returns `caf\` for the
// key "caf\u00e9" once a document with the key "caf\\" was parsed.
test(`this runtime (${process.version}) parses escaped keys as written`, async (t) => {
  const first = JSON.parse('{"caf\\\\":1,"x\\n":2}') as object
  t.same(Object.keys(first), ['caf\\', 'x\n'])
  const later = JSON.parse('{"caf\\u00e9":1,"caf\\u00e8":2,"x\\u000a":3}') as object
  t.same(Object.keys(later), ['café', 'cafè', 'x\n'], 'keys of a later document are not the earlier document\'s')
  t.equal(await altersEscapedKeys(), false, 'the issue\'s reproduction, as the first parses of a fresh process of this runtime, keeps the key')
})

test('the worker refuses an affected runtime unless told otherwise', async (t) => {
  await t.rejects(checkRuntime({ version: 'v24.21.0', allow: false, alters: async () => true }), { code: 'SLUICE_ERR_RUNTIME', kind: 'fatal', message: /Node\.js v24\.21\.0 alters escaped object keys.*SLUICE_ALLOW_AFFECTED_RUNTIME/ })
  await t.rejects(checkRuntime({ version: 'v26.1.0', allow: false, alters: async () => false }), { code: 'SLUICE_ERR_RUNTIME' }, 'an affected line even where the probe passes')
  await t.rejects(checkRuntime({ version: 'v22.23.3', allow: false, alters: async () => true }), { code: 'SLUICE_ERR_RUNTIME' }, 'any runtime where the probe shows the bug')
  await t.resolves(checkRuntime({ version: 'v22.23.3', allow: false, alters: async () => false }))
  await t.resolves(checkRuntime({ version: 'v24.21.0', allow: true, alters: async () => true }), 'SLUICE_ALLOW_AFFECTED_RUNTIME=true')
})

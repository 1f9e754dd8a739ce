import { execFile } from 'node:child_process'
import { SluiceError } from './errors.ts'

/**
 * Node.js lines whose V8 alters escaped object keys in JSON.parse (nodejs/node issue 63785):
 * once a document with a key such as `"caf\\"` was parsed, a later `"caf\u00e9"` key comes back
 * as `caf\`. Node 22 is not affected.
 */
export const AFFECTED_MAJORS: readonly number[] = [24, 26]

/**
 * The reproduction. It shows the bug reliably only as the first JSON.parse calls of a
 * process (later ones depend on what was parsed before), so it runs in a fresh one.
 */
const PROBE = 'JSON.parse(\'{"caf\\\\\\\\":1}\'); process.stdout.write(Object.keys(JSON.parse(\'{"caf\\\\u00e9":1}\'))[0] === \'caf\\u00e9\' ? \'ok\' : \'altered\')'

/**
 * true when `node` (this runtime by default) alters escaped keys: the probe, in a fresh
 * process, gets another key back. Asynchronous: the worker loads its modules meanwhile.
 */
export async function altersEscapedKeys (node = process.execPath): Promise<boolean> {
  // through `env -i`: no NODE_OPTIONS (a test runner's or an operator's) preloading modules whose parses hide the bug
  const r = await new Promise<{ stdout: string, stderr: string, error: Error | null }>((resolve) => {
    execFile('env', ['-i', node, '-e', PROBE], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => resolve({ stdout, stderr, error }))
  })
  if (r.stdout === 'ok') return false
  if (r.stdout === 'altered') return true
  throw new SluiceError('SLUICE_ERR_RUNTIME', `cannot check ${node} for nodejs/node issue 63785: ${r.error?.message ?? r.stderr}`)
}

/**
 * Refuses a runtime that alters keys (fatal SLUICE_ERR_RUNTIME): one whose JSON.parse shows
 * the bug here, or whose major version is a line with the open bug, unless `allow` (the
 * operator's SLUICE_ALLOW_AFFECTED_RUNTIME) says otherwise.
 */
export async function checkRuntime (opts: { version: string, allow: boolean, alters?: () => Promise<boolean> }): Promise<void> {
  if (opts.allow) return
  const major = Number(opts.version.replace(/^v/, '').split('.')[0])
  const shows = await (opts.alters ?? altersEscapedKeys)()
  if (!shows && !AFFECTED_MAJORS.includes(major)) return
  throw new SluiceError('SLUICE_ERR_RUNTIME', `Node.js ${opts.version} ${shows ? 'alters escaped object keys in JSON.parse' : 'is a release line whose JSON.parse alters escaped object keys'} (nodejs/node issue 63785): stored keys would differ from the produced ones. Run Node 22 (scripts/node-env.sh installs 22.23.3), or set SLUICE_ALLOW_AFFECTED_RUNTIME=true to run anyway`)
}

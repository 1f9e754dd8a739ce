import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test } from 'tap'
import type { Test } from 'tap'
import { findFolderCycles } from '../../scripts/check-import-cycles.ts'

const script = join(import.meta.dirname, '../../scripts/check-import-cycles.ts')
const src = join(import.meta.dirname, '../../src')

function tree (t: Test, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-cycles-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true })
    writeFileSync(join(root, name), text)
  }
  return root
}

function run (root: string): { status: number | null, out: string } {
  const r = spawnSync(process.execPath, [script, root], { encoding: 'utf8' })
  return { status: r.status, out: r.stdout + r.stderr }
}

test('fails on a cycle between two folders, naming the imports', async (t) => {
  const root = tree(t, {
    'errors.ts': 'export const x = 1\n',
    'pipeline/runner.ts': "import type { Sink } from '../sinks/sink.ts'\nimport { x } from '../errors.ts'\n",
    'sinks/sink.ts': 'export interface Sink { n: number }\n',
    'sinks/s3/writer.ts': "import type { EntityEvent } from '../../pipeline/event.ts'\n",
    'pipeline/event.ts': 'export interface EntityEvent { id: string }\n'
  })
  const r = run(root)
  t.equal(r.status, 1, r.out)
  t.match(r.out, 'import cycle between pipeline, sinks')
  t.match(r.out, 'pipeline -> sinks (pipeline/runner.ts imports sinks/sink.ts)')
  t.match(r.out, 'sinks -> pipeline (sinks/s3/writer.ts imports pipeline/event.ts)')
})

test('finds longer cycles through re-exports and dynamic imports; a top-level file is a unit', async (t) => {
  const root = tree(t, {
    'app.ts': "export { a } from './api/a.ts'\n",
    'api/a.ts': "export const a = 1\nexport async function later () { return await import('../state/s.ts') }\n",
    'state/s.ts': "import '../app.ts'\n",
    'kafka/k.ts': "import { a } from '../api/a.ts'\nexport const k = a\n"
  })
  const cycles = findFolderCycles(root)
  t.same(cycles.map((c) => c.units), [['api', 'app.ts', 'state']])
  t.equal(run(root).status, 1)
})

test('passes on a tree whose folders import one way', async (t) => {
  const root = tree(t, {
    'main.ts': "import './pipeline/runner.ts'\n",
    'pipeline/runner.ts': "import type { Sink } from '../sinks/sink.ts'\nimport './lane.ts'\n",
    'pipeline/lane.ts': "import { q } from '../db/q.ts'\nexport const l = q\n",
    'sinks/sink.ts': "import { q } from '../db/q.ts'\nexport interface Sink { n: typeof q }\n",
    'db/q.ts': 'export const q = 1\n'
  })
  t.same(findFolderCycles(root), [])
  const r = run(root)
  t.equal(r.status, 0, r.out)
  t.match(r.out, 'import cycles: none')
})

test('passes on src/', async (t) => {
  const r = run(src)
  t.equal(r.status, 0, r.out)
})

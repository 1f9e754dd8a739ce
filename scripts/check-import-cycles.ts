/**
 * Fails (exit 1) when the folders of a source tree import each other in a cycle, e.g.
 * `pipeline` imports `sinks` and `sinks` imports `pipeline`. A unit is a top-level folder of
 * the tree, or a file at its top level (`errors.ts`); type-only imports count, since they tie
 * the folders together as much as value imports do. Run by `npm run lint`.
 *
 *   node scripts/check-import-cycles.ts [root=src]
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

export interface ImportEdge {
  from: string
  to: string
  /** a file of `from` that imports a file of `to`, and that file (relative to the root) */
  example: { file: string, imports: string }
}

const sourceFile = /\.(?:[cm]?ts|tsx|[cm]?js)$/

function listFiles (dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...listFiles(p))
    else if (e.isFile() && sourceFile.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

function unitOf (root: string, file: string): string | null {
  const rel = relative(root, file)
  if (rel.startsWith('..')) return null
  return rel.split(sep)[0] as string
}

/** The edges between the units of `root`, one per ordered pair, with one example import each. */
export function folderEdges (root: string): ImportEdge[] {
  const edges = new Map<string, ImportEdge>()
  for (const file of listFiles(root)) {
    const from = unitOf(root, file) as string
    // preProcessFile finds static imports, re-exports, dynamic import('...') and require()
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue
      const target = resolve(dirname(file), fileName)
      const to = unitOf(root, target)
      if (to === null || to === from) continue
      const key = `${from}\u0000${to}`
      if (!edges.has(key)) edges.set(key, { from, to, example: { file: relative(root, file), imports: relative(root, target) } })
    }
  }
  return [...edges.values()]
}

/** The cycles between units: strongly connected components of two or more units (Tarjan). */
export function findFolderCycles (root: string): Array<{ units: string[], edges: ImportEdge[] }> {
  const edges = folderEdges(root)
  const next = new Map<string, string[]>()
  for (const e of edges) {
    next.set(e.from, [...(next.get(e.from) ?? []), e.to])
    if (!next.has(e.to)) next.set(e.to, [])
  }
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  let counter = 0
  const visit = (v: string): void => {
    index.set(v, counter); low.set(v, counter); counter++
    stack.push(v); onStack.add(v)
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
      }
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = []
      let w: string
      do { w = stack.pop() as string; onStack.delete(w); c.push(w) } while (w !== v)
      if (c.length > 1) components.push(c.sort())
    }
  }
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v)
  return components.map((units) => ({
    units,
    edges: edges.filter((e) => units.includes(e.from) && units.includes(e.to))
  }))
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? 'src')
  const cycles = findFolderCycles(root)
  if (cycles.length === 0) {
    const shown = relative(process.cwd(), root)
    process.stdout.write(`import cycles: none between the folders of ${shown === '' ? '.' : shown.startsWith('..') ? root : shown}\n`)
  } else {
    for (const c of cycles) {
      process.stderr.write(`import cycle between ${c.units.join(', ')}:\n`)
      for (const e of c.edges) process.stderr.write(`  ${e.from} -> ${e.to} (${e.example.file} imports ${e.example.imports})\n`)
    }
    process.exitCode = 1
  }
}

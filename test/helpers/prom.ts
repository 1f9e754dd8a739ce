// Reading a worker's Prometheus exposition in tests.
import type { Worker } from './worker-harness.ts'

/** The raw /metrics text of a worker. */
export async function scrape (w: Worker): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${w.port}/metrics`)
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return res.text()
}

/** The sample lines of `name` (exactly that name, any labels): labels and value. */
export function samples (text: string, name: string): Array<{ labels: Record<string, string>, value: number }> {
  const out: Array<{ labels: Record<string, string>, value: number }> = []
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null || m[1] !== name) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string
    out.push({ labels, value: Number(m[3]) })
  }
  return out
}

/** Sum of the samples of `name` whose labels include `match` (0 when there is none). */
export function metricSum (text: string, name: string, match: Record<string, string> = {}): number {
  let sum = 0
  for (const s of samples(text, name)) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value
  }
  return sum
}

/** Metric family names declared by `# TYPE` lines. */
export function families (text: string): Set<string> {
  const out = new Set<string>()
  for (const m of text.matchAll(/^# TYPE (\S+) /gm)) out.add(m[1] as string)
  return out
}

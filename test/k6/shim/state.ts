// What a shimmed k6 run records: samples per metric, plus the VU and iteration globals.
export interface Sample { value: number, tags: Record<string, string> }

export const metrics = new Map<string, { kind: 'trend' | 'rate' | 'counter', samples: Sample[] }>()

export function record (name: string, kind: 'trend' | 'rate' | 'counter', value: number, tags: Record<string, string> = {}): void {
  let m = metrics.get(name)
  if (m === undefined) metrics.set(name, m = { kind, samples: [] })
  m.samples.push({ value, tags })
}

/** Checks by name: passes and fails (k6 prints them the same way). */
export const checks = new Map<string, { passes: number, fails: number }>()

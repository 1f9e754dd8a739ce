// What the ingest benchmark runs, from SLUICE_BENCH_VARIANTS: one entry per `;`, each
// `[label=]kind [NAME=value ...]`, kind one of psql, psql-ids, bento, rdkafka, platformatic;
// the NAME=value pairs are extra environment for that worker (e.g. a sluice setting). psql is
// `psql \copy` of the rows sluice writes to the log; psql-ids the same plus, in the same
// transaction, `\copy` of their sluice_event_ids rows (what exactly once by event id costs
// PostgreSQL on top of the COPY).
//   SLUICE_BENCH_VARIANTS='psql; psql-ids; rdkafka; rdkafka-noproj=rdkafka SLUICE_PROJECTION=off; platformatic; bento'  (default)
//   SLUICE_BENCH_VARIANTS='psql; rdkafka; rdkafka-6=rdkafka SLUICE_FLUSH_CONCURRENCY=6; bento'

export type VariantKind = 'psql' | 'psql-ids' | 'bento' | 'rdkafka' | 'platformatic'

export interface Variant {
  label: string
  kind: VariantKind
  env: Record<string, string>
}

const KINDS = new Set<string>(['psql', 'psql-ids', 'bento', 'rdkafka', 'platformatic'])
export const DEFAULT_VARIANTS = 'psql; psql-ids; rdkafka; rdkafka-noproj=rdkafka SLUICE_PROJECTION=off; platformatic; bento'

export function parseVariants (spec: string): Variant[] {
  const out: Variant[] = []
  for (const entry of spec.split(';').map((e) => e.trim()).filter((e) => e !== '')) {
    const [head = '', ...rest] = entry.split(/\s+/)
    const eq = head.indexOf('=')
    const label = eq === -1 ? head : head.slice(0, eq)
    const kind = eq === -1 ? head : head.slice(eq + 1)
    if (!KINDS.has(kind)) throw new Error(`SLUICE_BENCH_VARIANTS: "${entry}": kind must be one of ${[...KINDS].join(', ')}`)
    if (isCopyBaseline(kind as VariantKind) && rest.length > 0) throw new Error(`SLUICE_BENCH_VARIANTS: "${entry}": ${kind} takes no settings`)
    const env: Record<string, string> = {}
    for (const kv of rest) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(kv)
      if (m === null) throw new Error(`SLUICE_BENCH_VARIANTS: "${entry}": "${kv}" is not NAME=value`)
      env[m[1] as string] = m[2] as string
    }
    if (out.some((v) => v.label === label)) throw new Error(`SLUICE_BENCH_VARIANTS: label "${label}" appears twice (name it: label=kind ...)`)
    out.push({ label, kind: kind as VariantKind, env })
  }
  if (out.length === 0) throw new Error('SLUICE_BENCH_VARIANTS is empty')
  return out
}

/** psql and psql-ids: \copy baselines, not consumers */
export function isCopyBaseline (kind: VariantKind): boolean {
  return kind === 'psql' || kind === 'psql-ids'
}

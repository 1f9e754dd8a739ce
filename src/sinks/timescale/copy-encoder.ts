/**
 * PostgreSQL COPY text format: columns separated by tabs, rows by newlines, NULL as \N, and
 * backslash, tab, newline and carriage return escaped with a backslash. Objects are written
 * as JSON (for json/jsonb columns). Everything else in a string (quotes, emoji, U+2028) is
 * literal in this format.
 */
const NEEDS_ESCAPE = /[\\\t\n\r]/

export function escapeCopyText (s: string): string {
  // the common case has nothing to escape: one regex test instead of four replaces
  if (!NEEDS_ESCAPE.test(s)) return s
  return s.replace(/[\\\t\n\r]/g, (c) => c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')
}

export function encodeCopyValue (v: unknown): string {
  if (v === null || v === undefined) return '\\N'
  switch (typeof v) {
    case 'string': return escapeCopyText(v)
    case 'number': return Number.isFinite(v) ? String(v) : '\\N'
    case 'bigint': return v.toString()
    case 'boolean': return v ? 't' : 'f'
    default: return escapeCopyText(JSON.stringify(v))
  }
}

/** One row, newline included. */
export function encodeCopyRow (values: readonly unknown[]): string {
  const parts = new Array<string>(values.length)
  for (let i = 0; i < values.length; i++) parts[i] = encodeCopyValue(values[i])
  // join gives one flat string; `+=` would keep a rope of ~30 pieces per buffered row (bench/copy-encoder.ts)
  return parts.join('\t') + '\n'
}

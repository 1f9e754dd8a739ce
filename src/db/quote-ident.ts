/** A PostgreSQL identifier (schema, table) quoted for SQL text: `a"b` -> `"a""b"`. */
export function quoteIdent (name: string): string {
  return '"' + name.replace(/"/g, '""') + '"'
}

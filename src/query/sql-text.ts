/**
 * Quoting of names and values spliced into SQL text that Strata itself generates
 * (DuckDB / PostgreSQL syntax: `"` doubles inside identifiers, `'` inside literals).
 */

/** `name` as a double-quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `value` as a single-quoted SQL string literal. */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * Arc's and InfluxDB's catalogue commands, answered from storage instead of DuckDB:
 * `SHOW DATABASES` and `SHOW TABLES [FROM db]` (alias `SHOW MEASUREMENTS`).
 *
 * These are commands, not SQL DuckDB could run over Parquet, so they get their own
 * tiny grammar: comments and a trailing `;` are ignored, keywords are
 * case-insensitive, the database may be a bare or double-quoted identifier.
 */
import { lineEnd } from './sql-text.js';

/** A recognised SHOW command. */
export type ShowCommand = { kind: 'databases' } | { kind: 'tables'; database: string | undefined };

const IDENT = String.raw`(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_\-.]*))`;
const SHOW = new RegExp(String.raw`^SHOW\s+(?:(DATABASES)|(?:TABLES|MEASUREMENTS)(?:\s+(?:FROM|ON)\s+${IDENT})?)$`, 'i');

/** Removes `--` line and `/* *\/` block comments outside quotes. */
function stripComments(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      i = lineEnd(sql, i);
      out += ' ';
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 1;
      out += ' ';
    } else out += c;
  }
  return out;
}

/** Returns the SHOW command `sql` is, or undefined for anything else (which goes to DuckDB). */
export function parseShowCommand(sql: string): ShowCommand | undefined {
  const text = stripComments(sql).trim().replace(/;\s*$/, '').trim().replace(/\s+/g, ' ');
  const m = SHOW.exec(text);
  if (m === null) return undefined;
  if (m[1] !== undefined) return { kind: 'databases' };
  const database = m[2] !== undefined ? m[2].replaceAll('""', '"') : m[3];
  return { kind: 'tables', database };
}

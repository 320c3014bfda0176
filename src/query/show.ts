/**
 * Arc's and InfluxDB's catalogue commands, answered from storage instead of DuckDB:
 * `SHOW DATABASES` and `SHOW TABLES [FROM db]` (alias `SHOW MEASUREMENTS`).
 *
 * These are commands, not SQL DuckDB could run over Parquet, so they get their own
 * tiny grammar: comments and a trailing `;` are ignored, keywords are
 * case-insensitive, the database may be a bare or double-quoted identifier.
 */
import { skipBlanks, turnUnicodeSpaces } from './sql-text.js';

/** A recognised SHOW command. */
export type ShowCommand = { kind: 'databases' } | { kind: 'tables'; database: string | undefined };

const IDENT = String.raw`(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_\-.]*))`;
const SHOW = new RegExp(String.raw`^SHOW\s+(?:(DATABASES)|(?:TABLES|MEASUREMENTS)(?:\s+(?:FROM|ON)\s+${IDENT})?)$`, 'i');

/** `sql` with its comments and whitespace outside quotes each made one space (`skipBlanks`). */
function stripComments(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length;) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop;
    } else {
      const next = skipBlanks(sql, i);
      out += next > i ? ' ' : c;
      i = next > i ? next : i + 1;
    }
  }
  return out;
}

/** Returns the SHOW command `sql` is, or undefined for anything else (which goes to DuckDB). */
export function parseShowCommand(sql: string): ShowCommand | undefined {
  const text = stripComments(turnUnicodeSpaces(sql)).trim().replace(/;\s*$/, '').trim().replace(/\s+/g, ' ');
  const m = SHOW.exec(text);
  if (m === null) return undefined;
  if (m[1] !== undefined) return { kind: 'databases' };
  const database = m[2] !== undefined ? m[2].replaceAll('""', '"') : m[3];
  return { kind: 'tables', database };
}

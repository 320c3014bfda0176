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

/**
 * `sql` up to the end of its last token: without the whitespace, `;` and comments after it
 * (`-- …` to the end of a line, `/* … *\/`, nested as DuckDB's PostgreSQL-derived parser
 * nests them). Quoted text is skipped whole, so a `;` or `--` inside it stays: strings
 * (`'…'`, `''` inside; `E'…'` with backslash escapes), quoted identifiers (`"…"`) and
 * dollar-quoted strings (`$tag$…$tag$`). For SQL DuckDB has parsed as one statement, whose
 * text is to be embedded in more SQL (a subquery) where a trailing `;` would not parse.
 */
export function withoutTrailing(sql: string): string {
  let end = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const newline = sql.indexOf('\n', i);
      i = newline === -1 ? sql.length : newline + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      i = afterBlockComment(sql, i);
    } else if (c === ';' || /\s/.test(c)) {
      i++;
    } else {
      i = afterToken(sql, i);
      end = i;
    }
  }
  return sql.slice(0, end);
}

function afterBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      i += 2;
      if (--depth === 0) return i;
    } else i++;
  }
  return i;
}

/** Where the token (a quoted text whole, else one character) at `start` ends. */
function afterToken(sql: string, start: number): number {
  const c = sql[start];
  if (c === "'" || c === '"') {
    // E'…': backslash escapes, unless the E ends a longer name (`namE'…'` is no E-string).
    const backslashes = c === "'" && /(^|[^\w$])[eE]$/.test(sql.slice(Math.max(0, start - 2), start));
    let i = start + 1;
    while (i < sql.length) {
      if (backslashes && sql[i] === '\\') i += 2;
      else if (sql[i] === c) {
        if (sql[i + 1] !== c) return i + 1;
        i += 2;
      } else i++;
    }
    return i;
  }
  // A `$` inside a name (`a$b`) starts no dollar quote.
  if (c === '$' && (start === 0 || !/[\w$]/.test(sql[start - 1]))) {
    const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(start, start + 256));
    if (tag !== null) {
      const close = sql.indexOf(tag[0], start + tag[0].length);
      return close === -1 ? sql.length : close + tag[0].length;
    }
  }
  return start + 1;
}

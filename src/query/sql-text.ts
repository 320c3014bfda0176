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
 * Where the line holding position `i` of `sql` ends: the index of the first `\n` or `\r`
 * from `i`, or `sql.length`. DuckDB's lexer (PostgreSQL's `scan.l`) ends a `--` comment at
 * either.
 */
function lineEnd(sql: string, i: number): number {
  for (; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return sql.length;
}

/**
 * Whitespace as DuckDB reads it: PostgreSQL's (` \t\n\r\f\v`), and the Unicode spaces
 * DuckDB's parser turns into plain ones outside quotes (`StripUnicodeSpaces`: no-break
 * spaces, en to hair spaces, ideographic space, the byte order mark).
 */
const BLANK = /[ \t\n\r\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff]/;

/** A character that continues a name: an ASCII letter, digit, `_` or `$`, or any non-ASCII character but a Unicode space. */
function inName(c: string | undefined): boolean {
  return c !== undefined && (/[\w$]/.test(c) || (c >= '\u0080' && !BLANK.test(c)));
}

/**
 * The first position from `i` that is not whitespace (`BLANK`) or inside a comment: `-- …`
 * to the end of a line (`lineEnd`), `/* … *\/` nested as DuckDB's PostgreSQL-derived parser
 * nests them.
 */
export function skipBlanks(sql: string, i: number): number {
  for (;;) {
    if (i < sql.length && BLANK.test(sql[i])) {
      i++;
    } else if (sql.startsWith('--', i)) {
      i = Math.min(sql.length, lineEnd(sql, i) + 1);
    } else if (sql.startsWith('/*', i)) {
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < sql.length);
    } else {
      return i;
    }
  }
}

/**
 * `sql` up to the end of its last token: without the whitespace, `;` and comments after it
 * (`skipBlanks`). Quoted text is skipped whole, so a `;` or `--` inside it stays: strings
 * (`'…'`, `''` inside; `E'…'` with backslash escapes), quoted identifiers (`"…"`) and
 * dollar-quoted strings (`$tag$…$tag$`). For SQL DuckDB has parsed as one statement, whose
 * text is to be embedded in more SQL (a subquery) where a trailing `;` would not parse.
 */
export function withoutTrailing(sql: string): string {
  let end = 0;
  for (let i = skipBlanks(sql, 0); i < sql.length; i = skipBlanks(sql, i)) {
    if (sql[i] === ';') {
      i++;
      continue;
    }
    i = afterToken(sql, i);
    end = i;
  }
  return sql.slice(0, end);
}

/** Where the token (a quoted text whole, else one character) at `start` ends. */
function afterToken(sql: string, start: number): number {
  const c = sql[start];
  if (c === "'" || c === '"') {
    // E'…': backslash escapes, unless the E ends a longer name (`namE'…'` is no E-string).
    const backslashes = c === "'" && (sql[start - 1] === 'E' || sql[start - 1] === 'e') && !inName(sql[start - 2]);
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
  // A `$` inside a name (`a$b`, `é$b`) starts no dollar quote.
  if (c === '$' && !inName(sql[start - 1])) {
    // A tag as PostgreSQL's lexer reads one: a name, where any non-ASCII character is a letter.
    const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(start, start + 256));
    // DuckDB reads a Unicode space in it as a space, so the tag ends before one.
    if (tag !== null && BLANK.test(tag[0])) return start + 1;
    if (tag !== null) {
      const close = sql.indexOf(tag[0], start + tag[0].length);
      return close === -1 ? sql.length : close + tag[0].length;
    }
  }
  return start + 1;
}

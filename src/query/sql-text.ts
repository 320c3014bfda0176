/**
 * Reading and writing SQL text beside DuckDB's parser: quoting of names and values spliced
 * into SQL Strata generates (DuckDB / PostgreSQL syntax: `"` doubles inside identifiers,
 * `'` inside literals), blanks and comments, and the Unicode spaces DuckDB turns.
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
 * Whitespace as DuckDB's lexer reads it (PostgreSQL's), in text whose Unicode spaces are
 * turned as DuckDB turns them first (`turnUnicodeSpaces`): any left are quoted, or
 * characters of a name.
 */
const BLANK = /[ \t\n\r\f\v]/;

/** A tag of a dollar-quoted string as DuckDB's pre-pass reads one: first an ASCII letter, `_` or any byte of a non-ASCII character, then also digits. */
const tagStarts = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b >= 0x80;
const tagGoesOn = (b: number): boolean => tagStarts(b) || (b >= 0x30 && b <= 0x39);

/**
 * `sql` as DuckDB parses it. Before lexing, DuckDB 1.5 turns each Unicode space (U+00A0,
 * U+2000 to U+200B, U+202F, U+205F, U+2060, U+3000, U+FEFF) into one ASCII space, except
 * where a pre-pass of its own (`Parser::StripUnicodeSpaces`, src/parser/parser.cpp) takes
 * the text for quoted (`'…'`, `"…"`, `$tag$…$tag$`) or for a `--` comment. That pre-pass
 * knows no block comment, escape string or name, so an apostrophe in a comment opens a
 * quote to it; it reads the UTF-8 bytes and stops two bytes before their end. All of this
 * is followed here, byte for byte, so that the text Strata splices and DuckDB's positions
 * in it (`query_location`) agree: on text DuckDB turned, its positions are those of the
 * turned text, and a name spliced at them in the original would be the wrong one.
 * Each space is one UTF-16 code unit turned into one: positions in the string stay.
 * Checked against DuckDB itself: parsing the result gives what parsing `sql` gives
 * (`sql-text.test.ts`).
 */
export function turnUnicodeSpaces(sql: string): string {
  // Every such space is outside ASCII: most SQL has nothing to turn.
  if (!/[\u00a0\u2000-\u200b\u202f\u205f\u2060\u3000\ufeff]/.test(sql)) return sql;
  const q = Buffer.from(sql, 'utf8');
  const n = q.length;
  const turned: number[] = [];
  let pos = 0;
  let state: 'code' | 'quoted' | 'dollar' | 'comment' = 'code';
  let quote = 0;
  let tag = Buffer.alloc(0);
  scan: for (;;) {
    switch (state) {
      case 'code':
        for (; pos + 2 < n; pos++) {
          const b = q[pos];
          if (b === 0xc2 && q[pos + 1] === 0xa0) turned.push(pos);
          if (b === 0xe2) {
            const [b1, b2] = [q[pos + 1], q[pos + 2]];
            if ((b1 === 0x80 && ((b2 >= 0x80 && b2 <= 0x8b) || b2 === 0xaf)) || (b1 === 0x81 && (b2 === 0x9f || b2 === 0xa0))) turned.push(pos);
          } else if (b === 0xe3) {
            if (q[pos + 1] === 0x80 && q[pos + 2] === 0x80) turned.push(pos);
          } else if (b === 0xef) {
            if (q[pos + 1] === 0xbb && q[pos + 2] === 0xbf) turned.push(pos);
          } else if (b === 0x22 || b === 0x27) {
            quote = b;
            pos++;
            state = 'quoted';
            continue scan;
          } else if (b === 0x24 && (q[pos + 1] === 0x24 || tagStarts(q[pos + 1]))) {
            const start = ++pos;
            for (; pos + 2 < n; pos++) {
              if (q[pos] === 0x24) {
                tag = q.subarray(start, pos);
                state = 'dollar';
                continue scan;
              }
              // Not a tag after all: this byte is read again as code.
              if (!tagGoesOn(q[pos])) continue scan;
            }
            break scan;
          } else if (b === 0x2d && q[pos + 1] === 0x2d) {
            state = 'comment';
            continue scan;
          }
        }
        break scan;
      case 'quoted':
        for (; pos + 1 < n; pos++) {
          if (q[pos] !== quote) continue;
          // A doubled quote is one quote character inside.
          if (q[pos + 1] === quote) {
            pos++;
            continue;
          }
          pos++;
          state = 'code';
          continue scan;
        }
        break scan;
      case 'dollar':
        for (; pos + 2 < n; pos++) {
          if (q[pos] === 0x24 && n - (pos + 1) >= tag.length + 1 && q[pos + tag.length + 1] === 0x24 && q.subarray(pos + 1, pos + 1 + tag.length).equals(tag)) {
            pos += tag.length + 1;
            state = 'code';
            continue scan;
          }
        }
        break scan;
      case 'comment':
        for (; pos < n; pos++) {
          if (q[pos] === 0x0a || q[pos] === 0x0d) {
            state = 'code';
            continue scan;
          }
        }
        break scan;
    }
  }
  if (turned.length === 0) return sql;
  // Byte offsets to string positions, in one walk: each turned space is one UTF-16 code unit.
  let out = '';
  let from = 0;
  let byte = 0;
  let next = 0;
  for (let i = 0; i < sql.length && next < turned.length; i++) {
    if (byte === turned[next]) {
      out += sql.slice(from, i) + ' ';
      from = i + 1;
      next++;
    }
    const c = sql.charCodeAt(i);
    // A surrogate pair is 4 bytes over two code units; a lone surrogate is written as U+FFFD, 3.
    const pair = c >= 0xd800 && c <= 0xdbff && (sql.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    byte += c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (pair) i++;
  }
  return out + sql.slice(from);
}

/** A character that continues a name: an ASCII letter, digit, `_` or `$`, or any non-ASCII character. */
function inName(c: string | undefined): boolean {
  return c !== undefined && (/[\w$]/.test(c) || c >= '\u0080');
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
 * `sql`, its Unicode spaces turned as DuckDB turns them (`turnUnicodeSpaces`), from its
 * first token to the end of its last: without the whitespace, `;` and comments before and
 * after them (`skipBlanks`). Quoted text is skipped whole, so a `;` or
 * `--` inside it stays: strings (`'…'`, `''` inside; `E'…'` with backslash escapes), quoted
 * identifiers (`"…"`) and dollar-quoted strings (`$tag$…$tag$`). For SQL DuckDB has parsed
 * as one statement, whose text is to be embedded in more SQL (a subquery) where a `;`
 * before or after it would not parse.
 */
export function bareStatement(userSql: string): string {
  const sql = turnUnicodeSpaces(userSql);
  let start = -1;
  let end = 0;
  for (let i = skipBlanks(sql, 0); i < sql.length; i = skipBlanks(sql, i)) {
    if (sql[i] === ';') {
      i++;
      continue;
    }
    if (start === -1) start = i;
    i = afterToken(sql, i);
    end = i;
  }
  return start === -1 ? '' : sql.slice(start, end);
}

/** A number as DuckDB's lexer reads one from where it starts: `2END` is `2` then `END`. */
const NUMBER = /[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * The tokens of `sql` as text, comments and whitespace skipped (`skipBlanks`): a number
 * (`NUMBER`), a name or keyword whole (a run of name characters), a quoted text whole
 * (`afterToken`), any other character alone. A lexer coarse enough for counting, not for
 * parsing; Unicode spaces are the caller's to turn first (`turnUnicodeSpaces`).
 */
export function* sqlTokens(sql: string): Generator<string> {
  for (let i = skipBlanks(sql, 0); i < sql.length; i = skipBlanks(sql, i)) {
    let end = afterToken(sql, i);
    if (end === i + 1 && sql[i] >= '0' && sql[i] <= '9') {
      NUMBER.lastIndex = i;
      NUMBER.test(sql);
      end = NUMBER.lastIndex;
    } else if (end === i + 1 && inName(sql[i])) {
      while (end < sql.length && inName(sql[end])) end++;
    }
    yield sql.slice(i, end);
    i = end;
  }
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
    if (tag !== null) {
      const close = sql.indexOf(tag[0], start + tag[0].length);
      return close === -1 ? sql.length : close + tag[0].length;
    }
  }
  return start + 1;
}

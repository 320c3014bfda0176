import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { bareStatement, turnUnicodeSpaces } from './sql-text.js';

test('bareStatement drops the semicolons, comments and whitespace before the first token and after the last, and keeps them inside quoted text', async () => {
  const cases: [string, string][] = [
    ['SELECT 1', 'SELECT 1'],
    ['; ;\n-- lead\n/* in */ SELECT 1;', 'SELECT 1'],
    ['SELECT 1;', 'SELECT 1'],
    ['SELECT 1 ;; \n', 'SELECT 1'],
    ['SELECT 1; -- the end', 'SELECT 1'],
    ['SELECT 1 -- a\n; /* b */ -- c', 'SELECT 1'],
    ['SELECT 1 /* outer /* nested */ still */;', 'SELECT 1'],
    ['SELECT 1 -- a comment\n  , 2;', 'SELECT 1 -- a comment\n  , 2'],
    ["SELECT ';--' AS s; -- x", "SELECT ';--' AS s"],
    ["SELECT 'it''s;' -- x", "SELECT 'it''s;'"],
    ["SELECT E'a\\';--' AS s;", "SELECT E'a\\';--' AS s"],
    ['SELECT 1 AS "a;--b";', 'SELECT 1 AS "a;--b"'],
    ['SELECT $$x;--$$;', 'SELECT $$x;--$$'],
    ['SELECT $q$ $$ ; $q$ -- end', 'SELECT $q$ $$ ; $q$'],
    ['SELECT 10 / 2 -- halves', 'SELECT 10 / 2'],
    // A `--` comment ends at a carriage return too, as DuckDB's lexer ends it.
    ['SELECT 1 AS a -- note\r, 2 AS b; -- end', 'SELECT 1 AS a -- note\r, 2 AS b'],
    // Dollar-quote tags may hold any non-ASCII character; a `$` inside a name starts none.
    ['SELECT $é$ -- $é$ AS s; -- end', 'SELECT $é$ -- $é$ AS s'],
    ['SELECT 1 AS a$b; -- $b$', 'SELECT 1 AS a$b'],
    ['SELECT 1 AS é$b; -- $b$', 'SELECT 1 AS é$b'],
    // Unicode spaces are turned as DuckDB turns them: before a dollar quote, and after the last token.
    ['SELECT\u00a0$$a;--$$ AS s;\u00a0-- end\u3000', 'SELECT $$a;--$$ AS s'],
    ["SELECT\u2003E'a\\';--' AS s", "SELECT E'a\\';--' AS s"],
  ];
  for (const [sql, expected] of [...cases, ['', ''], [' ; -- only\n', '']]) assert.equal(bareStatement(sql), expected, JSON.stringify(sql));
  // What is kept parses inside a subquery, and counts what DuckDB counts.
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    for (const [sql] of cases) {
      const rows = await conn.runAndReadAll(`SELECT count(*) FROM (\n${bareStatement(sql)}\n)`);
      assert.equal(Number(rows.getRows()[0][0]), 1, sql);
    }
  } finally {
    conn.closeSync();
  }
});

/**
 * Integers below n from a 32-bit linear congruential generator seeded with `seed` (the same
 * cases every run); the high bits, whose period is long. In doubles, `seed * 1103515245`
 * overflows 2^53 and such a generator falls into runs of zeros.
 */
function randomInts(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state >>> 8) % n;
  };
}

test('turnUnicodeSpaces turns the Unicode spaces DuckDB turns, and no others: DuckDB parses the result as it parses the text', async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const serialize = async (sql: string): Promise<string> => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql])).getRows()[0][0]);
  const spaces = ['\u00a0', '\u2000', '\u2005', '\u200b', '\u202f', '\u205f', '\u2060', '\u3000', '\ufeff', '\u1680'];
  const pieces = ["'", '"', '$', '$a$', '$$', '$_$', '$é$', '$9$', 'a$', '--', '\n', '\r', '/*', '*/', "E'\\''", "''", ' 1', ' AS ', 'x', 'é', '😀', ' FROM t', ',', '(', ')', ' ', ';', "'a'", '"q"'];
  const cases = [
    'SELECT 1\u3000\u3000 FROM t',
    "SELECT 'a\u3000b', \"c\u00a0d\", $$e\u2003f$$, $t$g\u3000h$t$ -- i\u3000j",
    // The pre-pass knows no block comment: the apostrophe opens a quote, which leaves the space in the string.
    "SELECT /* don't */ 'x\u00a0y'",
    // It stops two bytes before the end: a trailing no-break space (2 bytes) stays.
    'SELECT 1 AS x\u00a0',
    'SELECT 1 AS x\u3000',
    'SELECT $_x$ ; \ufeff$ \u3000',
  ];
  const random = randomInts(7);
  for (let k = 0; k < 400; k++) {
    let sql = 'SELECT ';
    for (let j = 2 + random(14); j > 0; j--) sql += random(3) === 0 ? spaces[random(spaces.length)] : pieces[random(pieces.length)];
    cases.push(sql);
  }
  try {
    for (const sql of cases) {
      const turned = turnUnicodeSpaces(sql);
      assert.equal(turned.length, sql.length);
      assert.equal(await serialize(turned), await serialize(sql), JSON.stringify(sql));
      assert.equal(turnUnicodeSpaces(turned), turned, `nothing left to turn: ${JSON.stringify(sql)}`);
    }
    assert.equal(turnUnicodeSpaces("SELECT 'a\u3000b'\u3000AS\u00a0c"), "SELECT 'a\u3000b' AS c");
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
});

test('turnUnicodeSpaces leaves no space DuckDB turns: DuckDB\'s position of a reference after text its pre-pass reads is the reference\'s position in the turned text', async () => {
  // Comparing parses (the test above) cannot see a space both sides leave to DuckDB to turn;
  // a position can. The text sits in a block comment: DuckDB's lexer skips it, its pre-pass
  // (which knows no block comment) reads it.
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const spaces = ['\u00a0', '\u2000', '\u200b', '\u202f', '\u205f', '\u2060', '\u3000', '\ufeff'];
  const pieces = ["'", '"', '$', '$a$', '$$', '$_$', '$é$', '--', '\n', '\r', "E'\\''", "''", ' ', 'x', 'é', '😀', ';', '*', '/'];
  const random = randomInts(11);
  try {
    for (let k = 0; k < 300; k++) {
      let text = '';
      for (let j = 1 + random(12); j > 0; j--) text += random(2) === 0 ? spaces[random(spaces.length)] : pieces[random(pieces.length)];
      // A `/*` or `*/` made of the pieces would nest or end the comment.
      text = text.replaceAll('/*', '/ *').replaceAll('*/', '* /');
      const turned = turnUnicodeSpaces(`SELECT 1 /* ${text} */ FROM sentinel`);
      const parsed = JSON.parse(String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [turned])).getRows()[0][0])) as
        { statements: { node: { from_table: { query_location: number } } }[] };
      assert.equal(parsed.statements[0].node.from_table.query_location, Buffer.byteLength(turned.slice(0, turned.lastIndexOf('sentinel'))), JSON.stringify(text));
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
});

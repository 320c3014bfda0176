import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { withoutTrailing } from './sql-text.js';

test('withoutTrailing drops the semicolons, comments and whitespace after the last token, and keeps them inside quoted text', async () => {
  const cases: [string, string][] = [
    ['SELECT 1', 'SELECT 1'],
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
    // Unicode spaces are whitespace to DuckDB, outside quotes: before a dollar quote, and after the last token.
    ['SELECT\u00a0$$a;--$$ AS s;\u00a0-- end\u3000', 'SELECT\u00a0$$a;--$$ AS s'],
    ["SELECT\u2003E'a\\';--' AS s", "SELECT\u2003E'a\\';--' AS s"],
    ['', ''],
  ];
  for (const [sql, expected] of cases) assert.equal(withoutTrailing(sql), expected, JSON.stringify(sql));
  // What is kept parses inside a subquery, and counts what DuckDB counts.
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    for (const [sql] of cases.slice(0, -1)) {
      const rows = await conn.runAndReadAll(`SELECT count(*) FROM (\n${withoutTrailing(sql)}\n)`);
      assert.equal(Number(rows.getRows()[0][0]), 1, sql);
    }
  } finally {
    conn.closeSync();
  }
});

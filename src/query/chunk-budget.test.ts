import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { ResultTooLargeError } from '../errors.js';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn, type DecimalMode } from './chunk-columns.js';

let conn: DuckDBConnection;

before(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => conn.closeSync());

/** Reads every chunk of `sql` as the query service does (one budget per chunk, JSON's `exact` reads or Arrow's); resolves to the rows read, or rejects as the budget does. */
async function readAll(sql: string, mode: DecimalMode = 'exact'): Promise<number> {
  const result = await conn.stream(sql);
  const names = result.columnNames();
  const types = result.columnTypes();
  let rows = 0;
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    const budget = new ChunkBudget(names, chunk.rowCount);
    types.forEach((t, i) => readColumn(chunk!, i, t, mode, budget));
    rows += chunk.rowCount;
  }
  return rows;
}

/** Asserts that reading `sql` fails with a ResultTooLargeError whose message matches `message`. */
async function refused(sql: string, message: RegExp, mode: DecimalMode = 'exact'): Promise<void> {
  await assert.rejects(readAll(sql, mode), (err: unknown) => err instanceof ResultTooLargeError && err.statusCode === 422 && message.test(err.message));
}

test('values: every row, element and field of a chunk counts, up to 1,000,000', async () => {
  // 2,048 rows + 2,048 × 487 elements = 999,424 values; one element more per row is over.
  assert.equal(await readAll('SELECT range(487) AS l FROM range(2048)'), 2048);
  await refused('SELECT range(488) AS l FROM range(2048)', /^result column "l" is too large to send: at least 1,001,472 values .* in one chunk of 2,048 rows, over the 1,000,000/);
  // ARRAY, STRUCT, MAP (a list of key/value structs: counting stops within it, at the keys), LIST within STRUCT.
  await refused('SELECT range(1000)::BIGINT[1000] AS a FROM range(1000)', /^result column "a" .*: at least 1,001,000 values/);
  await refused("SELECT {'k': range(500)} AS s FROM range(2048)", /^result column "s" .*: at least 1,028,096 values/);
  await refused('SELECT map_from_entries(list_transform(range(300), x -> (x, x))) AS m FROM range(2048)', /^result column "m" .*: at least 1,230,848 values/);
  // Columns add up; the one that crosses the bound is named.
  await refused('SELECT range(300) AS a, range(300) AS b FROM range(2048)', /^result column "b" .*: at least 1,232,896 values/);
  // A single row of many values.
  await refused('SELECT range(2000000) AS one', /^result column "one" .*: at least 2,000,001 values .* in one chunk of 1 row,/);
});

test('a filtered or limited result counts only the elements of the rows it holds', async () => {
  // The rows' lists hold 10 M elements before the filter: DuckDB's streamed chunks keep only those referenced.
  assert.equal(await readAll('SELECT l FROM (SELECT range(5000) AS l, i FROM range(2048) t(i)) WHERE i % 16 = 3'), 128);
  assert.equal(await readAll('SELECT range(5000) AS l FROM range(2048) LIMIT 150 OFFSET 1000'), 150);
});

test('text: characters within nested values up to 16,000,000 (a BLOB byte counts 4, a BIT byte 8), VARCHAR columns up to 128 MiB per chunk', async () => {
  assert.equal(await readAll("SELECT [repeat('x', 7811), 'y'] AS l FROM range(2048)"), 2048);
  await refused("SELECT [repeat('x', 7813), NULL] AS l FROM range(2048)", /^result column "l" .*: at least 16,001,024 characters of text within its values .* over the 16,000,000 .*CAST\(l AS VARCHAR\)/);
  await refused("SELECT repeat('x', 2000)::BLOB AS b FROM range(2048)", /^result column "b" .*: at least 16,384,000 characters/);
  await refused("SELECT [repeat('1', 8000)::BIT] AS b FROM range(2048)", /^result column "b" .*: at least 16,400,384 characters/);
  await refused("SELECT union_value(s := repeat('x', 8000))::UNION(n INTEGER, s VARCHAR) AS u FROM range(2048)", /^result column "u" .*: at least 16,384,000 characters/);
  // NULLs hold no bytes.
  assert.equal(await readAll("SELECT [CASE WHEN i % 2 = 0 THEN repeat('x', 15000) END] AS l FROM range(2048) t(i)"), 2048);
  assert.equal(await readAll("SELECT repeat('x', 65536) AS s FROM range(2048)"), 2048);
  await refused("SELECT repeat('x', 65537) AS s FROM range(2048)", /^result column "s" .*: at least 134,219,776 bytes of text in one chunk of 2,048 rows, over the 134,217,728 \(128 MiB\) .*left\(s, n\)/);
});

test('Arrow reads: a nested column counts its values and text as in JSON, a BLOB column its bytes as VARCHAR does', async () => {
  assert.equal(await readAll('SELECT range(487) AS l FROM range(2048)', 'arrow'), 2048);
  await refused('SELECT range(488) AS l FROM range(2048)', /^result column "l" .*: at least 1,001,472 values/, 'arrow');
  await refused("SELECT {'s': [repeat('x', 7813), NULL]} AS s FROM range(2048)", /^result column "s" .*: at least 16,001,024 characters/, 'arrow');
  // 4 MB of bytes a chunk: over the bound of text in JSON (`\xNN`), sent as they are in Arrow, up to 128 MiB.
  assert.equal(await readAll("SELECT repeat('x', 2000)::BLOB AS b FROM range(2048)", 'arrow'), 2048);
  await refused("SELECT repeat('x', 66000)::BLOB AS b FROM range(2048)", /^result column "b" .*: at least 135,168,000 bytes of text/, 'arrow');
});

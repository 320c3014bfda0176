/**
 * The text of nested values in CSV and Arrow (`nested-text.ts`, through `readColumn` and
 * `cellText`) is DuckDB's own `CAST(v AS VARCHAR)`, value by value.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn } from './chunk-columns.js';
import { cellText } from './json-result.js';

let conn: DuckDBConnection;

before(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
  // Strata's DuckDB runs in UTC (TIMESTAMPTZ text is in the session zone).
  await conn.run("SET TimeZone = 'UTC'");
});

after(() => conn.closeSync());

/** For each row of `sql` (columns `v`, nested, and `t`, DuckDB's text of it): Strata's text of `v` and `t`. */
async function texts(sql: string): Promise<[string, string][]> {
  const result = await conn.stream(sql);
  const types = result.columnTypes();
  const out: [string, string][] = [];
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    const budget = new ChunkBudget(result.columnNames(), chunk.rowCount);
    const [v, t] = types.map((type, i) => readColumn(chunk!, i, type, 'exact', budget));
    for (let r = 0; r < chunk.rowCount; r++) out.push([cellText(v, r, 'csv'), cellText(t, r, 'csv')]);
  }
  return out;
}

const lit = (s: string): string => `'${s.replaceAll("'", "''")}'`;

const STRINGS = ['a', '', ' a', 'a ', 'a b', 'NULL', 'null', 'Null', "it's", 'back\\slash', 'q"uote', 'a:b', 'a=b', '(x)', '[x]', '{x}',
  'a,b', '\ta', 'a\n', 'a\nb', '\ra', 'a\u000b', 'é', 'x\\', "'", "\\'", 'nan', '-', '\u00a0a', '日本'];

const EXPRESSIONS = [
  ...STRINGS.map((s) => `[${lit(s)}]`),
  ...STRINGS.map((s) => `{'k': ${lit(s)}, ${lit(s === '' ? 'e' : s)}: 1}`),
  ...STRINGS.map((s) => `MAP {${lit(s)}: ${lit(s)}}`),
  ...STRINGS.map((s) => `row(${lit(s)}, 1)`),
  "[1.0::DOUBLE, 0.1, 1e-5, 1e-4, 0.00012, 123456789012345678.0, 1e15, 1e16, 1.5e16, '-0.0'::DOUBLE, 'nan'::DOUBLE, 'inf'::DOUBLE, '-inf'::DOUBLE, 1.5e-7, 12345.678, -2.5e-300, 1.7976931348623157e308]",
  "[1.1::FLOAT, 1e20::FLOAT, 3.0::FLOAT, 'nan'::FLOAT, '-inf'::FLOAT, 1e-10::FLOAT, 16777216::FLOAT, 0.3::FLOAT]",
  "[DATE '2024-01-01', 'infinity'::DATE, '-infinity'::DATE, DATE '0044-03-15', DATE '-0044-03-15', DATE '0001-01-01', DATE '9999-12-31']",
  "[TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 01:02:03.000120', 'infinity'::TIMESTAMP, '-infinity'::TIMESTAMP, TIMESTAMP '0001-01-01 00:00:00' - INTERVAL 1 DAY, TIMESTAMP '1969-12-31 23:59:59.999999']",
  "[TIMESTAMPTZ '2024-01-01 01:02:03.5+00', 'infinity'::TIMESTAMPTZ, TIMESTAMPTZ '1900-06-01 00:00:00+00']",
  "[TIMESTAMP_NS '2024-01-01 01:02:03.000000001', 'infinity'::TIMESTAMP_NS, TIMESTAMP_NS '1960-01-01 00:00:00.5']",
  "[TIMESTAMP_MS '2024-01-01 01:02:03.123', 'infinity'::TIMESTAMP_MS, '-infinity'::TIMESTAMP_MS]",
  "[TIMESTAMP_S '2024-01-01 01:02:03', '-infinity'::TIMESTAMP_S]",
  "[TIME '01:02:03.5', TIME '23:59:59.999999']",
  "[INTERVAL '1 day 2 hours', INTERVAL '-3 months 1 microsecond']",
  "['abc'::BLOB, '\\xFF,'::BLOB, 'a b'::BLOB]",
  // A backslash byte is escaped (`\x5C`), or the four bytes `\x41` would read as the one byte `A`.
  "['\\x5Cx41'::BLOB, 'q''\"z'::BLOB, '\\x00\\x1F ~\\x7F\\xFF'::BLOB]",
  "[uuid '00000000-0000-0000-0000-000000000001']",
  '[1.50::DECIMAL(4,2), -0.5::DECIMAL(4,2)]', '[12345678901234567890123::HUGEINT]', '[1::TINYINT, -2::SMALLINT]', '[true, false, NULL]',
  "['a b,'::ENUM('a b,', 'c')]", '[\'{"a":1}\'::JSON]',
  '[[1, 2], [], NULL, [NULL]]', "[{'a': [1], 'b': NULL}]", "{'a': {'b': [row(1, 'x,y')]}}", "MAP {DATE '2024-01-01': [1.5], 'infinity'::DATE: NULL}",
  "MAP {[1, 2]: 'x'}", "[union_value(k := 'a,b'), union_value(k := '')]", "union_value(n := [1.0::DOUBLE])::UNION(n DOUBLE[], s VARCHAR)",
  "row(5, row(6, 7))", "[row(1, 'a'), NULL, row(2, NULL)]", 'array_value(row(1, 2), row(3, 4))', "MAP {'k': row(1, 2), 'n': NULL}",
  "[MAP {'k': row(5, 6)}]", "MAP {row(1, 'a b'): 'x'}", "union_value(t := row(1, 'a,b'))", "[row(1, [row(2, 3)]), NULL]",
  "row(NULL, row(NULL, 'x'))", "'x'::VARIANT", "'it''s, a'::VARIANT", '42::VARIANT', "[1.5::DOUBLE, 1e-5]::VARIANT", "{'a': 's', 'b': [1.5, NULL]}::VARIANT",
  "TIMESTAMP '2026-01-01 00:00:01'::VARIANT", "'infinity'::DATE::VARIANT", "[1, 'a b,'::VARIANT, NULL::VARIANT]", "{'v': 'x'::VARIANT}", "{'s': [row(1.5::DOUBLE, DATE '2024-01-01')]}", "array_value(array_value(row(1, 2)))", "[1, 2]::INTEGER[2]", "[[1.5::DOUBLE, 2.0]]::DOUBLE[2][1]",
];

test('nested values print as DuckDB\'s CAST(v AS VARCHAR): quoting, doubles, floats, dates, timestamps of every unit, infinities, BC, unnamed STRUCTs, VARIANTs', async () => {
  for (const e of EXPRESSIONS) {
    const [[mine, duck]] = await texts(`SELECT ${e} AS v, (${e})::VARCHAR AS t`);
    assert.equal(mine, duck, e);
  }
});

test('a BLOB column prints as DuckDB\'s CAST(v AS VARCHAR) too, in CSV and (as a string) in JSON', async () => {
  for (const e of ["'\\x5Cx41'::BLOB", "'q''\"z'::BLOB", "'\\x00\\x1F ~\\x7F\\xFF'::BLOB", "''::BLOB"]) {
    const [[mine, duck]] = await texts(`SELECT ${e} AS v, (${e})::VARCHAR AS t`);
    assert.equal(mine, duck, e);
  }
});

test('random doubles and floats in a list print as DuckDB prints them', async () => {
  const rows = await texts(`SELECT [x, -x, x::FLOAT] AS v, [x, -x, x::FLOAT]::VARCHAR AS t
    FROM (SELECT pow(10, random() * 60 - 30) * random() AS x FROM range(5000))`);
  assert.equal(rows.length, 5000);
  for (const [mine, duck] of rows) assert.equal(mine, duck);
});

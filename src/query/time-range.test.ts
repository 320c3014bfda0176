/**
 * Time bounds read without DuckDB, checked against DuckDB itself: pruning trusts them
 * without asking it, so a bound read differently here would silently drop rows.
 * - `readTimestampLiteral`: for every literal it reads, the instant must be exactly
 *   DuckDB's `CAST(literal AS TIMESTAMPTZ)` in the UTC session zone Strata runs with.
 * - `timeBounds`: for every bound that carries `micros`, DuckDB evaluating the bound's
 *   own SQL (`boundSql`) must give the same instant, whatever casts surround the literal.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { analyzeSql } from './sql-rewriter.js';
import { quoteLiteral } from './sql-text.js';
import { boundSql, readTimestampLiteral, timeBounds } from './time-range.js';

let conn: DuckDBConnection;

before(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
  await conn.run("SET TimeZone = 'UTC'");
});

after(() => conn.closeSync());

async function duckMicros(expression: string): Promise<unknown> {
  return (await conn.runAndReadAll(`SELECT epoch_us(CAST((${expression}) AS TIMESTAMPTZ))`)).getRows()[0][0];
}

const READ = [
  '2026-01-01T06:00:00Z',
  '2026-01-01 06:00:00',
  '2026-01-01',
  '2026-01-01T23:59:59.999999Z',
  '2026-01-01T23:59:59.5',
  '2026-01-01T00:00:00.000123+00:00',
  '2026-03-01T01:30:00+05:30',
  '2026-03-01T01:30:00-0800',
  '2026-03-01T01:30:00+02',
  '2024-02-29T12:00:00Z',
  '1970-01-01T00:00:00Z',
  '1969-12-31T23:59:59.999999Z',
  '0100-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
];

for (const text of READ) {
  test(`${text} reads as DuckDB reads it`, async () => {
    const expected = await duckMicros(quoteLiteral(text));
    assert.equal(typeof expected, 'bigint');
    assert.equal(readTimestampLiteral(text)?.micros, Number(expected));
  });
}

// Left to DuckDB: other forms, zone names, impossible dates, years Date.UTC would misread,
// an offset on a date without a time (DuckDB refuses it).
const LEFT = [
  '2026-02-30', '2026-13-01', '2026-01-01T24:00:00Z', '2026-01-01T06:00Z', '2026-01-01T06:00:00.1234567Z',
  '2026-01-01T06:00:00 UTC', '2026-01-01T06:00:00+25:00', '0099-01-01', 'now', '1767225600', ' 2026-01-01', '',
  '2026-01-01Z', '2026-01-01+05',
];

for (const text of LEFT) {
  test(`${JSON.stringify(text)} is left to DuckDB`, () => {
    assert.equal(readTimestampLiteral(text), undefined);
  });
}

// Bounds as queries write them; in each, every bound read here must agree with DuckDB.
const WHERE = [
  "time >= '2026-01-01T06:00:00-08:00'",
  "time >= TIMESTAMP '2026-01-01T06:00:00-08:00'",
  "time >= '2026-01-01T06:00:00+05:30'::TIMESTAMP",
  "time >= CAST(CAST('2026-01-01T06:00:00+05:30' AS TIMESTAMP) AS TIMESTAMPTZ)",
  "time >= CAST(CAST('2026-01-01T06:00:00+05:30' AS TIMESTAMP) AS VARCHAR)",
  "time >= CAST(CAST('2026-01-01T06:00:00+05:30' AS VARCHAR) AS TIMESTAMP)",
  "time >= TIMESTAMPTZ '2026-01-01T06:00:00-08:00'",
  "time >= TIMESTAMP '2026-01-01T06:00:00Z' AND time < TIMESTAMP '2026-01-01 07:00:00'",
  "time BETWEEN '2026-01-01' AND DATE '2026-01-02'",
  "time >= CAST('2026-01-01T23:00:00+02:00' AS DATE)",
];

for (const where of WHERE) {
  test(`bounds read without DuckDB agree with it: ${where}`, async () => {
    const parser = { serialize: async (sql: string) => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql])).getRows()[0][0]) };
    const analyzed = await analyzeSql(`SELECT * FROM cpu WHERE ${where}`, 'db', parser);
    const bounds = timeBounds(analyzed.statement, analyzed.occurrences[0]);
    assert.ok(bounds.length > 0, 'the bound is understood');
    for (const bound of bounds) {
      if (bound.micros === undefined) continue;
      const expected = (await conn.runAndReadAll(`SELECT ${boundSql(bound)}`)).getRows()[0][0];
      assert.equal(bound.micros, Number(expected), bound.sql);
    }
  });
}

test('an offset a TIMESTAMP cast would drop is not read here', async () => {
  const parser = { serialize: async (sql: string) => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql])).getRows()[0][0]) };
  const analyzed = await analyzeSql("SELECT * FROM cpu WHERE time >= TIMESTAMP '2026-01-01T06:00:00-08:00'", 'db', parser);
  assert.deepEqual(timeBounds(analyzed.statement, analyzed.occurrences[0]).map((b) => b.micros), [undefined]);
});

test('a lower bound that falls as the clock advances does not prune', async () => {
  const parser = { serialize: async (sql: string) => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql])).getRows()[0][0]) };
  // Evaluated while planning, before the query's own now(): the query's bound is lower.
  for (const where of [
    "time >= TIMESTAMP '2030-01-01' - (now() - TIMESTAMP '2026-01-01')",
    'time >= epoch_ms(CAST(4000000000000 AS BIGINT) - epoch_ms(now()))',
    'time >= to_timestamp(-epoch_ms(current_timestamp))',
  ]) {
    const analyzed = await analyzeSql(`SELECT * FROM cpu WHERE ${where}`, 'db', parser);
    assert.deepEqual(timeBounds(analyzed.statement, analyzed.occurrences[0]), [], where);
  }
  const rising = await analyzeSql("SELECT * FROM cpu WHERE time >= now() - INTERVAL '1 hour'", 'db', parser);
  assert.equal(timeBounds(rising.statement, rising.occurrences[0]).length, 1);
});

test('a clock word is a bound only where no column or select-list alias of that name can be in scope', async () => {
  const parser = { serialize: async (sql: string) => String((await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql])).getRows()[0][0]) };
  const alone = await analyzeSql('SELECT * FROM cpu WHERE time >= current_date', 'db', parser);
  assert.deepEqual(timeBounds(alone.statement, alone.occurrences[0]).map((b) => b.clockWord), [true]);
  // DuckDB binds the word to a column of a join partner or to a select-list alias, RENAME included, before the clock.
  for (const sql of [
    'SELECT * FROM cpu, w WHERE cpu.time >= current_timestamp',
    "SELECT DATE '2026-01-01' AS current_date, time FROM cpu WHERE time >= current_date",
    'SELECT * RENAME (d AS "Current_Date") FROM cpu WHERE time >= CAST(current_date AS DATE)',
  ]) {
    const analyzed = await analyzeSql(sql, 'db', parser);
    assert.deepEqual(timeBounds(analyzed.statement, analyzed.occurrences[0]), [], sql);
  }
});

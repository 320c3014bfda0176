/**
 * `timestampLiteralMicros` against DuckDB itself: for every literal it reads, the
 * instant must be exactly DuckDB's `CAST(literal AS TIMESTAMPTZ)` in the UTC session
 * zone Strata runs with, since pruning relies on it without asking DuckDB.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { quoteLiteral } from './sql-text.js';
import { timestampLiteralMicros } from './time-range.js';

let conn: DuckDBConnection;

before(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
  await conn.run("SET TimeZone = 'UTC'");
});

after(() => conn.closeSync());

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
    const expected = (await conn.runAndReadAll(`SELECT epoch_us(CAST(${quoteLiteral(text)} AS TIMESTAMPTZ))`)).getRows()[0][0];
    assert.equal(typeof expected, 'bigint');
    assert.equal(timestampLiteralMicros(text), Number(expected));
  });
}

// Left to DuckDB: other forms, zone names, impossible dates, years Date.UTC would misread.
const LEFT = [
  '2026-02-30', '2026-13-01', '2026-01-01T24:00:00Z', '2026-01-01T06:00Z', '2026-01-01T06:00:00.1234567Z',
  '2026-01-01T06:00:00 UTC', '2026-01-01T06:00:00+25:00', '0099-01-01', 'now', '1767225600', ' 2026-01-01', '',
];

for (const text of LEFT) {
  test(`${JSON.stringify(text)} is left to DuckDB`, () => {
    assert.equal(timestampLiteralMicros(text), undefined);
  });
}

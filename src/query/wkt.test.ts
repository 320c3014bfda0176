/**
 * GEOMETRY values print as DuckDB's `CAST(g AS VARCHAR)` (WKT, `wkt.ts`), read from the
 * WKB node-api hands over: alone and nested, in CSV and Arrow text (`cellText`) and in JSON.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn } from './chunk-columns.js';
import { cellText } from './json-result.js';
import { wkt } from './wkt.js';

let conn: DuckDBConnection;

before(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
});

after(() => conn.closeSync());

const SHAPES = [
  'POINT(1 2)', 'POINT Z (1 2 3)', 'POINT M (1 2 4)', 'POINT ZM (1 2 3 4)', 'POINT EMPTY', 'POINT(-0.5 1e-7)', 'POINT(123456789012345678 1e20)',
  'LINESTRING(0 0, 1.5 1e20, 0.1 -3)', 'LINESTRING EMPTY', 'LINESTRING Z (0 0 1, 1 1 2)',
  'POLYGON((0 0, 1 0, 1 1, 0 0), (0.2 0.2, 0.3 0.2, 0.3 0.3, 0.2 0.2))', 'POLYGON EMPTY',
  'MULTIPOINT((1 2), (3 4))', 'MULTIPOINT Z ((1 2 3))', 'MULTIPOINT EMPTY', 'MULTILINESTRING((0 0, 1 1), (2 2, 3 3))',
  'MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))', 'MULTIPOLYGON EMPTY',
  'GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1), GEOMETRYCOLLECTION(POINT EMPTY))', 'GEOMETRYCOLLECTION EMPTY',
];

/** Each row of `sql` (columns `v` and `t`, DuckDB's text of `v`): Strata's CSV text of `v`, its JSON, and `t`. */
async function texts(sql: string): Promise<[string, string, string][]> {
  const result = await conn.stream(sql);
  const types = result.columnTypes();
  const out: [string, string, string][] = [];
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    const budget = new ChunkBudget(result.columnNames(), chunk.rowCount);
    const [v, t] = types.map((type, i) => readColumn(chunk!, i, type, 'exact', budget));
    for (let r = 0; r < chunk.rowCount; r++) out.push([cellText(v, r, 'csv'), cellText(v, r, 'json'), cellText(t, r, 'csv')]);
  }
  return out;
}

test('a GEOMETRY prints as DuckDB casts it to VARCHAR (WKT), in CSV and Arrow text and as a JSON string', async () => {
  for (const shape of SHAPES) {
    const [[csv, json, duck]] = await texts(`SELECT '${shape}'::GEOMETRY AS v, CAST('${shape}'::GEOMETRY AS VARCHAR) AS t`);
    assert.equal(csv, duck, shape);
    assert.equal(json, JSON.stringify(duck), shape);
  }
});

test('GEOMETRY inside a LIST and a STRUCT prints as DuckDB prints it there', async () => {
  const [[csv, , duck]] = await texts("SELECT ['POINT(1 2)'::GEOMETRY, NULL] AS v, CAST(['POINT(1 2)'::GEOMETRY, NULL] AS VARCHAR) AS t");
  assert.equal(csv, duck);
  const [[structCsv, structJson, structDuck]] = await texts("SELECT {'g': 'LINESTRING(0 0, 1 1)'::GEOMETRY} AS v, CAST({'g': 'LINESTRING(0 0, 1 1)'::GEOMETRY} AS VARCHAR) AS t");
  assert.equal(structCsv, structDuck);
  assert.equal(structJson, '{"g":"LINESTRING (0 0, 1 1)"}');
});

test('bytes that are not WKB (truncated, an unknown type, left over) give no WKT', () => {
  const point = Buffer.from('0101000000000000000000f03f0000000000000040', 'hex');
  assert.equal(wkt(point, String), 'POINT (1 2)');
  assert.equal(wkt(point.subarray(0, 12), String), undefined);
  assert.equal(wkt(Buffer.concat([point, Buffer.from([0])]), String), undefined);
  assert.equal(wkt(Buffer.from('0109000000', 'hex'), String), undefined);
  // Big-endian, with PostGIS's EWKB Z flag and an SRID.
  const ewkb = Buffer.from('00a0000001000010e63ff000000000000040000000000000004008000000000000', 'hex');
  assert.equal(wkt(ewkb, String), 'POINT Z (1 2 3)');
});

/**
 * `createSnapshotTable` reuses one DataChunk for every 2,048-row step and writes a
 * validity mask only for steps that hold NULLs, so a step without NULLs must not
 * inherit the NULLs of the step before it. Checked by reading every row back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { BufferSnapshot } from '../buffer/measurement-buffer.js';
import { createSnapshotTable } from './snapshot-table.js';

let db: DuckDBInstance;
let conn: DuckDBConnection;

before(async () => {
  db = await DuckDBInstance.create(':memory:');
  conn = await db.connect();
});

after(() => {
  conn.closeSync();
  db.closeSync();
});

test('NULLs of one chunk do not leak into the next', async () => {
  // Chunk 1 (rows 0–2047) has NULLs, chunk 2 (2048–4095) none, chunk 3 (4096–4999) NULLs again.
  const rows = 5000;
  const isNull = (row: number): boolean => (row < 2048 ? row % 3 === 0 : row >= 4096 && row % 5 === 0);
  const time = new Float64Array(rows);
  const codes = new Uint32Array(rows);
  const valid = new Uint8Array(rows);
  const values = new Float64Array(rows);
  const strings: string[] = [];
  for (let row = 0; row < rows; row++) {
    time[row] = row;
    codes[row] = isNull(row) ? 0 : 1 + (row % 2);
    valid[row] = isNull(row) ? 0 : 1;
    values[row] = isNull(row) ? 0 : row / 4;
    strings.push(isNull(row) ? '' : `s${row}`);
  }
  const snapshot: BufferSnapshot = {
    database: 'db', measurement: 'm', rowCount: rows, time, bytes: 0, lsns: [],
    tags: [{ name: 'host', codes, dictionary: ['a', 'b'] }],
    fields: [
      { name: 'f', type: 'float64', valid, values },
      { name: 's', type: 'string', valid, values: strings },
    ],
  };
  assert.deepEqual(await createSnapshotTable(conn, 'snap', snapshot), ['host']);
  const reader = await conn.runAndReadAll('SELECT epoch_us(time)::DOUBLE, host::VARCHAR, f, s FROM snap ORDER BY time');
  const expected = Array.from({ length: rows }, (_, row) => (isNull(row)
    ? [row, null, null, null]
    : [row, row % 2 === 0 ? 'a' : 'b', row / 4, `s${row}`]));
  assert.deepStrictEqual(reader.getRows(), expected);
});

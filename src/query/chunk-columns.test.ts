import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import duckdb from '@duckdb/node-bindings';
import { DuckDBInstance } from '@duckdb/node-api';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn } from './chunk-columns.js';

test('vector_get_data and vector_get_validity return copies, which readColumn keeps without copying again', async () => {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    // 300 labels: stored as 2-byte indexes.
    await conn.run("CREATE TYPE label AS ENUM (SELECT 'v' || i FROM range(300) t(i))");
    const result = await conn.stream("SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE (i * 1.5)::DOUBLE END AS v, (i % 4)::INTEGER AS k, ('v' || (i % 300))::label AS e FROM range(5000) t(i)");
    const types = result.columnTypes();
    const chunk = (await result.fetchChunk())!;
    const vector = duckdb.data_chunk_get_vector(chunk.chunk, 0);
    const a = duckdb.vector_get_data(vector, chunk.rowCount * 8);
    const b = duckdb.vector_get_data(vector, chunk.rowCount * 8);
    assert.notEqual(a.buffer, b.buffer);
    a.fill(0xff);
    assert.equal(new Float64Array(b.buffer, b.byteOffset, chunk.rowCount)[1], 1.5, 'writing one copy changed DuckDB memory or the other copy');
    const m1 = duckdb.vector_get_validity(vector, 8);
    const m2 = duckdb.vector_get_validity(vector, 8);
    assert.notEqual(m1.buffer, m2.buffer);

    const budget = new ChunkBudget(result.columnNames(), chunk.rowCount);
    const columns = types.map((t, i) => readColumn(chunk, i, t, 'arrow', budget));
    // Later chunks reuse DuckDB's memory; the columns read must not change with them.
    while (((await result.fetchChunk())?.rowCount ?? 0) > 0);
    const [v, k, e] = columns;
    assert.equal(v.kind, 'f64');
    assert.equal(k.kind, 'i32');
    assert.equal(e.kind, 'utf8');
    if (v.kind !== 'f64' || k.kind !== 'i32' || e.kind !== 'utf8') return;
    const text = Buffer.from(e.data);
    for (let i = 0; i < chunk.rowCount; i++) {
      assert.equal(k.values[i], i % 4);
      assert.equal(text.toString('utf8', e.offsets[i], e.offsets[i + 1]), `v${i % 300}`);
      const valid: boolean = v.valid === null || (v.valid[i >>> 3] & (1 << (i & 7))) !== 0;
      assert.equal(valid, i % 3 !== 0, `row ${i} validity`);
      if (valid) assert.equal(v.values[i], i * 1.5);
    }
  } finally {
    conn.closeSync();
  }
});

test('VARCHAR columns read byte for byte as DuckDB decodes them: inline and pointed-to strings, runs of them next to each other or not in the result, NULLs, multi-byte UTF-8', async () => {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  const dir = mkdtempSync(join(tmpdir(), 'strata-strings-'));
  try {
    const file = join(dir, 'tags.parquet');
    await conn.run(`COPY (SELECT 'ip-10-0-' || (i % 100) || '.us-west-2.compute.internal' AS h FROM range(5000) t(i)) TO '${file}'`);
    const sources: [string, string][] = [
      // Lengths 0 to 40 in turn: inline (≤ 12 bytes) and pointed-to strings mixed, NULLs between.
      ['mixed lengths', `SELECT CASE WHEN i % 11 = 0 THEN NULL ELSE repeat('é', (i % 7)::INTEGER) || repeat('x', (i % 41)::INTEGER) END AS s FROM range(6000) t(i)`],
      // Long strings one after the other in DuckDB's memory, in a few blocks per chunk: a run each.
      ['from Parquet', `SELECT h AS s FROM read_parquet('${file}')`],
      // The same strings sorted, which DuckDB lays out again.
      ['sorted by a hash', `SELECT h AS s FROM read_parquet('${file}', file_row_number = true) ORDER BY hash(h || file_row_number)`],
      // One value repeated, each row with its own copy.
      ['repeated', `SELECT s FROM (SELECT 'one string longer than twelve bytes ✓' AS s), range(3000)`],
    ];
    for (const [name, sql] of sources) {
      const result = await conn.stream(sql);
      let rows = 0;
      for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
        const column = readColumn(chunk, 0, result.columnTypes()[0], 'exact', new ChunkBudget(result.columnNames(), chunk.rowCount));
        assert.equal(column.kind, 'utf8');
        if (column.kind !== 'utf8') return;
        const text = Buffer.from(column.data);
        assert.equal(text.length, column.offsets[chunk.rowCount], `${name}: the data is the strings' bytes alone, without the copy's slack`);
        chunk.getColumnValues(0).forEach((expected, i) => {
          const valid = column.valid === null || (column.valid[i >>> 3] & (1 << (i & 7))) !== 0;
          assert.equal(valid ? text.toString('utf8', column.offsets[i], column.offsets[i + 1]) : null, expected, `${name}, row ${rows + i}`);
        });
        rows += chunk.rowCount;
      }
      assert.ok(rows >= 3000, name);
    }
  } finally {
    conn.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
});

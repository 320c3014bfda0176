/**
 * Timing benchmark of `readColumn`, the copy of DuckDB's result vectors into plain columns
 * that every result format starts with, one column shape at a time. Prints figures,
 * asserts nothing.
 *
 *   npx tsc -p . && node --max-semi-space-size=64 dist/src/query/chunk-columns.bench.js [rows] [runs]
 *
 * Each run reads every chunk of a shape once; the median run is reported, in ns per row.
 * DuckDB's own work (producing the chunks) is done before timing. The VARCHAR shapes cover
 * the string paths: inline (≤ 12 bytes), and longer strings, which DuckDB hands over one
 * after the other in a few blocks per chunk (read from Parquet, or sorted, which DuckDB lays
 * out again), or mixed with inline ones (runs whose rows are not next to each other).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBDataChunk } from '@duckdb/node-api';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn } from './chunk-columns.js';

const rows = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 7);

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

const dir = mkdtempSync(join(tmpdir(), 'strata-bench-'));
const file = join(dir, 'tags.parquet');
const conn = await (await DuckDBInstance.create(':memory:')).connect();
try {
  await conn.run(`COPY (SELECT 'ip-10-0-' || (range % 100) || '.us-west-2.compute.internal' AS v FROM range(${rows})) TO '${file}'`);
  /** Column shapes: a name and a query of one column `v`. */
  const shapes: [string, string][] = [
    ['DOUBLE', `SELECT random() * 100 AS v FROM range(${rows})`],
    ['µs timestamps', `SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(range * 10) AS v FROM range(${rows})`],
    ['VARCHAR tag, ≤ 12 bytes (host_0 … host_99)', `SELECT 'host_' || (range % 100) AS v FROM range(${rows})`],
    ['VARCHAR tag, 36 bytes, from Parquet', `SELECT v FROM read_parquet('${file}')`],
    ['VARCHAR tag, 36 bytes, from Parquet, sorted by a hash', `SELECT v FROM read_parquet('${file}', file_row_number = true) ORDER BY hash(file_row_number)`],
    ['VARCHAR, a third over 12 bytes, mixed', `SELECT CASE WHEN range % 3 = 0 THEN 'a string longer than twelve bytes ' || range ELSE 'ab' || (range % 1000) END AS v FROM range(${rows})`],
  ];
  console.log(`${rows.toLocaleString('en')} rows per shape, median of ${runs} runs, node ${process.version}`);
  for (const [name, sql] of shapes) {
    const result = await conn.stream(sql);
    const type = result.columnTypes()[0];
    const chunks: DuckDBDataChunk[] = [];
    for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) chunks.push(chunk);
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      for (const chunk of chunks) readColumn(chunk, 0, type, 'exact', new ChunkBudget(['v'], chunk.rowCount));
      times.push(performance.now() - started);
    }
    console.log(`${name.padEnd(55)} ${(median(times) * 1e6 / rows).toFixed(1).padStart(7)} ns/row`);
  }
} finally {
  conn.closeSync();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Timing benchmark of the JSON result encoder (`jsonRowsBytes`), one column shape at a
 * time, on chunks DuckDB produced and `readColumn` read, as a query result streams them.
 * Prints figures, asserts nothing.
 *
 *   node --import tsx --max-semi-space-size=64 src/query/json-result.bench.ts [rows] [runs]
 *
 * Each run encodes every chunk of a shape once; the median run is reported, in ns per
 * value and M values/s. DuckDB's own work (reading the chunks) is done before timing.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn, type Column } from './chunk-columns.js';
import { jsonRowsBytes } from './json-result.js';

const rows = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 7);

/** Column shapes: a name and the SQL expression of row `range`. */
const SHAPES: [string, string][] = [
  ['µs timestamps, all distinct', "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_microseconds(range * 10_000_123)"],
  ['µs timestamps, 100 rows each (TSBS)', "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds((range // 100) * 10)"],
  ['ns timestamps, all distinct', "make_timestamp_ns(1767225600000000000 + range * 10_000_123_457)"],
  ['doubles, 2 decimals', 'round(random() * 100, 2)'],
  ['doubles, 15–17 digits (avg())', 'random() * 100'],
  ['BIGINT', 'range * 7919'],
  ['VARCHAR tag (host_0 … host_99)', "'host_' || (range % 100)"],
];

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

const conn = await (await DuckDBInstance.create(':memory:')).connect();
console.log(`${rows.toLocaleString('en')} values per shape, median of ${runs} runs, node ${process.version}`);
for (const [name, expression] of SHAPES) {
  const result = await conn.stream(`SELECT ${expression} AS v FROM range(${rows})`);
  const type = result.columnTypes()[0];
  const chunks: { columns: Column[]; rowCount: number }[] = [];
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    chunks.push({ columns: [readColumn(chunk, 0, type, 'exact', new ChunkBudget(['v'], chunk.rowCount))], rowCount: chunk.rowCount });
  }
  let bytes = 0;
  const encode = (): void => {
    bytes = 0;
    for (const [i, c] of chunks.entries()) bytes += jsonRowsBytes(c.columns, c.rowCount, i > 0).length;
  };
  // Warm-up: lets TurboFan optimise the encoder before anything is timed.
  for (let k = 0; k < 2; k++) encode();
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    encode();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const ms = median(times);
  console.log(`${name.padEnd(38)} ${((ms * 1e6) / rows).toFixed(0).padStart(5)} ns/value  ${(rows / ms / 1000).toFixed(2).padStart(6)} M values/s  ` +
    `${(bytes / rows).toFixed(1).padStart(5)} B/value  (min ${Math.min(...times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms)`);
}
conn.closeSync();

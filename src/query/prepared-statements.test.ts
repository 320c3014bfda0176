import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { PreparedStatements } from './prepared-statements.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-prepared-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function rows(statements: PreparedStatements, conn: DuckDBConnection, sql: string, version = ''): Promise<unknown[][]> {
  const result = await statements.stream(conn, sql, version);
  const out: unknown[][] = [];
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) out.push(...chunk.getRows());
  return out;
}

async function writeParquet(conn: DuckDBConnection, file: string, from: number, count: number): Promise<void> {
  await conn.run(`COPY (SELECT range AS x FROM range(${from}, ${from + count})) TO '${file}' (FORMAT parquet)`);
}

/** Kept statements answer with what the files and tables hold when they run, not when they were prepared. */
for (const perConnection of [16, 1, 0]) {
  test(`statements kept (${perConnection} per connection) run again see rewritten, deleted and restored files, and grown tables by their version`, async () => {
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    const statements = new PreparedStatements(perConnection);
    const [a, b] = [join(dir, `a${perConnection}.parquet`), join(dir, `b${perConnection}.parquet`)];
    await writeParquet(conn, a, 0, 10);
    await writeParquet(conn, b, 10, 5);
    const files = `SELECT count(*), sum(x) FROM read_parquet(['${a}', '${b}'])`;
    // DuckDB plans a statement over tables with their statistics at prepare time: kept
    // as it was, `x > 5` stays empty and `x IS NULL` finds nothing after the appends.
    const table = 'SELECT count(*), sum(x), count(*) FILTER (WHERE x > 5), count(*) FILTER (WHERE x IS NULL), count(DISTINCT x) FROM held';
    await conn.run('CREATE TEMP TABLE held AS SELECT 1 AS x');
    assert.deepEqual(await rows(statements, conn, files), [[15n, 105n]]);
    assert.deepEqual(await rows(statements, conn, table, '1'), [[1n, 1n, 0n, 0n, 1n]]);
    // With room for one statement, each query here pushes the other one out.
    await conn.run('INSERT INTO held VALUES (2), (3), (10), (NULL)');
    assert.deepEqual(await rows(statements, conn, table, '5'), [[5n, 16n, 1n, 1n, 4n]]);
    assert.deepEqual(await rows(statements, conn, table, '5'), [[5n, 16n, 1n, 1n, 4n]]);
    unlinkSync(a);
    await writeParquet(conn, a, 100, 2);
    assert.deepEqual(await rows(statements, conn, files), [[7n, 261n]]);
    unlinkSync(b);
    await assert.rejects(rows(statements, conn, files), /No files found/);
    await writeParquet(conn, b, 0, 3);
    assert.deepEqual(await rows(statements, conn, files), [[5n, 204n]]);
    // A result left unread does not spoil the statement for its next run.
    const wide = 'SELECT range AS x FROM range(100000)';
    await (await statements.stream(conn, wide, '')).fetchChunk();
    assert.equal((await rows(statements, conn, wide)).length, 100_000);
    conn.closeSync();
  });
}

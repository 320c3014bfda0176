/**
 * `Catalog.columns` directly, on real Parquet files in a local store and a real DuckDB:
 * the columns every file of a measurement binds, when the signature cache holds fewer
 * files than one query reads, and for files with nested (STRUCT, LIST, MAP) columns.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { Catalog } from '../src/query/catalog.js';
import { DuckDBPool } from '../src/query/duckdb-pool.js';
import { LocalStorage } from '../src/storage/local.js';
import { removeDir, tempDir } from './harness.js';

const dir = tempDir('strata-catalog-');
let pool: DuckDBPool;
let catalog: Catalog;

/** Writes one Parquet file of `select` into hour `hour` of 2026-01-01 of measurement `m` in database `db`. */
async function file(m: string, hour: number, select: string): Promise<void> {
  const hourDir = join(dir, 'db', m, '2026', '01', '01', String(hour).padStart(2, '0'));
  mkdirSync(hourDir, { recursive: true });
  await pool.use((conn) => conn.run(`COPY (${select}) TO '${join(hourDir, `${m}_${hour}.parquet`)}' (FORMAT parquet)`));
}

async function columns(m: string): Promise<string[]> {
  const files = await catalog.files('db', m);
  return (await pool.use((conn) => catalog.columns(conn, files, new Map(), false))).map((c) => `${c.name} ${c.type}`);
}

before(async () => {
  const storage = new LocalStorage(dir);
  await storage.init();
  pool = await DuckDBPool.create(await DuckDBInstance.create(':memory:'), 2, 10);
  catalog = new Catalog(storage, pool, { cacheListings: true, cachedSignatures: 2 });
});
after(() => {
  pool.close();
  removeDir(dir);
});

test('more files than the signature cache holds: each file\'s columns are still read', async () => {
  for (let h = 0; h < 5; h++) await file('many', h, `SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' AS time, ${h} AS v${h}`);
  assert.deepEqual(await columns('many'), ['time TIMESTAMP WITH TIME ZONE', ...[0, 1, 2, 3, 4].map((h) => `v${h} INTEGER`)]);
});

test('nested columns are columns, not the fields inside them', async () => {
  await file('nested', 0, "SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' AS time, 1.5::DOUBLE AS v");
  await file('nested', 1, "SELECT TIMESTAMPTZ '2026-01-01 01:00:00+00' AS time, {'a': 1, 'b': 'x'} AS s, [1, 2] AS l, MAP {'k': 1} AS m, 2.5::DOUBLE AS v");
  assert.deepEqual(await columns('nested'), [
    'time TIMESTAMP WITH TIME ZONE', 'v DOUBLE', 's STRUCT(a INTEGER, b VARCHAR)', 'l INTEGER[]', 'm MAP(VARCHAR, INTEGER)',
  ]);
});

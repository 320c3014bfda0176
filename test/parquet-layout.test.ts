/**
 * The Parquet files on disk: the `{db}/{m}/YYYY/MM/DD/HH/{m}_{YYYYMMDD_HHMMSS}_{nrows}_{unique}.parquet`
 * layout, time-sorted rows, column statistics, dictionary-encoded tags, TIMESTAMP(MICROS, UTC)
 * time and the configured compression — checked with DuckDB's `parquet_metadata()` and
 * `parquet_schema()` on a connection of the test's own.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DuckDBConnection } from '@duckdb/node-api';
import { inspector, removeDir, TestServer } from './harness.js';

let conn: DuckDBConnection;
before(async () => {
  conn = await inspector();
});
after(() => conn.closeSync());

const FILE = /^(?<db>[^/]+)\/(?<m>[^/]+)\/(?<y>\d{4})\/(?<mo>\d{2})\/(?<d>\d{2})\/(?<h>\d{2})\/(?<m2>[^/]+)_(?<stamp>\d{8}_\d{6})_(?<n>\d+)_(?<u>[0-9a-z]+-[0-9a-z]+)\.parquet$/;

function files(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet') && !f.startsWith('.')).sort();
}

async function rows(sql: string): Promise<unknown[][]> {
  return (await conn.runAndReadAll(sql)).getRowsJS() as unknown[][];
}

for (const compression of ['snappy', 'zstd'] as const) {
  test(`files follow the layout, are time-sorted, carry statistics and dictionary tags (${compression})`, async () => {
    const server = await TestServer.start({ STRATA_PARQUET_COMPRESSION: compression });
    try {
      // Records out of time order, spanning two hours, one of them pre-1970.
      const lines = [
        'cpu,host=b,dc=x usage=3 1700003700',
        'cpu,host=a,dc=x usage=1 1700000000',
        'cpu,host=a,dc=y usage=2 1700000100',
        'cpu,host=c usage=4 1700003600',
        'cpu,host=z usage=5 -3600',
      ].join('\n');
      assert.equal((await server.writeLines(lines, 'db=lay&precision=s')).status, 204);
      await server.flush();
      const found = files(server.dataDir);
      assert.equal(found.length, 3);
      const parsed = found.map((f) => FILE.exec(f)?.groups);
      for (const g of parsed) {
        assert.ok(g, `layout: ${found.join(', ')}`);
        assert.equal(g.db, 'lay');
        assert.equal(g.m, 'cpu');
        assert.equal(g.m2, 'cpu');
      }
      assert.deepEqual(parsed.map((g) => `${g!.y}-${g!.mo}-${g!.d}T${g!.h}`), ['1969-12-31T23', '2023-11-14T22', '2023-11-14T23']);
      assert.deepEqual(parsed.map((g) => Number(g!.n)), [1, 2, 2], 'nrows in the name');

      for (const f of found) {
        const path = join(server.dataDir, f);
        const times = (await rows(`SELECT epoch_us(time) FROM read_parquet('${path}')`)).map((r) => Number(r[0]));
        assert.deepEqual(times, [...times].sort((a, b) => a - b), `${f} is time-sorted`);
        const meta = await rows(`SELECT path_in_schema, encodings, compression, stats_min IS NOT NULL, stats_max IS NOT NULL FROM parquet_metadata('${path}')`);
        for (const [column, encodings, codec, hasMin, hasMax] of meta) {
          assert.equal(codec, compression.toUpperCase(), `${column} compression`);
          assert.ok(hasMin && hasMax, `${column} has statistics`);
          if (column === 'host' || column === 'dc') assert.match(String(encodings), /DICTIONARY/, `${column} is dictionary-encoded`);
        }
        const [timeType] = await rows(`SELECT logical_type::VARCHAR, type FROM parquet_schema('${path}') WHERE name = 'time'`);
        assert.match(String(timeType[0]), /TimestampType\(isAdjustedToUTC=1, unit=TimeUnit\(MILLIS=<null>, MICROS=MicroSeconds\(\)/);
        assert.equal(timeType[1], 'INT64');
      }
      const [[tags]] = await rows(`SELECT decode(value) FROM parquet_kv_metadata('${join(server.dataDir, found[1])}') WHERE key::VARCHAR = 'strata:tags'`);
      assert.deepEqual(JSON.parse(String(tags)), ['dc', 'host']);
      const inHour = await rows(`SELECT host FROM read_parquet('${join(server.dataDir, found[2])}')`);
      assert.deepEqual(inHour, [['c'], ['b']]);
      assert.deepEqual(await rows(`SELECT count(*) FROM glob('${server.dataDir}/.staging/*')`), [[0n]], 'no temp files left');
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });
}

test('strata:tags lists tag keys that hold commas as they are', async () => {
  const server = await TestServer.start();
  try {
    assert.equal((await server.writeLines('m,a\\,b=1,c=2 v=1 1700000000', 'db=lay&precision=s')).status, 204);
    await server.flush();
    const [file] = files(server.dataDir);
    const [[tags]] = await rows(`SELECT decode(value) FROM parquet_kv_metadata('${join(server.dataDir, file)}') WHERE key::VARCHAR = 'strata:tags'`);
    assert.deepEqual(JSON.parse(String(tags)), ['a,b', 'c']);
    assert.deepEqual(await server.rows('SELECT "a,b", c FROM m', 'lay'), [['1', '2']]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('a float field holding both −0.0 and +0.0 keeps each sign once flushed (its fields written without dictionaries, its tags with); other files keep field dictionaries', async () => {
  const server = await TestServer.start();
  try {
    // DuckDB's dictionary of a column takes the two zeros for one value (duckdb/duckdb#25781).
    const zeros = Array.from({ length: 50 }, (_, i) => `z,host=h${i % 3} v=${i % 2 === 0 ? '-0.0' : '0.0'},n=${i}i ${1700000000 + i}`);
    const plain = Array.from({ length: 50 }, (_, i) => `p,host=h${i % 3} v=${i % 2 === 0 ? '-0.0' : '-1.5'} ${1700000000 + i}`);
    assert.equal((await server.writeLines([...zeros, ...plain].join('\n'), 'db=lay&precision=s')).status, 204);
    const signs = 'SELECT v::VARCHAR AS s, count(*) FROM z GROUP BY s ORDER BY s';
    assert.deepEqual(await server.rows(signs, 'lay'), [['-0.0', 25], ['0.0', 25]]);
    await server.flush();
    assert.deepEqual(await server.rows(signs, 'lay'), [['-0.0', 25], ['0.0', 25]]);
    assert.deepEqual(await server.rows('SELECT count(*) FROM z WHERE n % 2 = 0 AND sign(1 / v) = -1', 'lay'), [[25]]);
    const encodings = async (m: string): Promise<Record<string, string>> => {
      const [file] = files(join(server.dataDir, 'lay', m));
      return Object.fromEntries(await rows(`SELECT path_in_schema, encodings FROM parquet_metadata('${join(server.dataDir, 'lay', m, file)}')`));
    };
    // Tags are ENUMs, which DuckDB writes with their dictionary whatever the limit.
    assert.deepEqual([(await encodings('z')).v, (await encodings('z')).host], ['PLAIN', 'RLE_DICTIONARY']);
    assert.match((await encodings('p')).v, /DICTIONARY/, 'a field with one zero sign keeps its dictionary');
    assert.deepEqual(await server.rows("SELECT v::VARCHAR AS s, count(*) FROM p GROUP BY s ORDER BY s", 'lay'), [['-0.0', 25], ['-1.5', 25]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

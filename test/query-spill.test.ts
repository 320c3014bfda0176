/**
 * End to end: STRATA_QUERY_MAX_SPILL bounds what DuckDB spills to its temp directory (on
 * the disk of the WAL and the Parquet files), STRATA_QUERY_MEMORY_LIMIT what it holds in
 * memory. A query that needs more of either is refused with a 422 naming the setting
 * (not DuckDB's advice to SET what the sandbox locks), and the server goes on answering
 * writes and queries.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { removeDir, stopWithin, TestServer } from './harness.js';

/** Per test: every wait in this file is bounded. */
const BOUND = { timeout: 60_000 };

// 2 M groups of 32-character keys: some 200 MiB of hash table, spilled under a 64 MB memory limit.
const SPILLING = 'SELECT count(*) FROM (SELECT md5(i::VARCHAR) AS h, count(*) FROM range(2000000) t(i) GROUP BY h)';

/** Runs `fn` against a server started with `env`, then stops it (exit 0) and removes its data. */
async function withServer(env: Record<string, string>, fn: (server: TestServer) => Promise<void>): Promise<void> {
  const server = await TestServer.start(env);
  try {
    await fn(server);
  } finally {
    assert.equal(await stopWithin(server), 0);
    removeDir(server.dataDir);
  }
}

test('a query spilling past STRATA_QUERY_MAX_SPILL: 422 naming the setting; the server keeps answering', BOUND, async () => {
  await withServer({ STRATA_QUERY_MEMORY_LIMIT: '64MB', STRATA_QUERY_MAX_SPILL: '1MB' }, async (server) => {
    const { status, body } = await server.query(SPILLING);
    assert.equal(status, 422, JSON.stringify(body));
    assert.equal(body.success, false);
    assert.match(body.error!, /^the query needs more temporary disk space than STRATA_QUERY_MAX_SPILL allows \(976\.5 KiB, shared by all running queries\)/);
    // DuckDB's own advice (PRAGMA, SET threads) names settings the sandbox locks: not passed on.
    assert.ok(!/PRAGMA|SET /.test(body.error!), body.error);

    assert.equal((await server.writeLines('after,host=a v=1 1700000000', 'db=spill&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v FROM after', 'spill'), [['a', 1]]);
    assert.deepEqual(await server.rows('SELECT count(*) FROM (SELECT i % 1000 AS k, count(*) FROM range(100000) t(i) GROUP BY k)'), [[1000]]);
  });
});

test('under the default STRATA_QUERY_MAX_SPILL (10GiB) the same query spills and answers', BOUND, async () => {
  await withServer({ STRATA_QUERY_MEMORY_LIMIT: '64MB' }, async (server) => {
    assert.deepEqual(await server.rows(SPILLING), [[2_000_000]]);
  });
});

test('a query needing more memory than STRATA_QUERY_MEMORY_LIMIT for what cannot spill: 422 naming the setting', BOUND, async () => {
  await withServer({ STRATA_QUERY_MEMORY_LIMIT: '64MB' }, async (server) => {
    for (const sql of ['SELECT len(list(range)) FROM range(30000000)', 'SELECT length(string_agg(range::VARCHAR)) FROM range(30000000)']) {
      const { status, body } = await server.query(sql);
      assert.equal(status, 422, `${sql}: ${JSON.stringify(body)}`);
      assert.match(body.error!, /^the query needs more memory than STRATA_QUERY_MEMORY_LIMIT allows \(61\.0 MiB, shared by all running queries\) for what DuckDB cannot spill to disk: /);
      assert.ok(!/SET |PRAGMA/.test(body.error!), body.error);
    }
    assert.deepEqual(await server.rows('SELECT len(list(range)) FROM range(1000)'), [[1000]]);
  });
});

test('unflushed records too wide for STRATA_QUERY_MEMORY_LIMIT: 422 naming the measurement; read once flushed', BOUND, async () => {
  // 3,000 records of 400 fields: past 2,048 records DuckDB takes a 256 KiB block per column, ~100 MiB.
  await withServer({ STRATA_QUERY_MEMORY_LIMIT: '64MB', STRATA_QUERY_POOL_SIZE: '1' }, async (server) => {
    const fields = (r: number): string => Array.from({ length: 400 }, (_, c) => `f${c}=${r + c}`).join(',');
    const lines = Array.from({ length: 3000 }, (_, r) => `wide,host=h${r % 10} ${fields(r)} ${1_700_000_000 + r}`);
    assert.equal((await server.writeLines(lines.join('\n'), 'db=mem&precision=s')).status, 204);
    const { status, body } = await server.query('SELECT count(*), sum(f399) FROM wide', 'mem');
    assert.equal(status, 422, JSON.stringify(body));
    assert.match(body.error!, /^the query needs more memory than STRATA_QUERY_MEMORY_LIMIT allows \(61\.0 MiB, shared by all running queries\) for the records of mem\.wide not yet flushed, which queries copy into DuckDB: retry once they are flushed/);
    assert.ok(!/SET |PRAGMA/.test(body.error!), body.error);
    await server.flush();
    // Σ (r + 399) over r < 3,000.
    assert.deepEqual(await server.rows('SELECT count(*), sum(f399) FROM wide', 'mem'), [[3000, 3000 * 399 + (2999 * 3000) / 2]]);
  });
});

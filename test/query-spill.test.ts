/**
 * End to end: STRATA_QUERY_MAX_SPILL bounds what DuckDB spills to its temp directory (on
 * the disk of the WAL and the Parquet files). A query that needs more is refused with a
 * 422 naming the setting, and the server goes on answering writes and queries.
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

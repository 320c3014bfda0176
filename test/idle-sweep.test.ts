/**
 * End to end: read-your-writes tables on query connections left idle are dropped once
 * their records are flushed, and a connection a query holds through the flush is left
 * alone until it is idle again. A pool of 2 lends connections LIFO, so without the
 * idle sweep the connection not on top would keep its copy for good. Observed through
 * `held_tables` / `held_rows` of `GET /api/v1/metrics/query-pool`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { removeDir, sleep, stopWithin, TestServer } from './harness.js';

const T0 = 1767225600; // 2026-01-01T00:00:00Z

interface PoolMetrics {
  connections_in_use: number;
  queries_total: number;
  held_tables: number;
  held_rows: number;
}

let server: TestServer;

before(async () => {
  server = await TestServer.start({ STRATA_QUERY_POOL_SIZE: '2', STRATA_BUFFER_MAX_AGE_MS: '600000', STRATA_QUERY_CACHE_TTL_MS: '0' });
});
after(async () => {
  assert.equal(await stopWithin(server), 0, 'shuts down cleanly with the sweeper stopped');
  removeDir(server.dataDir);
});

async function metrics(): Promise<PoolMetrics> {
  return ((await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { pool: PoolMetrics }).pool;
}

/** Polls the pool metrics until `ok` holds (failing after 5 s); returns the last reading. */
async function until(what: string, ok: (m: PoolMetrics) => boolean): Promise<PoolMetrics> {
  for (let i = 0; i < 100; i++) {
    const m = await metrics();
    if (ok(m)) return m;
    await sleep(50);
  }
  assert.fail(`${what}: ${JSON.stringify(await metrics())}`);
}

/**
 * Borrows one connection (the top of the idle stack): a billion-row result read once
 * and then left unread. `release()` disconnects, which closes the result.
 */
async function holdConnection(): Promise<{ release: () => Promise<void> }> {
  const controller = new AbortController();
  const res = await fetch(`${server.url}/api/v1/query`, {
    method: 'POST', body: JSON.stringify({ sql: 'SELECT range AS i FROM range(1000000000)' }),
    headers: { 'content-type': 'application/json' }, signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  await until('the held query has a connection', (m) => m.connections_in_use === 1);
  return {
    release: async () => {
      controller.abort();
      await reader.read().catch(() => undefined);
      await until('the held connection is idle again', (m) => m.connections_in_use === 0);
    },
  };
}

async function write(measurement: string, count: number): Promise<void> {
  const lines = Array.from({ length: count }, (_, i) => `${measurement},host=h${i % 5} v=${i}i ${T0 + i}`).join('\n');
  assert.equal((await server.writeLines(lines, 'db=sweep&precision=s')).status, 204);
}

async function count(measurement: string): Promise<unknown> {
  return (await server.rows(`SELECT count(*) FROM ${measurement}`, 'sweep'))[0][0];
}

test('an idle connection drops its copy of buffered records once they are flushed, without a query of its own', async () => {
  await write('idle', 20_000);
  // The second connection, not the top one, plans the query and keeps the records' table.
  const busy = await holdConnection();
  assert.equal(await count('idle'), 20_000);
  assert.deepEqual((({ held_tables, held_rows }) => ({ held_tables, held_rows }))(await metrics()), { held_tables: 1, held_rows: 20_000 });
  await busy.release();
  const queries = (await metrics()).queries_total;
  await server.flush();
  const m = await until('the idle connection dropped its table', (x) => x.held_tables === 0);
  assert.equal(m.held_rows, 0);
  assert.equal(m.queries_total, queries, 'sweeps are not counted as queries');
  assert.equal(await count('idle'), 20_000, 'the records are read from the file now, once');
});

test('a connection a query holds through the flush keeps its table until it is idle, then drops it', async () => {
  await write('held', 1_000);
  assert.equal(await count('held'), 1_000);
  await until('the table is kept', (m) => m.held_tables === 1 && m.held_rows === 1_000 && m.connections_in_use === 0);
  // LIFO: the connection that just ran the query, and holds the table, is lent again.
  const busy = await holdConnection();
  await server.flush();
  await sleep(300);
  assert.equal((await metrics()).held_tables, 1, 'nothing ran on the connection in use');
  await busy.release();
  await until('the connection dropped its table once idle', (m) => m.held_tables === 0 && m.held_rows === 0);
  assert.equal(await count('held'), 1_000);
});

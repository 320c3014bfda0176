/**
 * A query whose result is too large to convert fails on its own and leaves the server
 * up. The server runs on a 200 MB V8 heap (`--max-old-space-size`), where converting one
 * chunk of 2,048 rows of 5,000-element lists whole ran the heap out of memory and killed
 * the process (every other query and write with it); each hostile query must now answer
 * 422 naming its column, and the same server then answer a query and accept a write.
 * Bounds: `src/query/chunk-budget.ts`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { removeDir, TestServer } from './harness.js';

let server: TestServer;

before(async () => {
  server = await TestServer.start({ NODE_OPTIONS: '--max-old-space-size=200', STRATA_QUERY_CACHE_TTL_MS: '0' });
});
after(async () => {
  assert.equal(await server.stop(), 0);
  removeDir(server.dataDir);
});

/** POSTs `sql` to `path`; resolves to status and the error of Arc's query error body (empty when there is none). */
async function refusal(path: string, sql: string, headers: Record<string, string> = {}): Promise<{ status: number; error: string }> {
  const res = await server.post(path, JSON.stringify({ sql }), { 'content-type': 'application/json', ...headers });
  const text = await res.text();
  return { status: res.status, error: res.status === 200 ? '' : (JSON.parse(text) as { error: string }).error };
}

function assertAlive(): void {
  assert.equal(server.process.exitCode, null, `server exited:\n${server.output.slice(-2000)}`);
  assert.equal(server.process.signalCode, null, `server killed:\n${server.output.slice(-2000)}`);
}

test('a chunk of 10 M list elements answers 422 naming the column, and the server stays up', async () => {
  const { status, error } = await refusal('/api/v1/query', 'SELECT range(5000) AS l FROM range(2048)');
  assertAlive();
  assert.equal(status, 422, error);
  assert.match(error, /^result column "l" is too large to send: at least 10,242,048 values .* over the 1,000,000 .*unnest\(\).*CAST\(l AS VARCHAR\)/);
  // The advice works on the same data: aggregated, its 2,048 rows come back.
  const rows = await server.rows('SELECT len(l) AS n, list_sum(l) AS s FROM (SELECT range(5000) AS l FROM range(2048))');
  assert.equal(rows.length, 2048);
  assert.deepEqual(rows[0], [5000, 12497500]);
});

test('strings too large for one chunk answer 422: within lists, and as VARCHAR in CSV', async () => {
  const nested = await refusal('/api/v1/query', "SELECT [repeat('x', 20000)] AS tags FROM range(2048)");
  assert.equal(nested.status, 422, nested.error);
  assert.match(nested.error, /^result column "tags" is too large to send: at least 40,960,000 characters of text within its values/);
  // CSV makes a JS string of each value: 200 MB of them is what this heap cannot hold.
  const flat = await refusal('/api/v1/query', "SELECT repeat('x', 1000000) AS s FROM range(200)", { accept: 'text/csv' });
  assertAlive();
  assert.equal(flat.status, 422, flat.error);
  assert.match(flat.error, /^result column "s" is too large to send: at least 200,000,000 bytes of text in one chunk of 200 rows, over the 134,217,728 \(128 MiB\)/);
});

test('after the refusals the same server answers queries and accepts writes', async () => {
  assertAlive();
  assert.deepEqual(await server.rows('SELECT 41 + 1 AS answer'), [[42]]);
  const res = await server.writeLines('cpu,host=a usage=12.5 1767225600000000000\ncpu,host=b usage=7 1767225601000000000');
  assert.equal(res.status, 204);
  await server.flush();
  assert.deepEqual(await server.rows('SELECT host, usage FROM cpu ORDER BY time'), [['a', 12.5], ['b', 7]]);
  assertAlive();
});

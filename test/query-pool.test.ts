/**
 * End to end, issue 5: the query pool's priorities and bounded queue, and shutdown with
 * a query in flight. One DuckDB connection (`STRATA_QUERY_POOL_SIZE=1`) is held by a
 * streamed result the client stops reading (backpressure keeps the server's generator,
 * and so the connection, waiting); queries queued behind it are then observed through
 * `GET /api/v1/metrics/query-pool` and by the order in which they complete.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { removeDir, sleep, TestServer, waitFor } from './harness.js';

interface PoolMetrics {
  connections_in_use: number;
  query_errors_total: number;
  queue_depth: Record<'critical' | 'high' | 'normal' | 'low', number>;
  queue_rejected_total: number;
}

async function metrics(server: TestServer): Promise<PoolMetrics> {
  return ((await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { pool: PoolMetrics }).pool;
}

/** Polls the pool metrics until `ok` holds (failing after 10 s); returns the last reading. */
async function until(server: TestServer, ok: (m: PoolMetrics) => boolean): Promise<PoolMetrics> {
  for (let i = 0; i < 200; i++) {
    const m = await metrics(server);
    if (ok(m)) return m;
    await sleep(50);
  }
  assert.fail(`pool never reached the expected state: ${JSON.stringify(await metrics(server))}`);
}

function query(server: TestServer, sql: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/api/v1/query`, {
    method: 'POST', body: JSON.stringify({ sql }), headers: { 'content-type': 'application/json', ...headers }, signal,
  });
}

/**
 * Borrows the only connection: a billion-row result whose body is read once and then
 * left unread. `release()` disconnects, which cancels the query and frees the connection.
 */
async function holdPool(server: TestServer): Promise<{ release: () => Promise<void> }> {
  const controller = new AbortController();
  const res = await query(server, 'SELECT range AS i FROM range(1000000000)', {}, controller.signal);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  await until(server, (m) => m.connections_in_use === 1);
  return {
    release: async () => {
      controller.abort();
      await reader.read().catch(() => undefined);
    },
  };
}

describe('priorities (pool of 1)', () => {
  let server: TestServer;
  before(async () => {
    // A long drain: the SIGTERM test's query must be answered however slow the machine.
    server = await TestServer.start({ STRATA_QUERY_POOL_SIZE: '1', STRATA_QUERY_MAX_QUEUE: '10', STRATA_QUERY_CACHE_TTL_MS: '0', STRATA_SHUTDOWN_DRAIN_MS: '60000' });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  });

  test('waiting queries are served critical → high → normal → low, FIFO within a priority; metrics show the queue per priority', async () => {
    const hold = await holdPool(server);
    const queued: [label: string, priority: string][] = [
      ['low-1', 'low'], ['normal-1', 'normal'], ['low-2', 'low'], ['high-1', 'high'],
      ['normal-2', 'normal'], ['critical-1', 'critical'], ['high-2', 'high'], ['critical-2', 'critical'],
    ];
    const completed: string[] = [];
    const done: Promise<void>[] = [];
    const depth = { critical: 0, high: 0, normal: 0, low: 0 };
    for (const [label, priority] of queued) {
      done.push(query(server, `SELECT '${label}' AS label`, { 'x-strata-priority': priority }).then(async (res) => {
        const body = (await res.json()) as { data: string[][] };
        assert.equal(res.status, 200);
        completed.push(body.data[0][0]);
      }));
      // Queued one at a time, so FIFO order within a priority is the order sent.
      depth[priority as keyof typeof depth]++;
      const m = await until(server, (x) => x.queue_depth[priority as keyof typeof depth] === depth[priority as keyof typeof depth]);
      assert.equal(m.connections_in_use, 1);
    }
    assert.deepEqual((await metrics(server)).queue_depth, { critical: 2, high: 2, normal: 2, low: 2 });
    assert.deepEqual(completed, [], 'nothing ran while the pool was held');
    await hold.release();
    await Promise.all(done);
    assert.deepEqual(completed, ['critical-1', 'critical-2', 'high-1', 'high-2', 'normal-1', 'normal-2', 'low-1', 'low-2']);
    assert.deepEqual((await metrics(server)).queue_depth, { critical: 0, high: 0, normal: 0, low: 0 });
  });

  test('a result its client stopped reading is cut off at its timeout: the connection is freed for the next query, the query counted as failed', async () => {
    const failedBefore = (await metrics(server)).query_errors_total;
    const controller = new AbortController();
    const stalled = await query(server, 'SELECT range AS i FROM range(1000000000)', { 'x-strata-timeout-ms': '1000' }, controller.signal);
    assert.equal(stalled.status, 200);
    const reader = stalled.body!.getReader();
    await reader.read();
    await until(server, (m) => m.connections_in_use === 1);
    // Queued behind the stalled result, and given far longer than its timeout.
    const next = await query(server, 'SELECT 42 AS answer', { 'x-strata-timeout-ms': '8000' });
    assert.equal(next.status, 200);
    assert.deepEqual(((await next.json()) as { data: unknown[][] }).data, [[42]]);
    await assert.rejects(async () => {
      while (!(await reader.read()).done);
    }, 'the stalled body ends in an error, not as a complete answer');
    const after = await metrics(server);
    assert.equal(after.connections_in_use, 0);
    assert.equal(after.query_errors_total, failedBefore + 1, 'a timeout while streaming fails its lease, as one before the status line does');
    controller.abort();
    // Logged once, as the 504 before a status line is: a warning without a stack.
    const lines = (): Record<string, unknown>[] => server.output.split('\n').filter((l) => l.includes('Query timed out (after 1000 ms) while streaming its result'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 40 && lines().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const logged = lines();
    assert.equal(logged.length, 1, server.output.slice(-2000));
    assert.equal(logged[0].level, 40);
    assert.ok(!JSON.stringify(logged[0]).includes('"stack"'));
  });

  test('an estimate waits in the queue once, in its place: checked and counted on one connection, under one deadline; a client that leaves takes it out of the queue', async () => {
    const estimate = (headers: Record<string, string>, signal?: AbortSignal): Promise<Response> => fetch(`${server.url}/api/v1/query/estimate`, {
      method: 'POST', body: JSON.stringify({ sql: 'SELECT 1 AS one' }), headers: { 'content-type': 'application/json', ...headers }, signal,
    });
    const first = await holdPool(server);
    // Left while it waits for a connection: out of the queue at once.
    const leaving = new AbortController();
    const left = estimate({}, leaving.signal).catch(() => undefined);
    await until(server, (m) => m.queue_depth.normal === 1);
    leaving.abort();
    await left;
    await until(server, (m) => m.queue_depth.normal === 0);
    // Queued before a query, it is answered before it (once it took a connection to check the
    // statement and queued again for the count, behind that query).
    const order: string[] = [];
    const counted = estimate({}).then(async (res) => order.push(`estimate ${res.status} ${((await res.json()) as { estimated_rows: number }).estimated_rows}`));
    await until(server, (m) => m.queue_depth.normal === 1);
    const after = query(server, 'SELECT 2 AS two').then((res) => order.push(`query ${res.status}`));
    await until(server, (m) => m.queue_depth.normal === 2);
    await first.release();
    await Promise.all([counted, after]);
    assert.deepEqual(order, ['estimate 200 1', 'query 200']);
    // One deadline, queueing included.
    const second = await holdPool(server);
    const started = performance.now();
    const res = await estimate({ 'x-strata-timeout-ms': '800' });
    assert.equal(res.status, 504, await res.clone().text());
    assert.match(((await res.json()) as { error: string }).error, /800 ms/);
    assert.ok(performance.now() - started < 1_500);
    await second.release();
    await until(server, (m) => m.connections_in_use === 0 && m.queue_depth.normal === 0);
  });

  test('SIGTERM with a query in flight: it is answered in full, one waiting for its connection is refused at once with 503 and Retry-After, so is a request sent behind it, then the server exits 0 without waiting for idle connections', async () => {
    await fetch(`${server.url}/health`); // leaves an idle keep-alive connection open
    // One connection, so that a request can be sent on it once the server no longer takes connections.
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (text: string) => { received += text; });
    const ended = once(socket, 'close');
    const sql = JSON.stringify({ sql: 'SELECT count(*) AS n FROM range(5000000000)' });
    socket.write(`POST /api/v1/query HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${sql.length}\r\n\r\n${sql}`);
    await until(server, (m) => m.connections_in_use === 1);
    const queued = fetch(`${server.url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT 1' }) });
    await until(server, (m) => m.queue_depth.normal === 1);
    let timer: NodeJS.Timeout | undefined;
    const exit = Promise.race([server.stop('SIGTERM'), new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), 30_000); })]);
    // Without waiting for the query ahead of it, which holds its connection up to the drain deadline.
    const waited = await queued;
    assert.equal(received, '', 'the waiting query was answered before the one running');
    assert.equal(waited.status, 503);
    assert.ok(Number(waited.headers.get('retry-after')) > 0);
    assert.equal(((await waited.json()) as { error: string }).error, 'shutting down');
    // Closing has begun once new connections are refused.
    for (let i = 0; i < 200 && (await fetch(`${server.url}/health`).then(() => true, () => false)); i++) await sleep(25);
    const line = 'cpu,host=a usage=1 1700000000000000000';
    socket.write(`POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-length: ${line.length}\r\n\r\n${line}`);
    assert.equal(await exit, 0, 'exited cleanly (not held by keep-alive connections)');
    clearTimeout(timer);
    await ended;
    const [answered, refused] = received.split(/(?=HTTP\/1\.1 )/);
    assert.match(answered, /^HTTP\/1\.1 200 /);
    assert.match(answered, /"data":\[\[5000000000\]\]/);
    assert.match(refused, /^HTTP\/1\.1 503 /);
    assert.match(refused, /\r\nretry-after: \d+\r\n/i);
    assert.match(refused, /"error":"shutting down"/);
  });
});

describe('bounded queue (pool of 1, STRATA_QUERY_MAX_QUEUE=2)', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start({ STRATA_QUERY_POOL_SIZE: '1', STRATA_QUERY_MAX_QUEUE: '2', STRATA_QUERY_CACHE_TTL_MS: '0' });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  });

  test('a third waiting query, no more urgent than those waiting, is refused at once with 503 and Retry-After, logged at most once a second; the two waiting are then served', async () => {
    const hold = await holdPool(server);
    const waiting = [1, 2].map((i) => query(server, `SELECT ${i} AS i`).then(async (res) => [res.status, ((await res.json()) as { data: unknown[][] }).data]));
    await until(server, (m) => m.queue_depth.normal === 2);
    // A more urgent one would take the place of a waiting one (`duckdb-pool.test.ts`); as urgent, it cannot.
    const refused = await query(server, 'SELECT 3 AS i');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '1');
    const body = (await refused.json()) as { success: boolean; error: string };
    assert.equal(body.success, false);
    assert.equal(body.error, 'query queue full (2 queries waiting); retry later');
    assert.equal((await metrics(server)).queue_rejected_total, 1);
    // The server's log reaches this process through a pipe, possibly after the response.
    await waitFor(() => server.logLines().some((l) => /queue full/.test(l.msg)), 5000);
    const logged = server.logLines().filter((l) => /queue full/.test(l.msg));
    assert.deepEqual(logged.map((l) => l.level), [40], 'the refusal is one warning, not an error');
    // Clients retrying at once against a full queue: not a warning each.
    for (let i = 0; i < 10; i++) assert.equal((await query(server, 'SELECT 3 AS i')).status, 503);
    await sleep(1100);
    assert.equal((await query(server, 'SELECT 3 AS i')).status, 503);
    const shed = (): { level: number; suppressed?: number }[] => server.logLines().filter((l) => /queue full/.test(l.msg)) as { level: number; suppressed?: number }[];
    // The first, then one line a second counting the others.
    const counted = (): number => shed().reduce((n, l) => n + (l.suppressed ?? 1), 0);
    await waitFor(() => counted() === 12, 5000);
    assert.equal(counted(), 12, JSON.stringify(shed()));
    assert.ok(shed().length <= 4, `${shed().length} warnings for 12 refusals`);
    await hold.release();
    assert.deepEqual(await Promise.all(waiting), [[200, [[1]]], [200, [[2]]]]);
  });
});

describe('writes beside a busy query pool (pool of 1, STRATA_QUERY_MAX_QUEUE=1)', () => {
  let server: TestServer;
  const env = { STRATA_QUERY_POOL_SIZE: '1', STRATA_QUERY_MAX_QUEUE: '1', STRATA_QUERY_CACHE_TTL_MS: '0', STRATA_BUFFER_SCHEMA_TIMEOUT_MS: '2000' };
  before(async () => {
    server = await TestServer.start(env);
    assert.equal((await server.writeLines('stored,host=a v=1i 1767225600', 'db=default&precision=s')).status, 204);
    await server.flush();
    assert.equal(await server.stop(), 0);
    server = await TestServer.start(env, server.dataDir);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  });

  test('a measurement\'s first write since start reads its stored schema on a connection of its own: not refused, nor made to wait, by queries', async () => {
    const hold = await holdPool(server);
    const waiting = query(server, 'SELECT 1 AS i');
    await until(server, (m) => m.queue_depth.normal === 1);
    // It once queued for the query pool: 503 "query queue full", or a wait past the schema timeout.
    const started = performance.now();
    const written = await server.writeLines('stored,host=b v=2i 1767225601', 'db=default&precision=s');
    assert.equal(written.status, 204, await written.text());
    assert.ok(performance.now() - started < 1_500, `took ${(performance.now() - started).toFixed(0)} ms`);
    // A field of the stored schema's other type is refused: the schema was read, not skipped.
    const conflicting = await server.writeLines('stored,host=c v="text" 1767225602', 'db=default&precision=s');
    assert.equal(conflicting.status, 400, await conflicting.text());
    const m = await metrics(server);
    assert.deepEqual([m.connections_in_use, m.queue_depth.normal, m.queue_rejected_total], [1, 1, 0]);
    await hold.release();
    assert.equal((await waiting).status, 200);
    const rows = ((await (await query(server, 'SELECT host, v FROM stored ORDER BY time')).json()) as { data: unknown[][] }).data;
    assert.deepEqual(rows, [['a', 1], ['b', 2]]);
  });
});

describe('a client that stops reading (STRATA_QUERY_STALL_TIMEOUT_MS=800, pool of 1)', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start({ STRATA_QUERY_POOL_SIZE: '1', STRATA_QUERY_STALL_TIMEOUT_MS: '800', STRATA_QUERY_CACHE_TTL_MS: '0' });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
  });

  test('is cut off once it has taken nothing for the stall timeout, long before its deadline: the connection freed, logged once', async () => {
    const started = Date.now();
    const stalled = await query(server, 'SELECT range AS i FROM range(1000000000)');
    assert.equal(stalled.status, 200);
    const reader = stalled.body!.getReader();
    await reader.read();
    await until(server, (m) => m.connections_in_use === 1);
    // Queued behind the stalled result: answered once it is cut off, not at its 5-minute deadline.
    const next = await query(server, 'SELECT 42 AS answer');
    assert.deepEqual(((await next.json()) as { data: unknown[][] }).data, [[42]]);
    assert.ok(Date.now() - started < 30_000, `${Date.now() - started} ms`);
    await assert.rejects(async () => {
      while (!(await reader.read()).done);
    }, 'the stalled body ends in an error, not as a complete answer');
    assert.equal((await metrics(server)).connections_in_use, 0);
    const lines = (): Record<string, unknown>[] => server.output.split('\n').filter((l) => l.includes('the client read less than 1 MiB of the result in 800 ms'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 40 && lines().length === 0; i++) await sleep(50);
    assert.equal(lines().length, 1, server.output.slice(-2000));
    assert.equal(lines()[0].level, 40);
    // Only that, though fetch asked for gzip: the answer's zlib stream, closed by the cut, is no failure of its own.
    assert.equal(stalled.headers.get('content-encoding'), 'gzip');
    await sleep(200);
    assert.ok(!server.output.includes('while streaming its result'), server.output.slice(-2000));
  });

  test('a client reading steadily through chunks far larger than it reads in the stall timeout is not cut off', async () => {
    // Chunks of ~10 MB (2,048 rows of 5,000 bytes) read at ~3 MB/s: each takes seconds, but
    // it is written in 1 MiB pieces, each taken well within the 800 ms.
    const stalls = (): number => server.output.split('client_stalled').length - 1;
    const stallsBefore = stalls();
    const controller = new AbortController();
    const res = await query(server, "SELECT repeat('x', 5000) AS s FROM range(4096)", {}, controller.signal);
    const reader = res.body!.getReader();
    let bytes = 0;
    const started = Date.now();
    while (Date.now() - started < 3000) {
      const r = await reader.read();
      assert.equal(r.done, false, `ended after ${bytes} bytes`);
      bytes += r.value!.length;
      await sleep(r.value!.length / 3000);
    }
    assert.ok(bytes > 6_000_000, `${bytes} bytes read, all within the first ~10 MB chunk`);
    controller.abort();
    await until(server, (m) => m.connections_in_use === 0);
    assert.equal(stalls(), stallsBefore, 'not cut off as stalled');
  });

  test('a client reading slowly but steadily gets the whole result', async () => {
    const res = await query(server, 'SELECT range AS i FROM range(200000)');
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      parts.push(r.value);
      await sleep(100);
    }
    const body = JSON.parse(Buffer.concat(parts).toString()) as { row_count: number; data: number[][] };
    assert.equal(body.row_count, 200000);
    assert.deepEqual(body.data[199999], [199999]);
  });
});

/**
 * End to end, issue 5: the query result cache. A repeated query is answered from the
 * cache (profile `cache: "hit"`, the pool's lease count unchanged, the cache's hit
 * counter up), and never with stale rows: a new buffered record or a new file of a
 * measurement the query reads makes the next answer fresh. A request's headers are
 * validated the same way whether its answer is cached or not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tableFromIPC } from 'apache-arrow';
import { removeDir, sleep, TestServer } from './harness.js';

let server: TestServer;
const T0 = 1767225600; // 2026-01-01T00:00:00Z

interface Answer { status: number; data: unknown[][]; cache: string }

async function ask(sql: string, database = 'qc'): Promise<Answer> {
  const res = await fetch(`${server.url}/api/v1/query`, {
    method: 'POST', body: JSON.stringify({ sql }),
    headers: { 'content-type': 'application/json', 'x-arc-database': database, 'x-strata-profile': 'true' },
  });
  const body = (await res.json()) as { data: unknown[][]; profile: { cache: string } };
  return { status: res.status, data: body.data, cache: body.profile.cache };
}

async function metrics(): Promise<{ pool: { queries_total: number }; cache: { hits: number; misses: number; entries: number } }> {
  return (await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as never;
}

before(async () => {
  server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '600000', STRATA_QUERY_CACHE_TTL_MS: '600000' });
  assert.equal((await server.writeLines(`cpu,host=a v=1i ${T0}\ncpu,host=b v=2i ${T0 + 1}`, 'db=qc&precision=s')).status, 204);
  await server.flush();
});
after(async () => {
  assert.equal(await server.stop(), 0);
  removeDir(server.dataDir);
});

const SUM = 'SELECT count(*) AS n, sum(v) AS s FROM cpu';

describe('result cache', () => {
  test('a repeated query is served from the cache without touching DuckDB', async () => {
    assert.deepEqual(await ask(SUM), { status: 200, data: [[2, 3]], cache: 'miss' });
    const before = await metrics();
    assert.deepEqual(await ask(SUM), { status: 200, data: [[2, 3]], cache: 'hit' });
    const after = await metrics();
    assert.equal(after.pool.queries_total, before.pool.queries_total, 'no connection was borrowed');
    // The profile keeps its shape: this request planned nothing and read no file.
    const res = await fetch(`${server.url}/api/v1/query`, {
      method: 'POST', body: JSON.stringify({ sql: SUM }), headers: { 'content-type': 'application/json', 'x-arc-database': 'qc', 'x-strata-profile': 'true' },
    });
    const { profile } = (await res.json()) as { profile: Record<string, unknown> };
    assert.deepEqual({ ...profile, execution_ms: 0 }, { planning_ms: 0, files_considered: 0, files_scanned: 0, buffered_rows: 0, cache: 'hit', execution_ms: 0 });
    assert.equal(after.cache.hits, before.cache.hits + 1);
  });

  test('Arc\'s per-request counters: requests, answered in full, failed, rows answered (from the cache too; an estimate\'s count is no row, nor are the rows of an answer cut off)', async () => {
    type Totals = { query_requests: number; query_success: number; query_errors: number; query_rows_returned: number };
    const totals = async (): Promise<Totals> => {
      const { query_requests, query_success, query_errors, query_rows_returned } = ((await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { pool: Totals }).pool;
      return { query_requests, query_success, query_errors, query_rows_returned };
    };
    const before = await totals();
    const rows = 'SELECT range AS i FROM range(3)';
    assert.deepEqual((await ask(rows)).data, [[0], [1], [2]]);
    const refused = await fetch(`${server.url}/api/v1/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT * FROM read_text('/etc/passwd')" }), headers: { 'content-type': 'application/json' } });
    assert.equal(refused.status, 400);
    await refused.arrayBuffer();
    const estimate = await fetch(`${server.url}/api/v1/query/estimate`, { method: 'POST', body: JSON.stringify({ sql: rows }), headers: { 'content-type': 'application/json', 'x-arc-database': 'qc' } });
    assert.equal(((await estimate.json()) as { estimated_rows: number }).estimated_rows, 3);
    assert.deepEqual(await ask(SUM), { status: 200, data: [[2, 3]], cache: 'hit' });
    // An /exec page counts its own rows, not the rest of the chunk DuckDB read them from.
    const page = await fetch(`${server.url}/exec?query=${encodeURIComponent('SELECT range AS i FROM range(100000)')}&limit=5`);
    assert.equal(((await page.json()) as { dataset: unknown[] }).dataset.length, 5);
    // Cut off by its deadline once rows were sent: an error, whose rows are no answer.
    const cut = await fetch(`${server.url}/api/v1/query`, {
      method: 'POST', body: JSON.stringify({ sql: 'SELECT range AS i, hash(range) AS h FROM range(300000000)' }),
      headers: { 'content-type': 'application/json', 'x-strata-timeout-ms': '800' },
    });
    assert.equal(cut.status, 200);
    await assert.rejects(cut.arrayBuffer());
    // Counted once each response has closed, which may follow the client's read.
    const expected = { query_requests: before.query_requests + 6, query_success: before.query_success + 4, query_errors: before.query_errors + 2, query_rows_returned: before.query_rows_returned + 9 };
    for (let i = 0; i < 100 && JSON.stringify(await totals()) !== JSON.stringify(expected); i++) await sleep(50);
    assert.deepEqual(await totals(), expected);
  });

  test('the same SQL for another database is another entry', async () => {
    assert.equal((await server.writeLines(`cpu,host=z v=100i ${T0}`, 'db=qc2&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await ask(SUM, 'qc2'), { status: 200, data: [[1, 100]], cache: 'miss' });
    assert.deepEqual(await ask(SUM), { status: 200, data: [[2, 3]], cache: 'hit' });
  });

  test('a new buffered record is seen at once, and again once flushed; then the cache serves again', async () => {
    assert.equal((await server.writeLines(`cpu,host=c v=4i ${T0 + 2}`, 'db=qc&precision=s')).status, 204);
    assert.deepEqual(await ask(SUM), { status: 200, data: [[3, 7]], cache: 'miss' });
    // Read held records: not stored.
    assert.deepEqual(await ask(SUM), { status: 200, data: [[3, 7]], cache: 'miss' });
    await server.flush();
    assert.deepEqual(await ask(SUM), { status: 200, data: [[3, 7]], cache: 'miss' });
    assert.deepEqual(await ask(SUM), { status: 200, data: [[3, 7]], cache: 'hit' });
  });

  test('a file written for another measurement leaves the entry; one for this measurement drops it', async () => {
    assert.equal((await server.writeLines(`mem used=1i ${T0}`, 'db=qc&precision=s')).status, 204);
    await server.flush();
    assert.equal((await ask(SUM)).cache, 'hit');
    assert.equal((await server.writeLines(`cpu,host=d v=8i ${T0 + 3}`, 'db=qc&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await ask(SUM), { status: 200, data: [[4, 15]], cache: 'miss' });
  });

  test('Arrow and CSV answers are cached per format', async () => {
    const sql = 'SELECT host, v FROM cpu ORDER BY host';
    const arrow = async (): Promise<[unknown[], string | null]> => {
      const res = await fetch(`${server.url}/api/v1/query/arrow`, {
        method: 'POST', body: JSON.stringify({ sql }), headers: { 'content-type': 'application/json', 'x-arc-database': 'qc', 'x-strata-profile': 'true' },
      });
      const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
      return [table.getChild('host')!.toArray(), JSON.parse(res.headers.get('x-strata-profile')!).cache];
    };
    assert.deepEqual(await arrow(), [['a', 'b', 'c', 'd'], 'miss']);
    assert.deepEqual(await arrow(), [['a', 'b', 'c', 'd'], 'hit']);
    const csv = async (): Promise<[string, string]> => {
      const res = await fetch(`${server.url}/api/v1/query`, {
        method: 'POST', body: JSON.stringify({ sql, format: 'csv' }), headers: { 'content-type': 'application/json', 'x-arc-database': 'qc', 'x-strata-profile': 'true' },
      });
      return [await res.text(), JSON.parse(res.headers.get('x-strata-profile')!).cache];
    };
    const expected = 'host,v\r\na,1\r\nb,2\r\nc,4\r\nd,8\r\n';
    assert.deepEqual(await csv(), [expected, 'miss']);
    assert.deepEqual(await csv(), [expected, 'hit']);
  });

  test('SQL whose answer changes from run to run (clock, random values, unseeded SAMPLE) is run afresh each time', async () => {
    // Different on every run: a replayed answer would repeat the first one.
    for (const sql of ['SELECT random() AS r, count(*) AS n FROM cpu', 'SELECT gen_random_uuid()::VARCHAR AS r, count(*) AS n FROM cpu']) {
      const first = await ask(sql);
      const second = await ask(sql);
      assert.deepEqual([first.cache, second.cache], ['miss', 'miss'], sql);
      assert.equal(first.data[0][1], 4);
      assert.notEqual(first.data[0][0], second.data[0][0], sql);
    }
    // Their answers move with the clock or the sample drawn; `ago` is a macro over current_timestamp.
    for (const sql of ['SELECT now() AS t, count(*) AS n FROM cpu', 'SELECT current_date AS d, count(*) AS n FROM cpu',
      'SELECT count(*) AS n FROM cpu WHERE time > ago(INTERVAL 1 HOUR)', 'SELECT count(*) AS n FROM cpu USING SAMPLE 50%',
      // DuckDB calls these CONSISTENT, yet they read the clock: age(ts) is current_date - ts.
      "SELECT age(TIMESTAMP '2020-01-01') AS a, count(*) AS n FROM cpu", 'SELECT current_localtimestamp() AS t, count(*) AS n FROM cpu']) {
      assert.equal((await ask(sql)).cache, 'miss', sql);
      assert.equal((await ask(sql)).cache, 'miss', sql);
    }
    const seeded = 'SELECT count(*) AS n FROM cpu USING SAMPLE 50% (bernoulli, 7)';
    const first = await ask(seeded);
    assert.deepEqual(await ask(seeded), { ...first, cache: 'hit' });
  });

  test('bad priority and timeout headers are refused with 400 whether or not the result is cached', async () => {
    const sql = 'SELECT max(v) AS m FROM cpu';
    assert.deepEqual(await ask(sql), { status: 200, data: [[8]], cache: 'miss' });
    assert.deepEqual(await ask(sql), { status: 200, data: [[8]], cache: 'hit' });
    const bad: Record<string, string>[] = [{ 'x-strata-priority': 'urgent' }, { 'x-strata-timeout-ms': '-5' }, { 'x-strata-timeout-ms': 'soon' },
      // Number() reads these as 16, 1000 and 100 ms: only decimal digits are a timeout.
      { 'x-strata-timeout-ms': '0x10' }, { 'x-strata-timeout-ms': '1e3' }, { 'x-strata-timeout-ms': '+100' }];
    const requests: [string, RequestInit][] = [
      ['/api/v1/query', { method: 'POST', body: JSON.stringify({ sql }) }],
      ['/api/v1/query', { method: 'POST', body: JSON.stringify({ sql, format: 'csv' }) }],
      ['/api/v1/query/arrow', { method: 'POST', body: JSON.stringify({ sql }) }],
      [`/exec?query=${encodeURIComponent(sql)}`, { method: 'GET' }],
    ];
    for (const [path, init] of requests) {
      // Warm this format's entry, so the bad requests below would be hits.
      const warm = await fetch(server.url + path, { ...init, headers: { 'content-type': 'application/json', 'x-arc-database': 'qc' } });
      assert.equal(warm.status, 200, path);
      await warm.arrayBuffer();
      for (const headers of bad) {
        const res = await fetch(server.url + path, { ...init, headers: { 'content-type': 'application/json', 'x-arc-database': 'qc', ...headers } });
        const answer = (await res.json()) as { success: boolean; error: string };
        assert.equal(res.status, 400, `${path} ${JSON.stringify(headers)}`);
        assert.equal(answer.success, path.startsWith('/exec') ? undefined : false);
        assert.match(answer.error, /^invalid x-strata-(priority|timeout-ms)/);
      }
    }
  });
});

test('a result whose client left in the middle is not cached: the next request runs it in full', async () => {
  // A cache large enough for the whole result, so only its being cut short can keep it out.
  const big = await TestServer.start({ STRATA_QUERY_CACHE_TTL_MS: '600000', STRATA_QUERY_CACHE_MAX_BYTES: String(1 << 30) });
  try {
    // Results are cached only for queries reading a measurement (flushed).
    assert.equal((await big.writeLines(`one v=1i ${T0}`, 'db=default&precision=s')).status, 204);
    await big.flush();
    const sql = 'SELECT range AS n FROM range(5000000), (SELECT v FROM one)';
    const request = (signal?: AbortSignal): Promise<Response> => fetch(`${big.url}/api/v1/query`, {
      method: 'POST', body: JSON.stringify({ sql }), signal,
      headers: { 'content-type': 'application/json', 'x-strata-profile': 'true' },
    });
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      const res = await request(controller.signal);
      await res.body!.getReader().read();
      controller.abort();
    }
    const cache = async (): Promise<{ entries: number }> =>
      ((await (await fetch(`${big.url}/api/v1/metrics/query-pool`)).json()) as { cache: { entries: number } }).cache;
    assert.equal((await cache()).entries, 0);
    const full = (await (await request()).json()) as { data: number[][]; profile: { cache: string } };
    assert.equal(full.profile.cache, 'miss');
    assert.equal(full.data.length, 5_000_000);
    assert.deepEqual(full.data[4_999_999], [4_999_999]);
    assert.equal((await cache()).entries, 1);
  } finally {
    assert.equal(await big.stop(), 0);
    removeDir(big.dataDir);
  }
});

test('HEAD /exec of a result longer than 256 KiB caches nothing: the next GET answers every row', async () => {
  assert.equal((await server.writeLines(`one v=1i ${T0}`, 'db=qchead&precision=s')).status, 204);
  await server.flush();
  // About 1.4 MB as /exec JSON: past the part read before the status line.
  const url = `${server.url}/exec?query=${encodeURIComponent('SELECT range AS n FROM range(200000), (SELECT v FROM one)')}`;
  const headers = { 'x-arc-database': 'qchead' };
  const head = await fetch(url, { method: 'HEAD', headers });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  for (let i = 0; i < 2; i++) {
    const res = await fetch(url, { headers });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { dataset: number[][]; count: number };
    assert.equal(body.count, 200_000, `GET ${i + 1}`);
    assert.equal(body.dataset.length, 200_000);
    assert.deepEqual(body.dataset[199_999], [199_999]);
  }
  assert.equal(await server.connectionsInUse(), 0);
});

test('/exec pages and the document without columns are cached apart from the whole result; a page counting every row is not cached', async () => {
  const lines = Array.from({ length: 10 }, (_, i) => `pg v=${i}i ${T0 + i}`).join('\n');
  assert.equal((await server.writeLines(lines, 'db=qcpage&precision=s')).status, 204);
  await server.flush();
  const sql = 'SELECT v FROM pg ORDER BY v';
  const get = async (params: string): Promise<unknown> =>
    (await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}${params}`, { headers: { 'x-arc-database': 'qcpage' } })).json();
  const before = (await metrics()).cache;
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await get('&limit=2,4'), { query: sql, columns: [{ name: 'v', type: 'LONG' }], timestamp: -1, dataset: [[1], [2], [3]], count: 4 });
    assert.deepEqual(await get('&limit=3&nm=true'), { dataset: [[0], [1], [2]], count: 3 });
    // Its count is the whole result's, which the cached page (`count` 4) does not hold: never cached.
    assert.deepEqual(await get('&limit=2,4&count=true'), { query: sql, columns: [{ name: 'v', type: 'LONG' }], timestamp: -1, dataset: [[1], [2], [3]], count: 10 });
    const whole = await get('') as { dataset: unknown[]; count: number; columns: unknown[] };
    assert.equal(whole.count, 10, `whole, round ${i + 1}`);
    assert.equal(whole.columns.length, 1);
  }
  const after = (await metrics()).cache;
  assert.equal(after.hits - before.hits, 3, 'the second round came from the cache');
  // The cached page, with QuestDB's timings made for this request.
  const timed = await get('&limit=2,4&timings=true') as Record<string, unknown>;
  assert.equal((await metrics()).cache.hits - after.hits, 1);
  assert.deepEqual({ ...timed, timings: Object.keys(timed.timings as object) },
    { query: sql, columns: [{ name: 'v', type: 'LONG' }], timestamp: -1, dataset: [[1], [2], [3]], count: 4, timings: ['authentication', 'compiler', 'execute', 'count'] });
});

/**
 * The S3 backend when S3 misbehaves, and several nodes on one bucket, against real
 * s3rver and Strata processes: the S3 server is killed while a client writes and
 * restarted over the same directory, after which every acknowledged record is
 * queryable exactly once; two Strata processes sharing a bucket each see the other's
 * rows once their listing cache (STRATA_S3_LIST_TTL_MS) has expired; with S3 paused
 * (answering nothing), a query's deadline or its client leaving ends its planning at once,
 * its connection, cache pins and scratch files freed, a download no query waits for any
 * more stopped, storage not marked failing; a write waiting there for a stored schema is
 * answered 503 at its bound, or given up when its client leaves, nothing of it taken;
 * a flush held there while writes reach the byte bound makes them 429 (a flush is under
 * way), taken again once it is written.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { idWriter, removeDir, sleep, TestServer, waitFor } from './harness.js';
import { S3TestServer } from './s3-harness.js';

interface Health {
  ok: boolean;
  last_error: string | null;
}

async function health(server: TestServer): Promise<Health> {
  return ((await (await fetch(`${server.url}/api/v1/storage/stats`)).json()) as { stats: { health: Health } }).stats.health;
}

test('S3 outage while a client writes: every acknowledged record is queryable after S3 returns', async () => {
  const s3 = await S3TestServer.start();
  const server = await TestServer.start(s3.env({
    STRATA_BUFFER_MAX_AGE_MS: '200', STRATA_S3_MAX_ATTEMPTS: '2', STRATA_S3_REQUEST_TIMEOUT_MS: '2000',
  }));
  try {
    const acknowledged: number[] = [];
    const refused: number[] = [];
    let id = 0;
    const writeBatch = async (): Promise<void> => {
      const ids = Array.from({ length: 25 }, () => id++);
      const lines = ids.map((i) => `outage,host=h${i % 4} id=${i}i ${1700000000000 + i * 60_000}`).join('\n');
      const res = await server.writeLines(lines, 'db=out&precision=ms');
      await res.arrayBuffer();
      (res.status === 204 ? acknowledged : refused).push(...ids);
    };

    for (let i = 0; i < 10; i++) {
      await writeBatch();
      await sleep(40);
    }
    await s3.stop('SIGKILL');
    // Keep writing while S3 is down: age flushes fail and are retried.
    for (let i = 0; i < 20; i++) {
      await writeBatch();
      await sleep(40);
    }
    const down = await health(server);
    assert.equal(down.ok, false, 'storage reported failing');
    assert.ok(down.last_error !== null && down.last_error.length > 0);
    const flushDuringOutage = await server.post('/api/v1/write/flush', '');
    assert.equal(flushDuringOutage.status, 503, 'a flush that cannot reach S3 says so');
    assert.equal(flushDuringOutage.headers.get('retry-after'), '5');
    await flushDuringOutage.arrayBuffer();

    await s3.restart();
    for (let i = 0; i < 10; i++) {
      await writeBatch();
      await sleep(40);
    }
    // The held snapshots are retried; a flush succeeds once S3 answers again.
    let flushed = false;
    for (let attempt = 0; attempt < 40 && !flushed; attempt++) {
      const res = await server.post('/api/v1/write/flush', '');
      await res.arrayBuffer();
      flushed = res.status === 200;
      if (!flushed) await sleep(250);
    }
    assert.ok(flushed, 'flush succeeded after S3 came back');
    assert.equal((await health(server)).ok, true, 'storage healthy again');

    assert.ok(acknowledged.length >= 750, `acknowledged ${acknowledged.length}, refused ${refused.length}`);
    const rows = await server.rows('SELECT id FROM outage ORDER BY id', 'out');
    const stored = rows.map((r) => Number(r[0]));
    const ackSet = new Set(acknowledged);
    assert.equal(new Set(stored).size, stored.length, 'no record stored twice');
    for (const i of acknowledged) assert.ok(stored.includes(i), `acknowledged record ${i} is queryable`);
    for (const i of stored) assert.ok(ackSet.has(i) || refused.includes(i), `stored record ${i} was sent`);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

test('two Strata processes on one bucket: a query on either returns both sets after the listing refresh', async () => {
  const s3 = await S3TestServer.start();
  const ttlMs = 1000;
  const a = await TestServer.start(s3.env({ STRATA_NODE_ID: 'nodea', STRATA_S3_LIST_TTL_MS: String(ttlMs) }));
  const b = await TestServer.start(s3.env({ STRATA_NODE_ID: 'nodeb', STRATA_S3_LIST_TTL_MS: String(ttlMs) }));
  try {
    const lines = (node: string, from: number) =>
      Array.from({ length: 50 }, (_, i) => `shared,node=${node} v=${from + i}i ${1700000000 + from + i}`).join('\n');
    assert.equal((await a.writeLines(lines('a', 0), 'db=multi&precision=s')).status, 204);
    await a.flush();
    // B lists (and caches) the measurement before writing its own rows.
    assert.deepEqual(await b.rows('SELECT node, count(*) FROM shared GROUP BY node', 'multi'), [['a', 50]]);
    assert.equal((await b.writeLines(lines('b', 1000), 'db=multi&precision=s')).status, 204);
    await b.flush();
    // B's own write is visible to B at once.
    assert.deepEqual(await b.rows('SELECT node, count(*) FROM shared GROUP BY node ORDER BY node', 'multi'), [['a', 50], ['b', 50]]);

    const expected = [['a', 50, 1225], ['b', 50, 51225]];
    const sql = 'SELECT node, count(*), sum(v) FROM shared GROUP BY node ORDER BY node';
    const flushedAt = Date.now();
    for (const node of [a, b]) {
      let rows = await node.rows(sql, 'multi');
      while (JSON.stringify(rows) !== JSON.stringify(expected) && Date.now() - flushedAt < ttlMs + 3000) {
        await sleep(100);
        rows = await node.rows(sql, 'multi');
      }
      assert.deepEqual(rows, expected);
    }
    assert.ok(Date.now() - flushedAt < ttlMs + 3000, 'visible within the listing TTL');
    // Files of both nodes, told apart by their node ids.
    const tables = await a.rows('SHOW TABLES', 'multi');
    assert.equal(tables[0][3], 2, "one file per node, in the same hour partition");
  } finally {
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
    removeDir(a.dataDir);
    removeDir(b.dataDir);
    await s3.destroy();
  }
});

test('the byte bound reached while a flush waits on a stalled S3: 429 with Retry-After 1, writes taken once it is written', async () => {
  const s3 = await S3TestServer.start();
  const server = await TestServer.start(s3.env({
    STRATA_BUFFER_MAX_BYTES: '20000', STRATA_BUFFER_MAX_RECORDS: '1000000', STRATA_BUFFER_MAX_AGE_MS: '3600000',
    STRATA_S3_REQUEST_TIMEOUT_MS: '60000',
  }));
  try {
    const { write, acked } = idWriter(server, 'held', 'bp');
    // The measurement's stored schema is read before S3 stalls.
    assert.equal((await write()).status, 204);
    s3.pause();
    let refused: Response | undefined;
    try {
      for (let i = 0; i < 100 && refused === undefined; i++) {
        const res = await write();
        if (res.status !== 204) refused = res;
      }
      assert.ok(refused !== undefined, 'the byte bound was never reached');
      assert.equal(refused.status, 429, await refused.clone().text());
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.match(((await refused.json()) as { error: string }).error, /write buffers full/);
      const stats = ((await (await fetch(`${server.url}/api/v1/write/stats`)).json()) as { stats: { backpressure: string; records_pending_flush: number } }).stats;
      assert.equal(stats.backpressure, 'buffers_full');
      assert.ok(stats.records_pending_flush > 0, 'a flush is under way');
    } finally {
      s3.resume();
    }
    const deadline = performance.now() + 15_000;
    while ((await write()).status !== 204) {
      assert.ok(performance.now() < deadline, 'still refused after S3 answered again');
      await sleep(100);
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT count(*), count(DISTINCT id), min(id) FROM held', 'bp'), [[acked.length, acked.length, 0]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

test('a write refused because the stored schema cannot be loaded (S3 down) is not replayed from the WAL after a crash', async () => {
  const s3 = await S3TestServer.start();
  let server = await TestServer.start(s3.env({ STRATA_S3_MAX_ATTEMPTS: '1', STRATA_S3_REQUEST_TIMEOUT_MS: '1000' }));
  try {
    await s3.stop('SIGKILL');
    // `fresh` was never seen by this process: its schema must be read from the bucket first.
    const refused = await server.writeLines('fresh,host=a v=1i 1700000000', 'db=schemaless&precision=s');
    assert.equal(refused.status, 503, await refused.text());
    assert.equal(refused.headers.get('retry-after'), '5', 'Telegraf waits that long instead of retrying at once');
    // One error line per refused request, without a stack: a client retrying through an outage does not flood the log.
    const refusals = (): { level: number; msg: string }[] => server.logLines().filter((l) => /S3 list .* failed/.test(l.msg));
    await waitFor(() => refusals().length > 0, 5000);
    assert.deepEqual(refusals().map((l) => l.level), [50]);
    assert.ok(!server.output.includes('"stack"'), server.output.slice(-2000));
    await s3.restart();
    await server.stop('SIGKILL');
    server = await TestServer.start(s3.env({}), server.dataDir);
    assert.deepEqual(await server.rows('SELECT count(*) FROM fresh', 'schemaless'), [], 'nothing of the refused write');
    assert.equal((await server.writeLines('fresh,host=b v=2i 1700000001', 'db=schemaless&precision=s')).status, 204);
    assert.deepEqual(await server.rows('SELECT host, v FROM fresh', 'schemaless'), [['b', 2]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

test('S3 down while a pruned query reads the schemas of the hours it leaves out: 503, not 500', async () => {
  const s3 = await S3TestServer.start();
  const env = s3.env({ STRATA_S3_LIST_TTL_MS: '600000', STRATA_S3_MAX_ATTEMPTS: '1', STRATA_S3_REQUEST_TIMEOUT_MS: '1000' });
  let server = await TestServer.start(env);
  try {
    const t0 = 1767225600;
    assert.equal((await server.writeLines(`pruned v=1i ${t0}\npruned v=2i ${t0 + 5 * 3600}`, 'db=down&precision=s')).status, 204);
    await server.flush();
    // A new process with an empty cache: no file is local, no schema known.
    assert.equal(await server.stop(), 0);
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(env, server.dataDir);
    // Lists the measurement (cached for the TTL) without reading any file.
    assert.deepEqual((await server.rows('SHOW TABLES', 'down')).map((r) => [r[1], r[3]]), [['pruned', 2]]);
    await s3.stop('SIGKILL');
    const sql = `SELECT v FROM pruned WHERE time >= to_timestamp(${t0 + 5 * 3600})`;
    const r = await server.post('/api/v1/query', JSON.stringify({ sql }), { 'content-type': 'application/json', 'x-arc-database': 'down' });
    const body = await r.json() as { error: string };
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(r.headers.get('retry-after'), '5');
    assert.match(body.error, /^S3 download .* failed/);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

/** `GET /api/v1/storage/stats`: the cache's files, those pinned, and the storage health. */
async function storageState(server: TestServer): Promise<{ files: number; pinned: number; health: Health }> {
  const { stats } = (await (await fetch(`${server.url}/api/v1/storage/stats`)).json()) as { stats: { health: Health; cache: { files: number; pinned_files: number } } };
  return { files: stats.cache.files, pinned: stats.cache.pinned_files, health: stats.health };
}

/** Files left in the cache's scratch directory (downloads in progress, footer stubs). */
function scratchFiles(server: TestServer): string[] {
  return readdirSync(join(server.dataDir, '.cache', '.part'));
}

/** Runs `sql` with a deadline of `timeoutMs`; status, body and how long the answer took (ms). */
async function timedQuery(server: TestServer, sql: string, database: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${server.url}/api/v1/query`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': database, 'x-strata-timeout-ms': String(timeoutMs), ...headers },
    body: JSON.stringify({ sql }),
  });
  const body = await res.text();
  return { status: res.status, body, ms: Date.now() - started };
}

/** A query needing no storage answers at once: the single pooled connection is free. */
async function connectionFree(server: TestServer): Promise<void> {
  const free = await timedQuery(server, 'SELECT 42 AS answer', 'stall', 1500);
  assert.equal(free.status, 200, free.body);
  assert.deepEqual((JSON.parse(free.body) as { data: unknown[][] }).data, [[42]]);
}

describe('S3 stalling while a query plans', () => {
  const t0 = 1767225600;
  const hours = 6;
  const prune = `SELECT count(*) FROM slow WHERE time >= to_timestamp(${t0 + (hours - 1) * 3600})`;
  const future = `SELECT count(*) FROM slow WHERE time >= to_timestamp(${t0 + 1000 * 3600})`;
  let s3: S3TestServer;
  let server: TestServer;
  before(async () => {
    s3 = await S3TestServer.start();
    // One connection, so a query still holding it after its answer would block the next;
    // one S3 attempt timing out after 3 s, so a wait that ignores the deadline answers 503 then.
    const env = s3.env({
      STRATA_QUERY_POOL_SIZE: '1', STRATA_S3_LIST_TTL_MS: '600000', STRATA_S3_MAX_ATTEMPTS: '1', STRATA_S3_REQUEST_TIMEOUT_MS: '3000',
    });
    server = await TestServer.start(env);
    const lines = Array.from({ length: hours }, (_, i) => `slow,host=a v=${i}i ${t0 + i * 3600}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=stall&precision=s')).status, 204);
    assert.equal((await server.writeLines(`other v=1i ${t0}`, 'db=elsewhere&precision=s')).status, 204);
    assert.equal((await server.writeLines(`waits v=7i ${t0}`, 'db=stall&precision=s')).status, 204);
    await server.flush();
    // A new process with an empty cache: nothing listed, downloaded or known of the files.
    assert.equal(await server.stop(), 0);
    rmSync(join(server.dataDir, '.cache'), { recursive: true, force: true });
    server = await TestServer.start(env, server.dataDir);
  });
  after(async () => {
    s3.resume();
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  });

  /** Runs `sql` with a 300 ms deadline while S3 answers nothing: a 504 near the deadline, nothing held. */
  async function deadlineMet(sql: string): Promise<void> {
    s3.pause();
    try {
      const r = await timedQuery(server, sql, 'stall', 300);
      assert.equal(r.status, 504, r.body);
      assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
      await connectionFree(server);
      const { pinned, health } = await storageState(server);
      assert.equal(pinned, 0, 'nothing stays pinned');
      assert.equal(health.ok, true, `an abandoned wait is no storage failure: ${health.last_error}`);
      assert.deepEqual(scratchFiles(server), [], 'no download or footer stub left');
    } finally {
      s3.resume();
    }
  }

  test('a deadline reached while planning lists, downloads or reads footers answers 504 at the deadline', async () => {
    // Listing the measurement.
    await deadlineMet(prune);
    // Downloading the one file the pruned query scans (the listing is cached now).
    assert.deepEqual((await server.rows('SHOW TABLES', 'stall')).filter((r) => r[1] === 'slow').map((r) => r[3]), [hours]);
    await deadlineMet(prune);
    // No query waits for the download any more: it was stopped, so S3 answering again
    // (resumed) brings nothing into the cache, and no partial file is left.
    await sleep(500);
    assert.equal((await storageState(server)).files, 0, 'the abandoned download was stopped');
    assert.deepEqual(scratchFiles(server), []);
    // Reading the footers of the files a query prunes away, to bind their columns.
    await deadlineMet(future);
    assert.deepEqual(await server.rows(prune, 'stall'), [[1]]);
    assert.deepEqual(await server.rows(future, 'stall'), [[0]]);
    assert.equal((await storageState(server)).pinned, 0);
    assert.deepEqual(scratchFiles(server), []);
  });

  test('a query waiting on a stalled S3 to list or download holds no query connection: another query answers meanwhile', async () => {
    // Written before the restart: not listed, nor downloaded, by this process yet.
    s3.pause();
    let waiting: Promise<{ status: number; body: string; ms: number }>;
    try {
      let answered = false;
      waiting = timedQuery(server, 'SELECT v FROM waits', 'stall', 10_000, { 'x-strata-profile': 'true' });
      void waiting.finally(() => (answered = true));
      await sleep(300);
      assert.equal(answered, false, 'the query did not wait on S3');
      // The pool's one connection.
      assert.equal(await server.connectionsInUse(), 0);
      await connectionFree(server);
      assert.equal(answered, false);
    } finally {
      s3.resume();
    }
    const r = await waiting;
    assert.equal(r.status, 200, r.body);
    const answer = JSON.parse(r.body) as { data: unknown[][]; profile: { planning_ms: number } };
    assert.deepEqual(answer.data, [[7]]);
    // Its planning time counts the wait on S3 (the listing and download before it had a connection).
    assert.ok(answer.profile.planning_ms >= 300, `planning_ms ${answer.profile.planning_ms}`);
    assert.equal((await storageState(server)).pinned, 0);
  });

  test('a client that disconnects while planning waits on S3 frees its connection at once', async () => {
    // A measurement not listed yet.
    const sql = 'SELECT count(*) FROM elsewhere.other';
    s3.pause();
    try {
      const client = new AbortController();
      const pending = fetch(`${server.url}/api/v1/query`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': 'stall' },
        body: JSON.stringify({ sql }), signal: client.signal,
      });
      await sleep(300);
      client.abort();
      await assert.rejects(pending);
      await connectionFree(server);
      const { pinned, health } = await storageState(server);
      assert.equal(pinned, 0);
      assert.equal(health.ok, true, `an abandoned wait is no storage failure: ${health.last_error}`);
      assert.deepEqual(scratchFiles(server), []);
    } finally {
      s3.resume();
    }
    assert.deepEqual(await server.rows(sql, 'stall'), [[1]]);
  });
});

test('S3 queries listing or downloading wait in the pool\'s queue: a burst as large as the idle connections and the bound is served; past it, with S3 stalled, 503 at once', async () => {
  const s3 = await S3TestServer.start();
  // Listings not cached: every query asks S3 first.
  const server = await TestServer.start(s3.env({ STRATA_QUERY_POOL_SIZE: '2', STRATA_QUERY_MAX_QUEUE: '1', STRATA_S3_LIST_TTL_MS: '0' }));
  try {
    assert.equal((await server.writeLines('burst v=1i 1767225600', 'db=queued&precision=s')).status, 204);
    await server.flush();
    const sql = 'SELECT count(*) FROM burst';
    // Two connections idle and a queue of one: three at once are all answered.
    const burst = await Promise.all([0, 1, 2].map(() => timedQuery(server, sql, 'queued', 10_000)));
    assert.deepEqual(burst.map((r) => [r.status, r.body.includes('"data":[[1]]')]), [[200, true], [200, true], [200, true]], JSON.stringify(burst));
    s3.pause();
    let stalled: Promise<{ status: number; body: string; ms: number }>[] = [];
    try {
      stalled = [0, 1, 2].map(() => timedQuery(server, sql, 'queued', 10_000));
      await sleep(300);
      assert.equal(await server.connectionsInUse(), 0, 'no connection is held while S3 stalls');
      const refused = await timedQuery(server, sql, 'queued', 10_000);
      assert.equal(refused.status, 503, refused.body);
      // The queue bound (1) plus the two idle connections.
      assert.match(refused.body, /query queue full \(3 queries waiting\)/);
    } finally {
      s3.resume();
    }
    for (const r of await Promise.all(stalled)) {
      assert.equal(r.status, 200, r.body);
      assert.match(r.body, /"data":\[\[1\]\]/);
    }
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

test('S3: records flushed while a query waits for the pool are read once, and no copy of them is left in DuckDB', async () => {
  const s3 = await S3TestServer.start();
  const server = await TestServer.start(s3.env({ STRATA_QUERY_POOL_SIZE: '1', STRATA_BUFFER_MAX_AGE_MS: '600000' }));
  try {
    assert.equal((await server.writeLines('gathered v=1i 1767225600\ngathered v=2i 1767229200', 'db=late&precision=s')).status, 204);
    // The one connection, held until this query's 2 s deadline.
    const holder = timedQuery(server, 'SELECT count(*) FROM range(1000000000000)', 'late', 2000);
    await sleep(200);
    // Lists (nothing stored yet) now, then waits for the connection.
    const waiting = timedQuery(server, 'SELECT count(*), sum(v) FROM gathered', 'late', 20_000);
    await sleep(200);
    await server.flush();
    let answeredFirst = false;
    void waiting.then(() => (answeredFirst = true));
    assert.equal((await holder).status, 504);
    assert.equal(answeredFirst, false, 'the query waited for the connection past the flush');
    const r = await waiting;
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /"data":\[\[2,3\]\]/);
    const heldTables = async (): Promise<number> => Number(/^strata_query_held_tables (\d+)/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1]);
    assert.equal(await heldTables(), 0, 'the copy of the records written meanwhile is dropped');
    assert.deepEqual(await server.rows('SELECT count(*), sum(v) FROM gathered', 'late'), [[2, 3]]);
  } finally {
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  }
});

describe('S3 stalling while a write reads a stored schema', () => {
  const t0 = 1767225600;
  let s3: S3TestServer;
  let server: TestServer;
  before(async () => {
    s3 = await S3TestServer.start();
    // One S3 attempt timing out after 3 s: a write that waited for S3 itself would answer 503 only then.
    server = await TestServer.start(s3.env({
      STRATA_BUFFER_SCHEMA_TIMEOUT_MS: '1000', STRATA_S3_MAX_ATTEMPTS: '1', STRATA_S3_REQUEST_TIMEOUT_MS: '3000',
    }));
  });
  after(async () => {
    s3.resume();
    assert.equal(await server.stop(), 0);
    removeDir(server.dataDir);
    await s3.destroy();
  });

  test('past buffer.schema_timeout_ms: 503 with Retry-After, nothing taken; the write succeeds once S3 answers', async () => {
    s3.pause();
    let late: Response;
    const started = Date.now();
    try {
      // Never seen by this process: its schema must be read from the bucket first.
      late = await server.writeLines(`stalled,host=a v=1i ${t0}`, 'db=slowschema&precision=s');
    } finally {
      s3.resume();
    }
    const ms = Date.now() - started;
    const body = (await late.json()) as { error: string };
    assert.equal(late.status, 503, body.error);
    assert.ok(ms >= 1000 && ms < 2500, `answered after ${ms} ms`);
    assert.equal(late.headers.get('retry-after'), '5');
    assert.equal(body.error, 'storage did not answer within 1000 ms while the stored schema of measurement "stalled" in database "slowschema" was read; retry later');
    assert.equal((await server.writeLines(`stalled,host=b v=2i ${t0 + 1}`, 'db=slowschema&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v FROM stalled', 'slowschema'), [['b', 2]]);
    const stats = ((await (await fetch(`${server.url}/api/v1/write/stats`)).json()) as { stats: { writes_refused: number } }).stats;
    assert.equal(stats.writes_refused, 1);
  });

  test('a client that disconnects while its write waits: nothing of the write is taken', async () => {
    s3.pause();
    try {
      const client = new AbortController();
      const pending = fetch(`${server.url}/write?db=slowschema&precision=s`, {
        method: 'POST', body: `gone,host=a v=1i ${t0}`, signal: client.signal,
      });
      await sleep(300);
      client.abort();
      await assert.rejects(pending);
      await sleep(100);
    } finally {
      s3.resume();
    }
    // The schema read runs on into the registry; a write after it is taken at once.
    assert.equal((await server.writeLines(`gone,host=b v=2i ${t0 + 1}`, 'db=slowschema&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v FROM gone', 'slowschema'), [['b', 2]]);
  });
});

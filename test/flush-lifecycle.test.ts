/**
 * Buffer flush triggers and process lifecycle: flush by size and by age without a
 * flush call, SIGTERM flushing every buffer, and data readable after a restart.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspector, parquetFiles, removeDir, sleep, stopWithin, tempDir, TestServer, waitFor } from './harness.js';


test('a buffer reaching STRATA_BUFFER_MAX_RECORDS is flushed without a flush call', async () => {
  const server = await TestServer.start({ STRATA_BUFFER_MAX_RECORDS: '100', STRATA_BUFFER_MAX_AGE_MS: '3600000' });
  try {
    const lines = Array.from({ length: 250 }, (_, i) => `size,host=h${i % 7} v=${i} ${1700000000 + i}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=default&precision=s')).status, 204);
    assert.ok(await waitFor(() => parquetFiles(server.dataDir).length >= 1, 5000), 'a file appears without a flush');
    // 250 records in one request exceed the limit once: one flush of 250; nothing left behind.
    const rows = await server.rows('SELECT count(*), count(DISTINCT v), min(v), max(v) FROM size');
    assert.deepEqual(rows, [[250, 250, 0, 249]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('a buffer older than STRATA_BUFFER_MAX_AGE_MS is flushed without a flush call', async () => {
  const server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '300' });
  try {
    assert.equal((await server.writeLines('age,host=a v=1 1700000000', 'db=default&precision=s')).status, 204);
    const stats = await (await fetch(`${server.url}/api/v1/write/stats`)).json() as { stats: { records_buffered: number } };
    assert.equal(stats.stats.records_buffered, 1);
    assert.ok(await waitFor(() => parquetFiles(server.dataDir).length === 1, 5000), 'flushed by age');
    assert.deepEqual(await server.rows('SELECT host, v FROM age'), [['a', 1]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('SIGTERM flushes every buffer, exits 0, and the data is readable after a restart', async () => {
  const env = { STRATA_BUFFER_MAX_AGE_MS: '3600000' };
  const first = await TestServer.start(env);
  const lines = ['a', 'b', 'c'].map((m, i) => `${m},host=x v=${i} ${1700000000 + i}`).join('\n');
  assert.equal((await first.writeLines(lines, 'db=one&precision=s')).status, 204);
  assert.equal((await first.writeLines('d v=9 1700000009', 'db=two&precision=s')).status, 204);
  assert.equal(parquetFiles(first.dataDir).length, 0, 'nothing flushed before the signal');
  assert.equal(await first.stop('SIGTERM'), 0);
  assert.equal(parquetFiles(first.dataDir).length, 4);

  const second = await TestServer.start(env, first.dataDir);
  try {
    assert.deepEqual(await second.rows('SELECT v FROM a UNION ALL SELECT v FROM b UNION ALL SELECT v FROM c ORDER BY v', 'one'), [[0], [1], [2]]);
    assert.deepEqual(await second.rows('SELECT * FROM two.d'), [['2023-11-14T22:13:29Z', 9]]);
    assert.deepEqual((await second.rows('SHOW DATABASES')).flat(), ['one', 'two']);
  } finally {
    assert.equal(await second.stop('SIGINT'), 0);
    removeDir(first.dataDir);
  }
});

test('/ready never answers 200 again once shutdown began, and the server exits 0', async () => {
  const server = await TestServer.start();
  try {
    const stopping = server.stop('SIGTERM');
    // The signal lands at some point during this loop: before it /ready may say 200;
    // after it, only 503 or a refused connection.
    const seen: (number | 'refused')[] = [];
    for (let i = 0; i < 200 && server.process.exitCode === null; i++) {
      seen.push(await fetch(`${server.url}/ready`).then((r) => r.status, () => 'refused' as const));
      if (seen.at(-1) === 'refused') break;
    }
    const firstNotReady = seen.findIndex((s) => s !== 200);
    if (firstNotReady !== -1) assert.ok(seen.slice(firstNotReady).every((s) => s !== 200), seen.join(','));
    assert.equal(await stopping, 0);
  } finally {
    removeDir(server.dataDir);
  }
});

test('SIGTERM while some flushes fail exits 1 promptly, without hanging or crashing, and writes what it can', async () => {
  // The kept WAL would make a restart on the same directory replay into the same failure,
  // so each round gets a fresh one.
  for (let round = 0; round < 3; round++) {
    const dataDir = tempDir();
    // A regular file where the year directory of two measurements must go makes their writes fail.
    for (const m of ['bad1', 'bad2']) {
      mkdirSync(join(dataDir, 'hangdb', m), { recursive: true });
      writeFileSync(join(dataDir, 'hangdb', m, '2023'), 'not a directory');
    }
    const server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '3600000' }, dataDir);
    for (const m of ['bad1', 'bad2', 'fine1', 'fine2', 'fine3']) {
      const lines = Array.from({ length: 2000 }, (_, i) => `${m},host=h${i % 10} v=${i} ${1700000000 + i}`).join('\n');
      assert.equal((await server.writeLines(lines, 'db=hangdb&precision=s')).status, 204);
    }
    const exit = await Promise.race([server.stop('SIGTERM'), sleep(20_000).then(() => 'hung')]);
    if (exit === 'hung') server.process.kill('SIGKILL');
    assert.equal(exit, 1, `round ${round}: exit ${exit}\n${server.output.slice(-2000)}`);
    assert.equal(server.process.signalCode, null, 'not killed by a signal (no crash)');
    const fine = parquetFiles(dataDir).filter((f) => f.includes('fine'));
    assert.equal(fine.length, 3, `the healthy measurements were written: ${fine.join(', ')}`);
    removeDir(dataDir);
  }
});

test('a failed Parquet COPY: the flush answers 503 naming the file key, the records stay readable, the next flush writes them once', async () => {
  const server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '3600000' });
  try {
    assert.equal((await server.writeLines('copyfail,host=a v=1 1700000000\ncopyfail,host=b v=2 1700000001', 'db=default&precision=s')).status, 204);
    // A file where the staging directory goes: it cannot be made again, nor the file created.
    const staging = join(server.dataDir, '.staging');
    rmSync(staging, { recursive: true });
    writeFileSync(staging, '');
    const res = await server.post('/api/v1/write/flush', '');
    const body = await res.text();
    assert.equal(res.status, 503, body);
    assert.match(body, /writing default\/copyfail\/2023\/11\/14\/22\/copyfail_\d{8}_\d{6}_2_[0-9a-z-]+\.parquet failed/);
    assert.ok(!body.includes(staging), `the staging path stays internal: ${body}`);
    assert.deepEqual(await server.rows('SELECT host, v FROM copyfail ORDER BY time'), [['a', 1], ['b', 2]]);
    rmSync(staging);
    // The failed flush is retried after a random backoff of up to 200 ms: a retry that began
    // before the way was clear fails once more, and a flush waiting for it says so.
    let flushed = await server.post('/api/v1/write/flush', '');
    if (flushed.status === 503) flushed = await server.post('/api/v1/write/flush', '');
    assert.equal(flushed.status, 200, await flushed.text());
    assert.equal(parquetFiles(server.dataDir).length, 1);
    assert.deepEqual(await server.rows('SELECT host, v FROM copyfail ORDER BY time'), [['a', 1], ['b', 2]]);
    // The staging directory removed while running (a tmp cleaner) is made again by the next flush.
    rmSync(staging, { recursive: true });
    assert.equal((await server.writeLines('copyfail,host=c v=3 1700000002', 'db=default&precision=s')).status, 204);
    assert.equal((await server.post('/api/v1/write/flush', '')).status, 200);
    assert.deepEqual(await server.rows('SELECT host, v FROM copyfail ORDER BY time'), [['a', 1], ['b', 2], ['c', 3]]);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

// DuckDB holds a snapshot's flush table whole in memory, each column in 256 KiB blocks past
// 2,048 rows: 500 columns need ~140 MiB however sparse, and under a 100 MB limit every
// flush failed (storage failing, all writes 503, shutdown exit 1). Such a snapshot is
// written in pieces of rows instead, still one sorted file per hour.
for (const memory of ['100MB', '']) {
  test(`a measurement at the column limit, one field per line, flushes by size and reads back (memory limit ${memory || 'default'})`, async () => {
    const server = await TestServer.start({
      STRATA_BUFFER_MAX_RECORDS: '4000', STRATA_BUFFER_MAX_AGE_MS: '3600000',
      ...(memory === '' ? {} : { STRATA_QUERY_MEMORY_LIMIT: memory }),
    });
    try {
      // time, host, s, n, ok, a_late and f0..f493: 500 columns. 4,500 rows over two hours
      // (2,800 and 1,700); a_late only on row 2,500, which written in pieces is in the second.
      const lines = Array.from({ length: 4500 }, (_, i) =>
        `wide,host=h${i % 3} f${i % 494}=${i}${i % 1000 === 0 ? `,s="v${i}",n=${i}i,ok=${i % 2000 === 0}` : ''}${i === 2500 ? ',a_late=1' : ''} ${1700000000 + i}`);
      assert.equal((await server.writeLines(lines.join('\n'), 'db=default&precision=s')).status, 204);
      type Stats = { stats: { records_written: number; flush_errors: number; backpressure: string } };
      let stats: Stats['stats'];
      for (let waited = 0; ; waited += 50) {
        stats = ((await (await fetch(`${server.url}/api/v1/write/stats`)).json()) as Stats).stats;
        if (stats.records_written === 4500 || stats.flush_errors > 0 || waited > 30_000) break;
        await sleep(50);
      }
      assert.deepEqual([stats.records_written, stats.flush_errors, stats.backpressure], [4500, 0, 'ok'], 'flushed by size without a flush call');
      // Under the limit the one flush of 4,500 records falls back to pieces, once: one warning naming it, one count.
      const pieces = memory === '' ? 0 : 1;
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, new RegExp(`^strata_flushes_in_pieces_total ${pieces}$`, 'm'));
      const warnings = (): unknown[][] => (server.logLines() as { level: number; msg: string; database?: string; measurement?: string; rows?: number }[])
        .filter((l) => l.level === 40 && l.msg.includes('pieces of 2,048 rows'))
        .map((l) => [l.database, l.measurement, l.rows]);
      // The log travels through a pipe of its own, not with the answers.
      await waitFor(() => warnings().length >= pieces, 5000);
      assert.deepEqual(warnings(), memory === '' ? [] : [['default', 'wide', 4500]]);
      assert.equal(parquetFiles(server.dataDir).length, 2);
      assert.deepEqual(await server.rows('SELECT count(*), count(f7), sum(f7), count(f493), sum(a_late), min(time), max(time) FROM wide'),
        [[4500, 10, 22300, 9, 1, '2023-11-14T22:13:20Z', '2023-11-14T23:28:19Z']]);
      assert.deepEqual(await server.rows("SELECT host, f7 FROM wide WHERE time >= '2023-11-14T23:00:00Z' AND f7 IS NOT NULL ORDER BY time LIMIT 2"), [['h1', 2971], ['h0', 3465]]);
      assert.deepEqual(await server.rows('SELECT host, s, n, ok FROM wide WHERE s IS NOT NULL ORDER BY time'),
        [['h0', 'v0', 0, true], ['h1', 'v1000', 1000, false], ['h2', 'v2000', 2000, true], ['h0', 'v3000', 3000, false], ['h1', 'v4000', 4000, true]]);
      const duck = await inspector();
      try {
        for (const [i, file] of parquetFiles(server.dataDir).sort().entries()) {
          const path = join(server.dataDir, file);
          const [[unsorted]] = (await duck.runAndReadAll(`SELECT count(*) FROM (SELECT time < lag(time) OVER () AS back FROM '${path}') WHERE back`)).getRows();
          assert.equal(Number(unsorted), 0, file);
          // Time, the tag, then the fields by name, however the lines or the pieces brought them.
          const names = (await duck.runAndReadAll(`SELECT name FROM parquet_schema('${path}') WHERE num_children IS NULL`)).getRows().map(([n]) => String(n));
          const fields = [...Array.from({ length: 494 }, (_, f) => `f${f}`), 's', 'n', 'ok', ...(i === 0 || memory === '' ? ['a_late'] : [])].sort();
          assert.deepEqual(names, ['time', 'host', ...fields], file);
        }
      } finally {
        duck.closeSync();
      }
    } finally {
      assert.equal(await server.stop(), 0);
      removeDir(server.dataDir);
    }
  });
}

/** A raw connection to `server`, open; what it is sent is written as given (a half-sent body, say). */
async function rawSocket(server: TestServer): Promise<Socket> {
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => undefined);
  return socket;
}

/** The rows of `sql` read by a server started anew on `dir`, stopped again afterwards. */
async function rowsAfterRestart(dir: string, sql: string): Promise<unknown[][]> {
  const server = await TestServer.start({}, dir);
  try {
    return await server.rows(sql);
  } finally {
    await server.stop();
  }
}

test('SIGTERM while a client has sent half a request body: shutdown cuts it after its drain deadline, flushes and exits 0', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  // A deadline shorter than the default 5 s: the test waits it out.
  const first = await TestServer.start({ STRATA_SHUTDOWN_DRAIN_MS: '1000' }, dir);
  try {
    assert.equal((await first.writeLines('kept v=1 1767225600000000000')).status, 204);
    const socket = await rawSocket(first);
    // Promises 1,000 bytes, sends 7, then goes quiet.
    socket.write('POST /write?db=default HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\ncpu v=1');
    await sleep(200);
    const exit = await Promise.race([first.stop('SIGTERM'), sleep(40_000).then(() => 'hung')]);
    socket.destroy();
    assert.equal(exit, 0);
    assert.deepEqual(await rowsAfterRestart(dir, 'SELECT v FROM kept'), [[1]]);
  } finally {
    removeDir(dir);
  }
});

test('a write whose body is still arriving when SIGTERM comes is taken (204), flushed, and read back after a restart', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const first = await TestServer.start({}, dir);
  try {
    const socket = await rawSocket(first);
    let answer = '';
    socket.on('data', (d: Buffer) => { answer += d.toString(); });
    const body = 'inflight v=42 1767225600000000000\n';
    socket.write(`POST /write?db=default HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    await sleep(200);
    const stopping = first.stop('SIGTERM');
    await sleep(500);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(body.slice(10));
    assert.equal(await stopping, 0);
    await closed;
    assert.match(answer, /^HTTP\/1\.1 204 /, first.output.slice(-2000));
    assert.deepEqual(await rowsAfterRestart(dir, 'SELECT v FROM inflight'), [[42]]);
  } finally {
    removeDir(dir);
  }
});

test('SIGTERM while queries run in DuckDB: shutdown waits for them before it closes DuckDB, and exits 0', { timeout: 60_000 }, async () => {
  // Requests in flight are cut 50 ms after the signal, while their statements still run.
  const server = await TestServer.start({ STRATA_QUERY_POOL_SIZE: '2', STRATA_SHUTDOWN_DRAIN_MS: '50' });
  try {
    // Four calls of list_sort over a million items, in one chunk: half a second or more of work
    // (~300 MB) that DuckDB cannot interrupt, as it checks between chunks. A third query waits in the queue.
    const running = ['a', 'b', 'c'].map((tag) => fetch(`${server.url}/api/v1/query`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: `SELECT '${tag}' AS tag, sum(len(list_sort(range(1000000 + x), 'DESC'))) AS n FROM range(4) t(x)` }),
    }).then((r) => r.status, () => 'cut off'));
    const inUse = async (): Promise<number> => ((await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { pool: { connections_in_use: number } }).pool.connections_in_use;
    for (let i = 0; i < 100 && (await inUse()) < 2; i++) await sleep(10);
    assert.equal(await inUse(), 2);
    // Closed under its running statements, DuckDB deadlocked (the process hung in exit) or crashed.
    assert.equal(await stopWithin(server, 30_000), 0, server.output.slice(-3000));
    assert.match(server.output, /stopped cleanly/);
    // The statements were still running when DuckDB would have closed: what this test is about.
    assert.match(server.output, /waiting for queries still running in DuckDB/);
    await Promise.all(running);
  } finally {
    removeDir(server.dataDir);
  }
});

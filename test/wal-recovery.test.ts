/**
 * The write-ahead log end to end, on real processes: SIGKILL at random moments under
 * concurrent writers (acknowledged records stored exactly once, others at most once),
 * a torn tail cut and logged, SIGTERM leaving an empty log, and a replay rejecting
 * exactly the lines the live server rejected.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { crashCycles } from './crash-load.js';
import { removeDir, stopWithin, tempDir, TestServer } from './harness.js';
import { encodeEntry } from '../src/wal/entry.js';

/** Segment files of a WAL directory with their sizes, in LSN order. */
function segments(dataDir: string): { name: string; size: number }[] {
  const dir = join(dataDir, '.wal');
  return readdirSync(dir).filter((n) => n.endsWith('.wal')).sort().map((name) => ({ name, size: statSync(join(dir, name)).size }));
}

test('12 SIGKILL cycles under concurrent writers: every acknowledged record exactly once', async () => {
  const dataDir = tempDir();
  try {
    const report = await crashCycles(dataDir, 12);
    assert.deepEqual(report.problems, []);
    assert.equal(report.cycles, 12);
    assert.ok(report.acked > 1000, `only ${report.acked} records acknowledged`);
    // SIGTERM at the end flushed everything: the log holds one empty segment.
    assert.deepEqual(segments(dataDir).map((s) => s.size), [0]);
  } finally {
    removeDir(dataDir);
  }
});

test('a WAL torn in the middle of an entry replays everything before it and logs the cut', async () => {
  const env = { STRATA_BUFFER_MAX_AGE_MS: '3600000' };
  const first = await TestServer.start(env);
  try {
    for (let r = 0; r < 5; r++) {
      const lines = Array.from({ length: 10 }, (_, i) => `torn,req=r${r} id=${r * 10 + i}i ${1767225600 + i}`).join('\n');
      assert.equal((await first.writeLines(lines, 'db=default&precision=s')).status, 204);
    }
    await first.stop('SIGKILL');
    const [last] = segments(first.dataDir).slice(-1);
    truncateSync(join(first.dataDir, '.wal', last.name), last.size - 7);

    const second = await TestServer.start(env, first.dataDir);
    try {
      assert.deepEqual(await second.rows('SELECT req, count(*), count(DISTINCT id) FROM torn GROUP BY req ORDER BY req'),
        [['r0', 10, 10], ['r1', 10, 10], ['r2', 10, 10], ['r3', 10, 10]]);
      assert.match(second.output, /torn or corrupt tail cut/);
      assert.match(second.output, /runs past the end of the file/);
    } finally {
      assert.equal(await second.stop('SIGTERM'), 0);
    }
  } finally {
    removeDir(first.dataDir);
  }
});

/** Records stay buffered (and in the WAL) until a flush call. */
const UNFLUSHED = { STRATA_BUFFER_MAX_AGE_MS: '3600000', STRATA_BUFFER_MAX_RECORDS: '10000000' };

/**
 * A server killed (SIGKILL) holding 300,000 records of `measurement` (`v` 0 … 299,999) in its
 * WAL only: enough that replaying them outlasts the harness's 50 ms polls of /ready.
 */
async function killedWithLog(measurement: string): Promise<TestServer> {
  const first = await TestServer.start(UNFLUSHED);
  for (let body = 0; body < 30; body++) {
    const lines = Array.from({ length: 10_000 }, (_, i) => `${measurement},host=h${i % 10} v=${body * 10_000 + i}i ${1767225600 + i}`);
    assert.equal((await first.writeLines(lines.join('\n'), 'db=default&precision=s')).status, 204);
  }
  await first.stop('SIGKILL');
  return first;
}

test('while the WAL replays, /ready and the query endpoints answer 503 "starting up" with Retry-After: no answer misses a replayed record', async () => {
  const env = UNFLUSHED;
  const first = await killedWithLog('replayed');
  // Asked while /ready says 503: a query, Arc's measurement list and QuestDB's /exec.
  const asked: { path: string; status: number; retryAfter: string | null; body: string }[] = [];
  const ask = async (url: string): Promise<void> => {
    const sql = JSON.stringify({ sql: 'SELECT count(*) FROM replayed' });
    for (const [path, init] of [['/api/v1/query', { method: 'POST', body: sql }], ['/api/v1/query/arrow', { method: 'POST', body: sql }],
      ['/api/v1/measurements', {}], ['/exec?query=SELECT%20count(*)%20FROM%20replayed', {}]] as const) {
      const res = await fetch(url + path, init);
      asked.push({ path, status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() });
    }
  };
  const second = await TestServer.start(env, first.dataDir, ask);
  try {
    assert.ok(second.notReady.length > 0, 'the replay ended before /ready was asked');
    // The last round may have come after the replay ended: then it has the whole answer.
    const whole = asked.filter((a) => a.status === 200);
    for (const a of asked.filter((x) => x.status !== 200)) {
      assert.equal(a.status, 503, `${a.path}: ${a.body}`);
      assert.equal(a.retryAfter, '5');
      assert.match(a.body, /starting up: the write-ahead log is being replayed/);
    }
    assert.ok(whole.length < asked.length, 'no query was refused while the log replayed');
    for (const a of whole.filter((x) => x.path === '/api/v1/query')) assert.deepEqual((JSON.parse(a.body) as { data: unknown }).data, [[300_000]]);
    // The replayed records were flushed before appends began: only the new, empty segment is left.
    assert.deepEqual(segments(first.dataDir).map((s) => s.size), [0]);
    for (const answer of second.notReady) {
      assert.equal(answer.status, 503);
      assert.equal(answer.retryAfter, '5');
      assert.equal((JSON.parse(answer.body) as { reason: string }).reason, 'starting up');
    }
    assert.deepEqual(await second.rows('SELECT count(*), count(DISTINCT v) FROM replayed'), [[300_000, 300_000]]);
  } finally {
    await second.stop();
    removeDir(first.dataDir);
  }
});

test('a damaged stored file met while the WAL replays stops the start in one line naming it, and the log is kept', async () => {
  const first = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '3600000' });
  try {
    assert.equal((await first.writeLines('damaged v=1i 1767225600', 'db=default&precision=s')).status, 204);
    await first.stop('SIGKILL');
    // Another hour of the same measurement: replay reads the stored schema from every file.
    const hour = join(first.dataDir, 'default', 'damaged', '2026', '01', '01', '05');
    mkdirSync(hour, { recursive: true });
    writeFileSync(join(hour, 'damaged_20260101_050000_1_x.parquet'), 'not a parquet file');
    await assert.rejects(TestServer.start({}, first.dataDir), (err: Error) => {
      assert.match(err.message, /^server exited with 1 while starting:/);
      const line = err.message.split('\n').find((l) => l.startsWith('strata: failed to start: '));
      assert.equal(line, "strata: failed to start: stored file 'default/damaged/2026/01/01/05/damaged_20260101_050000_1_x.parquet' is not a valid Parquet file: No magic bytes found at end of file");
      assert.ok(!/\n\s+at /.test(err.message), err.message);
      return true;
    });
    assert.ok(segments(first.dataDir).some((s) => s.size > 0), 'the log is kept for the next start');
  } finally {
    removeDir(first.dataDir);
  }
});

test('SIGTERM flushes and leaves an empty WAL; a restart replays nothing twice', async () => {
  const env = { STRATA_BUFFER_MAX_AGE_MS: '3600000', STRATA_WAL_SYNC: 'interval' };
  const first = await TestServer.start(env);
  assert.equal((await first.writeLines('term v=1i 1767225600\nterm v=2i 1767229200', 'db=default&precision=s')).status, 204);
  const stats = await (await fetch(`${first.url}/api/v1/write/stats`)).json() as { wal: { enabled: boolean; sync_mode: string; last_lsn: number; segments: number } };
  assert.equal(stats.wal.enabled, true);
  assert.equal(stats.wal.sync_mode, 'interval');
  assert.equal(stats.wal.last_lsn, 1);
  assert.equal(await first.stop('SIGTERM'), 0);
  assert.deepEqual(segments(first.dataDir), [{ name: '00000000000000000002.wal', size: 0 }]);

  const second = await TestServer.start(env, first.dataDir);
  try {
    assert.equal((await second.writeLines('term v=3i 1767225601', 'db=default&precision=s')).status, 204);
    const after = await (await fetch(`${second.url}/api/v1/write/stats`)).json() as { wal: { last_lsn: number } };
    assert.equal(after.wal.last_lsn, 2, 'LSNs continue across restarts');
    await second.flush();
    assert.deepEqual(await second.rows('SELECT v FROM term ORDER BY v'), [[1], [2], [3]]);
  } finally {
    assert.equal(await second.stop('SIGTERM'), 0);
    removeDir(first.dataDir);
  }
});

test('concurrent requests giving new fields conflicting types: after SIGKILL the replay keeps exactly the lines the live server kept', async () => {
  const env = { STRATA_BUFFER_MAX_AGE_MS: '3600000' };
  const first = await TestServer.start(env);
  const values = ['1i', '2.5', '"s"', 'true'];
  // Request r gives each of f0..f3 a type picked from r, in an order picked from r: which
  // line of which request wins a field's type depends on the order the server took them in.
  const statuses = await Promise.all(Array.from({ length: 24 }, async (_, r) => {
    const lines = Array.from({ length: 4 }, (_, k) => {
      const fields = [0, 1, 2, 3].map((f) => `f${(f + r + k) % 4}=${values[(r * 7 + f * 3 + k) % 4]}`).slice(0, 1 + ((r + k) % 4));
      return `conflict,req=r${r} ${fields.join(',')} ${1767225600 + r * 4 + k}`;
    });
    return (await first.writeLines(lines.join('\n'), 'db=default&precision=s')).status;
  }));
  assert.ok(statuses.includes(400), 'some lines were rejected for their types');
  const snapshot = async (s: TestServer): Promise<{ columns: string[]; types: unknown[][]; rows: unknown[][] }> => {
    const all = await s.query('SELECT * FROM conflict ORDER BY time', 'default');
    assert.equal(all.status, 200, JSON.stringify(all.body));
    const types = await s.rows(`SELECT ${all.body.columns.map((c) => `typeof("${c}")`).join(', ')} FROM conflict LIMIT 1`, 'default');
    return { columns: all.body.columns, types, rows: all.body.data };
  };
  const live = await snapshot(first);
  assert.ok(live.rows.length >= 12, `only ${live.rows.length} lines kept`);
  await first.stop('SIGKILL');
  const second = await TestServer.start(env, first.dataDir);
  try {
    assert.deepEqual(await snapshot(second), live);
  } finally {
    assert.equal(await second.stop('SIGTERM'), 0);
    removeDir(first.dataDir);
  }
});

// A WAL entry holds the request body as sent: one logged before keys differing only in
// case were refused holds the same bytes, and its replay must refuse the same lines.
test('keys differing only in case from a column: after SIGKILL the replay refuses the lines the live server refused, and flushes', { timeout: 60_000 }, async () => {
  const env = { STRATA_BUFFER_MAX_AGE_MS: '3600000' };
  const first = await TestServer.start(env);
  const res = await first.writeLines([
    'walci,host=a Usage=1 1767225600',
    'walci,host=b usage=2 1767225601',
    'walci,Host=c Usage=3 1767225602',
    'walci,host=d Time=4 1767225603',
    'walci,host=e Usage=5 1767225604',
  ].join('\n'), 'db=default&precision=s');
  assert.equal(res.status, 400);
  const body = await res.json() as { error: string; accepted: number };
  assert.ok(body.error.includes('line 2: field "usage" clashes with column "Usage" of measurement "walci" (column names are case-insensitive)'), body.error);
  assert.equal(body.accepted, 2);
  await first.stop('SIGKILL');
  const second = await TestServer.start(env, first.dataDir);
  try {
    const replayed = second.logLines().find((l) => l.msg === 'WAL replayed') as { records?: number; rejected?: number } | undefined;
    assert.deepEqual([replayed?.records, replayed?.rejected], [2, 3], second.output);
    // Each entry with refused lines names them, as a warning.
    const refused = second.logLines().filter((l) => l.msg === 'WAL replay: lines refused again, as when they were written') as { level: number; lines?: string[] }[];
    assert.deepEqual(refused.map((l) => [l.level, l.lines?.length]), [[40, 3]]);
    assert.equal(refused[0].lines?.[0], 'line 2: field "usage" clashes with column "Usage" of measurement "walci" (column names are case-insensitive)');
    const expected = [['2026-01-01T00:00:00Z', 'a', 1], ['2026-01-01T00:00:04Z', 'e', 5]];
    assert.deepEqual(await second.rows('SELECT * FROM walci ORDER BY time'), expected);
    await second.flush();
    assert.deepEqual(await second.rows('SELECT * FROM walci ORDER BY time'), expected);
  } finally {
    // Bounded: a shutdown whose flush keeps failing never ends.
    assert.equal(await stopWithin(second), 0);
    removeDir(first.dataDir);
  }
});

// The replay parses the logged body again: its integers must meet the stored float64 field as the live server's did.
test('MessagePack integers stored in a float64 field: after SIGKILL the replay stores them as floats too', async () => {
  const env = { STRATA_BUFFER_MAX_AGE_MS: '3600000' };
  const first = await TestServer.start(env);
  const post = (payload: unknown): Promise<Response> => first.post('/api/v1/write/msgpack', Buffer.from(encode(payload)), { 'x-arc-database': 'default' });
  assert.equal((await post({ m: 'widen', columns: { time: [1767225600000], v: [0.5] } })).status, 204);
  await first.flush();
  assert.equal((await post({ m: 'widen', columns: { time: [1767225601000, 1767225602000], v: [1, 2] } })).status, 204);
  await first.stop('SIGKILL');
  const second = await TestServer.start(env, first.dataDir);
  try {
    const sql = 'SELECT v, typeof(v) FROM widen ORDER BY time';
    const expected = [[0.5, 'DOUBLE'], [1, 'DOUBLE'], [2, 'DOUBLE']];
    assert.deepEqual(await second.rows(sql), expected, 'replayed, buffered');
    await second.flush();
    assert.deepEqual(await second.rows(sql), expected, 'flushed');
  } finally {
    assert.equal(await second.stop('SIGTERM'), 0);
    removeDir(first.dataDir);
  }
});

test('entries logged by a version that let a tag and a string field of one key share a column replay under that rule: every record they acknowledged is kept', async () => {
  const dataDir = tempDir();
  try {
    // Format 1 (line protocol of earlier versions): a tag `x`, then a string field `x` on another line.
    mkdirSync(join(dataDir, '.wal'), { recursive: true });
    const body = Buffer.from('legacy,x=tagval v=1 1767225600\nlegacy x="fieldval" 1767225601\n');
    writeFileSync(join(dataDir, '.wal', '00000000000000000001.wal'),
      Buffer.concat(encodeEntry(1, { database: 'old', format: 'line-protocol', precision: 's', nowUs: 0, body, sharedRoles: true })));
    const server = await TestServer.start({}, dataDir);
    try {
      assert.deepEqual(await server.rows('SELECT x, v FROM legacy ORDER BY time', 'old'), [['tagval', 1], ['fieldval', null]]);
      // Live, the same lines are refused on the second line, as this version refuses them.
      const live = await server.writeLines(body.toString().replaceAll('legacy', 'fresh'), 'db=old&precision=s');
      assert.equal(live.status, 400);
      assert.match(await live.text(), /line 2: field \\"x\\" is string but measurement \\"fresh\\" stores it as a tag/);
    } finally {
      assert.equal(await stopWithin(server), 0);
    }
  } finally {
    removeDir(dataDir);
  }
});

test('SIGTERM while the WAL replays: the replay and its flush end, then the server stops cleanly (exit 0); every record is there after a restart', async () => {
  const env = UNFLUSHED;
  const first = await killedWithLog('sigterm');
  let output = '';
  let signalled = false;
  const started = TestServer.start(env, first.dataDir, async (_url, child) => {
    if (signalled) return;
    signalled = true;
    child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('close', resolve));
    assert.equal(child.exitCode, 0, output);
  });
  // The server stopped before it was ready: start gives up, naming how it ended.
  await assert.rejects(started, /server exited with 0 while starting/);
  try {
    assert.ok(signalled, 'the replay ended before /ready was asked');
    assert.match(output, /shutting down once start-up ends: the write-ahead log is being replayed/);
    assert.match(output, /stopped cleanly/);
    const second = await TestServer.start(env, first.dataDir);
    try {
      assert.deepEqual(await second.rows('SELECT count(*), count(DISTINCT v) FROM sigterm'), [[300_000, 300_000]]);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    removeDir(first.dataDir);
  }
});

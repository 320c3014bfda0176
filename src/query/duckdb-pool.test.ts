import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { NotReadyError, QueryQueueFullError } from '../errors.js';
import { DuckDBPool, type Priority } from './duckdb-pool.js';

async function pool(size: number, maxQueue = 10): Promise<DuckDBPool> {
  return DuckDBPool.create(await DuckDBInstance.create(':memory:'), size, maxQueue);
}

/** A lease held until `release()`: resolves once the connection is borrowed. */
async function hold(p: DuckDBPool): Promise<{ conn: DuckDBConnection; release: () => void }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const conn = await new Promise<DuckDBConnection>((borrowed) => {
    void p.use(async (c) => {
      borrowed(c);
      await released;
    });
  });
  return { conn, release };
}

test('eachIdle visits only idle connections that are wanted, counts the busy ones, and no lease', async () => {
  const p = await pool(3);
  const busy = await hold(p);
  const visited: DuckDBConnection[] = [];
  const skipped = await p.eachIdle(() => true, async (conn) => {
    assert.notEqual(conn, busy.conn);
    await conn.run('SELECT 1');
    visited.push(conn);
  });
  assert.equal(skipped, 1);
  assert.equal(new Set(visited).size, 2);
  assert.equal(await p.eachIdle((conn) => conn === visited[0], async () => undefined), 0);
  const s = p.stats();
  assert.deepEqual([s.totalLeases, s.inUse, s.idle], [1, 1, 2], 'only the held lease counts; the swept connections are idle again');
  busy.release();
  p.close();
});

test('eachIdle hands a connection to a caller queued behind it as soon as the callback ends', async () => {
  const p = await pool(1);
  let queued!: Promise<DuckDBConnection>;
  let swept: DuckDBConnection | undefined;
  await p.eachIdle(() => true, async (conn) => {
    swept = conn;
    queued = p.use(async (c) => c);
    assert.equal(p.waiting, 1, 'the query waits while the callback runs');
  });
  assert.equal(await queued, swept);
  assert.deepEqual([p.stats().totalLeases, p.stats().idle], [1, 1]);
  p.close();
});

test('a swept connection goes back to its place in the idle stack (queries keep using the most recent one)', async () => {
  const p = await pool(3);
  const recent = await p.use(async (c) => c);
  const swept: DuckDBConnection[] = [];
  await p.eachIdle((conn) => conn !== recent, async (conn) => void swept.push(conn));
  assert.equal(swept.length, 2);
  assert.equal(await p.use(async (c) => c), recent);
  p.close();
});

test('execution time and its count cover the same leases: a running one counts in neither', async () => {
  const p = await pool(1);
  await p.use(async (c) => c.run('SELECT 1'));
  const running = await hold(p);
  const during = p.stats();
  assert.deepEqual([during.totalLeases, during.execCount], [2, 1]);
  assert.ok(Math.abs(during.avgExecMs * during.execCount - during.execSumUs / 1000) < 0.01, 'the mean is the sum over the same count');
  running.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(p.stats().execCount, 2);
  p.close();
});

test('a full queue takes a more urgent caller in place of its last least urgent waiter, which is refused with 503; no less urgent caller gets in', async () => {
  const p = await pool(1, 2);
  const busy = await hold(p);
  const outcomes: string[] = [];
  const ask = (name: string, priority: Priority): Promise<void> => p.use(async () => void outcomes.push(`${name} ran`), { priority })
    .catch((err: unknown) => void outcomes.push(`${name} ${err instanceof QueryQueueFullError ? 'refused' : String(err)}`));
  const done = [ask('low-1', 'low'), ask('low-2', 'low')];
  // Full: the critical caller takes low-2's place (the last of the least urgent).
  done.push(ask('critical', 'critical'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(outcomes, ['low-2 refused']);
  // Then normal takes low-1's; another low finds nobody less urgent and is refused itself.
  done.push(ask('normal', 'normal'), ask('low-3', 'low'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(outcomes, ['low-2 refused', 'low-1 refused', 'low-3 refused']);
  assert.deepEqual(p.stats().queueDepth, { critical: 1, high: 0, normal: 1, low: 0 });
  busy.release();
  await Promise.all(done);
  assert.deepEqual(outcomes.slice(3), ['critical ran', 'normal ran']);
  assert.equal(p.stats().rejected, 3);
  p.close();
});

test('a caller with `before` waits in the queue, counted in its bound, until `before` resolves, even with a connection idle; its signal aborts when the caller is refused', async () => {
  const p = await pool(1, 2);
  let finish!: () => void;
  const prepared = p.use(async () => 'ran', { before: () => new Promise<void>((resolve) => (finish = resolve)) });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([p.waiting, p.waitingReady, p.inUse], [1, 0, 0], 'queued, not lent the idle connection');
  // A plain caller takes the idle connection meanwhile and gives it back.
  assert.equal(await p.use(async () => 'plain'), 'plain');
  finish();
  assert.equal(await prepared, 'ran');
  assert.deepEqual([p.waiting, p.inUse], [0, 0]);

  // Failing `before`: `use` rejects with its error, nothing stays queued.
  await assert.rejects(p.use(async () => 'never', { before: async () => { throw new Error('listing failed'); } }), /listing failed/);
  assert.equal(p.waiting, 0);
  // Counted as a lease that failed: its query failed there, as it would have on a connection.
  assert.deepEqual([p.stats().totalLeases, p.stats().failedLeases], [3, 1]);
  // One whose caller leaves while its `before` runs is not.
  const gone = new AbortController();
  const leaving = p.use(async () => 'never', {
    signal: gone.signal,
    before: (signal) => new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('listing aborted')))),
  });
  await new Promise((r) => setImmediate(r));
  gone.abort(new Error('client left'));
  await assert.rejects(leaving, /client left/);
  assert.deepEqual([p.stats().totalLeases, p.stats().failedLeases], [3, 1]);

  // Counted in the bound: with the queue full of callers still in `before`, another one is refused at once;
  // a critical one takes the last low one's place, whose `before` is told.
  const busy = await hold(p);
  const signals: AbortSignal[] = [];
  const pending = () => new Promise<void>(() => undefined);
  const lows = [0, 1].map(() => p.use(async () => undefined, { priority: 'low', before: (signal) => { signals.push(signal); return pending(); } }).catch((err: unknown) => err));
  await assert.rejects(p.use(async () => undefined, { priority: 'low' }), QueryQueueFullError);
  const critical = p.use(async () => 'critical', { priority: 'critical', before: async () => undefined });
  assert.ok((await lows[1]) instanceof QueryQueueFullError);
  assert.deepEqual(signals.map((s) => s.aborted), [false, true]);
  busy.release();
  assert.equal(await critical, 'critical');
  await p.drain();
  assert.ok((await lows[0]) instanceof NotReadyError);
  assert.equal(signals[0].aborted, true, 'refused by drain: its `before` is told too');
  assert.deepEqual([p.stats().totalLeases, p.stats().failedLeases], [5, 1], 'the callers refused count as neither');
  p.close();
});

test('stopQueueing lets callers in their `before` go on: once done, they take an idle connection, or are refused if none is', async () => {
  const p = await pool(1);
  const finish: (() => void)[] = [];
  const later = (): Promise<void> => new Promise<void>((resolve) => finish.push(resolve));
  const first = p.use(async () => 'first', { before: later });
  await new Promise((r) => setImmediate(r));
  p.stopQueueing();
  // Let in while the connection is idle.
  const second = p.use(async () => 'second', { before: later }).catch((err: unknown) => err);
  const busy = await hold(p);
  // Refused now: no connection idle.
  await assert.rejects(p.use(async () => 'third', { before: async () => undefined }), NotReadyError);
  busy.release();
  finish[0]();
  assert.equal(await first, 'first');
  const again = await hold(p);
  finish[1]();
  assert.ok((await second) instanceof NotReadyError, 'done while the connection was busy');
  again.release();
  p.close();
});

test('drain refuses the waiting callers and later ones, interrupts the running statements, and resolves once every connection is back', async () => {
  const p = await pool(2);
  const held = await hold(p);
  // Runs for minutes unless interrupted; drain starts before DuckDB has begun it (the same tick).
  const running = p.use((conn) => conn.run('SELECT count(*) FROM range(2000000000000) t(x) WHERE x % 7 = 3'));
  const waiting = p.use(async () => 'ran');
  let drained = false;
  const draining = p.drain().then(() => (drained = true));
  await assert.rejects(waiting, (err: Error) => err instanceof NotReadyError && err.message === 'shutting down');
  await assert.rejects(running, /INTERRUPT/);
  await assert.rejects(p.use(async () => 'ran'), NotReadyError);
  // The held connection runs nothing DuckDB could interrupt: drain waits for its release.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(drained, false);
  held.release();
  await draining;
  assert.equal(p.stats().idle, 2);
  p.close();
});

test('stopQueueing refuses the waiting callers and every later one that would wait, and still lends idle connections', async () => {
  const p = await pool(2);
  const busy = await hold(p);
  const second = await hold(p);
  const waiting = p.use(async () => 'served', { priority: 'critical' });
  assert.equal(p.waiting, 1);
  p.stopQueueing();
  await assert.rejects(waiting, NotReadyError);
  await assert.rejects(p.use(async () => 'served'), NotReadyError);
  second.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(await p.use(async () => 'served'), 'served', 'an idle connection is still lent');
  busy.release();
  p.close();
});

test('the wait statistics count the callers that left the queue without a connection (deadline, more urgent caller), not only leases', async () => {
  const p = await pool(1, 1);
  const busy = await hold(p);
  const controller = new AbortController();
  const gaveUp = p.use(async () => undefined, { signal: controller.signal, priority: 'low' });
  await new Promise((r) => setTimeout(r, 60));
  controller.abort(new Error('deadline'));
  await assert.rejects(gaveUp, /deadline/);
  const pushedOut = p.use(async () => undefined, { priority: 'low' });
  await new Promise((r) => setTimeout(r, 60));
  const urgent = p.use(async () => undefined, { priority: 'critical' });
  await assert.rejects(pushedOut, QueryQueueFullError);
  const s = p.stats();
  assert.ok(s.waitSumMs >= 110, `waited ${s.waitSumMs} ms in all`);
  // The one lease waited nothing; two callers waited ~60 ms each and left.
  assert.ok(s.avgWaitMs >= 110 / 3, `average ${s.avgWaitMs} ms`);
  busy.release();
  await urgent;
  p.close();
});

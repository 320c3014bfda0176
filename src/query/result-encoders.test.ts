import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { QueryExecutionError, ResultTooLargeError } from '../errors.js';
import { ChunkBudget } from './chunk-budget.js';
import { readColumn, type Column } from './chunk-columns.js';
import { ResultEncoders, type WorkerRows } from './result-encoders.js';
import { jsonRowsBytes, rowsBytes } from './json-result.js';

let conn: DuckDBConnection;
before(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => conn.closeSync());

/** The query the chunks of a test belong to (`encode`'s owner). */
const query = {};

/** The bytes of a chunk encoded at once or on a worker. */
function bytesOf(encoded: Buffer | WorkerRows): Promise<Buffer> {
  return Buffer.isBuffer(encoded) ? Promise.resolve(encoded) : encoded.done;
}

/** The chunks of `sql`'s result, read as the query route reads them. */
async function chunks(sql: string): Promise<{ columns: Column[]; rowCount: number }[]> {
  const result = await conn.stream(sql);
  const types = result.columnTypes();
  const out: { columns: Column[]; rowCount: number }[] = [];
  for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    const budget = new ChunkBudget(result.columnNames(), chunk.rowCount);
    out.push({ columns: types.map((t, i) => readColumn(chunk!, i, t, 'exact', budget)), rowCount: chunk.rowCount });
  }
  return out;
}

test('chunks encoded on worker threads are byte for byte those of the event loop, JSON and CSV in turn, every column kind, and the caller keeps its columns', async () => {
  const encoders = new ResultEncoders(2);
  try {
    const all = await chunks(`SELECT range AS i, range / 7 AS d, CASE WHEN range % 5 = 0 THEN NULL ELSE range * 1.5 END AS nullable,
      'h' || (range % 100) || CASE WHEN range % 3 = 0 THEN ' "quoted" \\ é ✓' ELSE '' END AS s,
      TIMESTAMP '2026-01-01' + INTERVAL (range) SECOND AS t, [range, range + 1] AS list, range % 2 = 0 AS b,
      (range % 128)::TINYINT AS small, DATE '2026-01-01' + (range % 400)::INTEGER AS day
      FROM range(20000)`);
    assert.ok(all.length > 5);
    // Each chunk as JSON, then as CSV: a thread's times are quoted in one and bare in the other.
    const formats = ['json', 'csv'] as const;
    const work = all.flatMap((c, i) => formats.map((format) => ({ ...c, format, continued: i > 0 })));
    const expected = work.map((w) => rowsBytes(w.columns, w.rowCount, w.format, w.continued));
    const encoded = work.map((w) => encoders.encode(w.columns, w.rowCount, w.format, w.continued, query));
    for (const format of formats) assert.ok(encoded.some((e, i) => !Buffer.isBuffer(e) && work[i].format === format), `some ${format} chunks went to a worker`);
    const got = await Promise.all(encoded.map(bytesOf));
    got.forEach((bytes, i) => assert.ok(bytes.equals(expected[i]), `${work[i].format} chunk ${i >> 1}`));
    // The columns were copied to the workers, not taken: the event loop encodes them again alike.
    work.forEach((w, i) => assert.ok(rowsBytes(w.columns, w.rowCount, w.format, w.continued).equals(expected[i]), `${w.format} chunk ${i >> 1} after`));
  } finally {
    await encoders.close();
  }
});

test('a small chunk, or any chunk when no worker has room or there are none, is encoded at once on the event loop', async () => {
  const [small] = await chunks('SELECT range AS n FROM range(100)');
  const [full] = await chunks('SELECT range AS n FROM range(2048)');
  const none = new ResultEncoders(0);
  assert.ok(Buffer.isBuffer(none.encode(full.columns, full.rowCount, 'json', false, query)));
  await none.close();
  const one = new ResultEncoders(1);
  try {
    assert.equal(one.encode(small.columns, small.rowCount, 'json', false, query).toString(), jsonRowsBytes(small.columns, small.rowCount, false).toString());
    const held = [one.encode(full.columns, full.rowCount, 'json', false, query), one.encode(full.columns, full.rowCount, 'json', true, query)];
    assert.ok(held.every((e) => !Buffer.isBuffer(e)));
    assert.ok(Buffer.isBuffer(one.encode(full.columns, full.rowCount, 'json', true, query)), 'the worker holds two chunks: the third is not queued behind them');
    await Promise.all(held.map(bytesOf));
  } finally {
    await one.close();
  }
});

test("a worker holding one query's chunks has no room for another query's: that chunk is encoded at once on the event loop", async () => {
  const [full] = await chunks('SELECT range AS n FROM range(2048)');
  const other = {};
  const encoders = new ResultEncoders(1);
  try {
    const first = encoders.encode(full.columns, full.rowCount, 'json', false, query);
    assert.ok(!Buffer.isBuffer(first), "the first query's chunk went to the worker");
    const beside = encoders.encode(full.columns, full.rowCount, 'json', false, other);
    assert.ok(Buffer.isBuffer(beside), "the other query's chunk did not wait behind it");
    const second = encoders.encode(full.columns, full.rowCount, 'json', true, query);
    assert.ok(!Buffer.isBuffer(second), 'the first query still has the room left');
    // Once the worker has replied to them all, it takes any query's chunk.
    await Promise.all([bytesOf(first), bytesOf(second)]);
    const later = encoders.encode(full.columns, full.rowCount, 'json', false, other);
    assert.ok(!Buffer.isBuffer(later), 'the worker, done with the first query, took the other one');
    assert.ok((await bytesOf(later)).equals(beside));
  } finally {
    await encoders.close();
  }
});

test('a chunk whose encoding throws fails alone, with QueryExecutionError; the worker goes on encoding the others', async () => {
  const encoders = new ResultEncoders(1);
  try {
    const [good] = await chunks('SELECT range AS n FROM range(1000)');
    // A string column without its bytes: the encoder throws on it.
    const broken = [{ kind: 'utf8', offsets: new Int32Array(1001), valid: null } as unknown as Column];
    const failing = encoders.encode(broken, 1000, 'json', false, query);
    const beside = encoders.encode(good.columns, good.rowCount, 'json', false, query);
    assert.ok(!Buffer.isBuffer(failing) && !Buffer.isBuffer(beside), 'both on the worker');
    await assert.rejects(bytesOf(failing), (err: unknown) => err instanceof QueryExecutionError && /^encoding the result failed: /.test(err.message));
    assert.ok(failing.error instanceof QueryExecutionError);
    const expected = jsonRowsBytes(good.columns, good.rowCount, false);
    assert.ok((await bytesOf(beside)).equals(expected));
    assert.equal(encoders.workers, 1);
    const after = encoders.encode(good.columns, good.rowCount, 'json', false, query);
    assert.ok(!Buffer.isBuffer(after), 'still sent to the worker');
    assert.ok((await bytesOf(after)).equals(expected));
  } finally {
    await encoders.close();
  }
});

test('a chunk with a value too long to escape fails with ResultTooLargeError (422), on a worker as on the event loop', async () => {
  const encoders = new ResultEncoders(1);
  try {
    // 90 M control characters escape to 540 M characters, past V8's longest string.
    const [huge] = await chunks("SELECT CASE WHEN range = 0 THEN repeat(chr(1), 90000000) ELSE 'x' END AS s FROM range(600)");
    const sent = encoders.encode(huge.columns, huge.rowCount, 'json', false, query);
    assert.ok(!Buffer.isBuffer(sent), 'on the worker');
    await assert.rejects(bytesOf(sent), (err: unknown) => err instanceof ResultTooLargeError && err.statusCode === 422 && /^a text value of 90000000 bytes/.test(err.message));
    assert.throws(() => jsonRowsBytes(huge.columns, huge.rowCount, false), ResultTooLargeError);
  } finally {
    await encoders.close();
  }
});

test('close() fails the chunks the threads had not finished; later chunks are encoded on the event loop', async () => {
  const encoders = new ResultEncoders(1);
  const [good] = await chunks('SELECT range AS n FROM range(1000)');
  // Sent before the thread has even started: it never reads them.
  const held = [encoders.encode(good.columns, good.rowCount, 'json', false, query), encoders.encode(good.columns, good.rowCount, 'json', true, query)];
  await encoders.close();
  for (const rows of held) await assert.rejects(bytesOf(rows), (err: unknown) => err instanceof QueryExecutionError && /^encoding the result failed/.test(err.message));
  assert.equal(encoders.workers, 0);
  assert.ok(Buffer.isBuffer(encoders.encode(good.columns, good.rowCount, 'json', false, query)));
});

test('encoder threads idle again after a chunk keep no process alive', async () => {
  const module = new URL('./result-encoders.js', import.meta.url).href;
  const script = `const { ResultEncoders } = await import(${JSON.stringify(module)});
    const bytes = await new ResultEncoders(2).encode([{ kind: 'i32', values: new Int32Array(1000), valid: null }], 1000, 'json', false, {}).done;
    if (bytes.toString() !== Array(1000).fill("[0]").join()) process.exit(3);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(killer);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'exited by itself');
});

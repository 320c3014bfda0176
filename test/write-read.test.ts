/**
 * End to end: records written with the official InfluxDB client (v2 API), raw HTTP to
 * InfluxDB v1 `/write`, and Arc MessagePack in all four shapes are read back with SQL
 * and compared value by value.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { encode } from '@msgpack/msgpack';
import { parquetFiles, removeDir, TestServer } from './harness.js';

/** The column names of each Parquet file under `dir`, comma-joined, in time order of the files' hours. */
async function columnOrders(dir: string): Promise<string[]> {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const orders: string[] = [];
    for (const file of parquetFiles(dir).sort()) {
      const rows = (await conn.runAndReadAll(`SELECT name FROM parquet_schema('${join(dir, file)}') WHERE column_id > 0 ORDER BY column_id`)).getRows();
      orders.push(rows.map((r) => String(r[0])).join(','));
    }
    return orders;
  } finally {
    conn.closeSync();
  }
}

let server: TestServer;
const packr = { pack: (v: unknown): Buffer => Buffer.from(encode(v, { useBigInt64: true })) };

before(async () => {
  server = await TestServer.start();
});
after(async () => {
  assert.equal(await server.stop(), 0);
  removeDir(server.dataDir);
});

describe('InfluxDB v2 client', () => {
  test('points written with @influxdata/influxdb-client read back exactly', async () => {
    const writeApi = new InfluxDB({ url: server.url, token: 'unused' }).getWriteApi('my-org', 'influx', 'ns');
    writeApi.writePoints([
      new Point('weather').tag('station', 'a b,c=d').floatField('temp', 21.5).intField('count', -42)
        .booleanField('raining', true).stringField('note', 'say "hi" \\ bye').timestamp('1700000000123456789'),
      new Point('weather').tag('station', 'north').floatField('temp', -3.25).timestamp('1700003600000000000'),
      // Pre-1970: negative nanoseconds.
      new Point('weather').tag('station', 'old').floatField('temp', 1e-7).timestamp('-86400000000000'),
    ]);
    await writeApi.close();
    await server.flush();
    const rows = await server.rows('SELECT time, station, temp, count, raining, note FROM weather ORDER BY time', 'influx');
    assert.deepEqual(rows, [
      ['1969-12-31T00:00:00Z', 'old', 1e-7, null, null, null],
      ['2023-11-14T22:13:20.123456Z', 'a b,c=d', 21.5, -42, true, 'say "hi" \\ bye'],
      ['2023-11-14T23:13:20Z', 'north', -3.25, null, null, null],
    ]);
  });
});

describe('InfluxDB v1 /write', () => {
  test('raw line protocol with escapes, every field type and several hour partitions', async () => {
    const body = [
      '# a comment, then a blank line',
      '',
      'disk\\ io,host=srv\\,1,path=/var\\ log used=1i,free=9223372036854775807i,ratio=0.5,ok=F,label="x=1, y=\\"2\\"" 1600000000000',
      'disk\\ io,host=srv2 ratio=1.5e3,count=7u 1600003600000\r',
      'disk\\ io,host=srv2 ratio=-2.5 1600007200000',
    ].join('\n');
    const res = await server.writeLines(body, 'db=v1db&precision=ms');
    assert.equal(res.status, 204, await res.text());
    await server.flush();
    const rows = await server.rows('SELECT time, host, path, used, free, ratio, ok, label, count FROM "disk io" ORDER BY time', 'v1db');
    assert.deepEqual(rows, [
      ['2020-09-13T12:26:40Z', 'srv,1', '/var log', 1, 2 ** 63, 0.5, false, 'x=1, y="2"', null],
      ['2020-09-13T13:26:40Z', 'srv2', null, null, null, 1500, null, null, 7],
      ['2020-09-13T14:26:40Z', 'srv2', null, null, null, -2.5, null, null, null],
    ]);
    // JSON.parse rounds int64; the exact value is checked as text.
    const exact = await server.rows('SELECT free::VARCHAR FROM "disk io" WHERE free IS NOT NULL', 'v1db');
    assert.deepEqual(exact, [['9223372036854775807']]);
  });

  test('gzip bodies (by header and by magic bytes) and InfluxDB v2 path with bucket', async () => {
    const a = await server.post('/api/v2/write?org=o&bucket=gz&precision=s', gzipSync('m v=1 1700000000\n'), { 'content-encoding': 'gzip' });
    assert.equal(a.status, 204, await a.text());
    const b = await server.post('/api/v2/write?org=o&bucket=gz&precision=s', gzipSync('m v=2 1700000001\n'));
    assert.equal(b.status, 204, await b.text());
    await server.flush();
    assert.deepEqual(await server.rows('SELECT v FROM m ORDER BY time', 'gz'), [[1], [2]]);
  });
});

describe('Arc MessagePack', () => {
  test('columnar item: strings become tags, ms time guessed, nil is NULL', async () => {
    const res = await server.post('/api/v1/write/msgpack', packr.pack({
      m: 'cpu',
      columns: { time: [1700000000000, 1700000001000, 1700000002000], host: ['a', 'b', null], usage: [0.5, null, 2.25], busy: [true, false, true] },
    }), { 'content-type': 'application/msgpack', 'x-arc-database': 'mp' });
    assert.equal(res.status, 204, await res.text());
    await server.flush();
    assert.deepEqual(await server.rows('SELECT time, host, usage, busy FROM cpu ORDER BY time', 'mp'), [
      ['2023-11-14T22:13:20Z', 'a', 0.5, true],
      ['2023-11-14T22:13:21Z', 'b', null, false],
      ['2023-11-14T22:13:22Z', null, 2.25, true],
    ]);
  });

  test('row item, batch map mixing shapes, and top-level array (gzip)', async () => {
    const row = { m: 'mem', t: 1700000000000000, tags: { host: 'r1' }, fields: { free: 10, pct: 0.25 } };
    const batch = { batch: [
      { m: 'mem', t: 1700000001, h: 'r2', fields: { free: 11 } },
      { m: 'mem', columns: { time: [1700000002000000000], host: ['r3'], free: [12] } },
    ] };
    const array = [{ m: 'mem', t: 1700000003000, tags: { host: 'r4' }, fields: { free: 13 } }];
    for (const payload of [row, batch, array]) {
      const res = await server.post('/api/v1/write/msgpack', gzipSync(packr.pack(payload)), { 'content-encoding': 'gzip', 'x-arc-database': 'mp' });
      assert.equal(res.status, 204, await res.text());
    }
    await server.flush();
    assert.deepEqual(await server.rows('SELECT time, host, free, pct FROM mem ORDER BY time', 'mp'), [
      ['2023-11-14T22:13:20Z', 'r1', 10, 0.25],
      ['2023-11-14T22:13:21Z', 'r2', 11, null],
      ['2023-11-14T22:13:22Z', 'r3', 12, null],
      ['2023-11-14T22:13:23Z', 'r4', 13, null],
    ]);
  });

  test('tag values holding NUL read back exactly before and after their flush (the ENUM of the tag once failed every flush and query)', async () => {
    const res = await server.post('/api/v1/write/msgpack', packr.pack([
      { m: 'nul', t: 1700000000000, tags: { host: 'a\u0000b' }, fields: { v: 1, note: 'x\u0000' } },
      { m: 'nul', t: 1700000001000, tags: { host: 'c' }, fields: { v: 2 } },
      { m: 'nul', columns: { time: [1700000002000, 1700000003000], host: ['\u0000', null], v: [3, 4] } },
    ]), { 'content-type': 'application/msgpack', 'x-arc-database': 'nul' });
    assert.equal(res.status, 204, await res.text());
    const expected = [
      ['2023-11-14T22:13:20Z', 'a\u0000b', 1, 'x\u0000'],
      ['2023-11-14T22:13:21Z', 'c', 2, null],
      ['2023-11-14T22:13:22Z', '\u0000', 3, null],
      ['2023-11-14T22:13:23Z', null, 4, null],
    ];
    const sql = 'SELECT time, host, v, note FROM nul ORDER BY time';
    assert.deepEqual(await server.rows(sql, 'nul'), expected, 'buffered');
    await server.flush();
    assert.deepEqual(await server.rows(sql, 'nul'), expected, 'from the Parquet file');
  });

  test('a row without "h" gets no host tag (Arc would write host="unknown")', async () => {
    const res = await server.post('/api/v1/write/msgpack', packr.pack({ m: 'nohost', t: 1700000000, fields: { v: 1.5 } }));
    assert.equal(res.status, 204);
    await server.flush();
    const { body } = await server.query('SELECT * FROM nohost');
    assert.deepEqual(body.columns, ['time', 'v']);
    assert.deepEqual(body.data, [['2023-11-14T22:13:20Z', 1.5]]);
  });

  // JavaScript encoders (this file's among them) write 1.0 as the integer 1.
  test("a field's whole numbers and fractions are one float64 field, whatever the item shapes and order, in one request and after", async () => {
    const headers = { 'x-arc-database': 'mix' };
    let res = await server.post('/api/v1/write/msgpack', packr.pack([
      { m: 'mix', t: 1700000000000, fields: { v: 1 } },
      { m: 'mix', t: 1700000001000, fields: { v: 1.5 } },
      { m: 'mix', columns: { time: [1700000002000, 1700000003000], v: [2, 3] } },
    ]), headers);
    assert.equal(res.status, 204, await res.text());
    await server.flush();
    // Integers only, into the stored float64 field: once flushed, once still buffered.
    res = await server.post('/api/v1/write/msgpack', packr.pack({ m: 'mix', columns: { time: [1700000004000], v: [4] } }), headers);
    assert.equal(res.status, 204, await res.text());
    await server.flush();
    res = await server.post('/api/v1/write/msgpack', packr.pack({ m: 'mix', t: 1700000005000, fields: { v: 5 } }), headers);
    assert.equal(res.status, 204, await res.text());
    // Line protocol's `i` is an integer, as in InfluxDB: a type conflict.
    res = await server.post('/write?db=mix&precision=s', 'mix v=6i 1700000006\nmix v=7 1700000007');
    assert.equal(res.status, 400);
    assert.match(await res.text(), /line 1: field \\?"v\\?" is int64 but measurement \\?"mix\\?" stores it as float64/);
    const sql = 'SELECT epoch(time)::INT - 1700000000, v, typeof(v) FROM mix ORDER BY time';
    const expected = [[0, 1, 'DOUBLE'], [1, 1.5, 'DOUBLE'], [2, 2, 'DOUBLE'], [3, 3, 'DOUBLE'], [4, 4, 'DOUBLE'], [5, 5, 'DOUBLE'], [7, 7, 'DOUBLE']];
    assert.deepEqual(await server.rows(sql, 'mix'), expected, 'buffered');
    await server.flush();
    assert.deepEqual(await server.rows(sql, 'mix'), expected, 'from the Parquet files');

    // A field first stored from integers alone is int64; fractions sent later are refused, not truncated (Arc truncates).
    res = await server.post('/api/v1/write/msgpack', packr.pack({ m: 'ints', columns: { time: [1700000000000], n: [1] } }), headers);
    assert.equal(res.status, 204, await res.text());
    res = await server.post('/api/v1/write/msgpack', packr.pack({ m: 'ints', columns: { time: [1700000001000, 1700000002000], n: [2, 2.5] } }), headers);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /item 0: field \\?"n\\?" is float64 but measurement \\?"ints\\?" stores it as int64/);
    // Its integers in other items are still taken (200, a partial write: Arc's clients send a 4xx body again).
    res = await server.post('/api/v1/write/msgpack', packr.pack([
      { m: 'ints', t: 1700000003000, fields: { n: 3 } },
      { m: 'ints', t: 1700000004000, fields: { n: 3.5 } },
    ]), headers);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /item 1: field \\?"n\\?" is float64 but measurement \\?"ints\\?" stores it as int64/);
    assert.ok(!text.includes('item 0'), text);
    // An integer beyond 2^53 was meant as one (no JavaScript encoder sends a double so): not rounded into a float field.
    res = await server.post('/api/v1/write/msgpack', packr.pack({ m: 'mix', t: 1700000008000, fields: { v: 2n ** 53n + 1n } }), headers);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /item 0: field \\?"v\\?" is int64 but measurement \\?"mix\\?" stores it as float64/);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT n, typeof(n) FROM ints ORDER BY time', 'mix'), [[1, 'BIGINT'], [3, 'BIGINT']]);
    assert.equal((await server.rows('SELECT count(*) FROM mix', 'mix'))[0][0], 7);
  });
});

describe('schema evolution and partitions', () => {
  test('a field added later reads back as one table with NULLs', async () => {
    assert.equal((await server.writeLines('evo,host=a v=1 1700000000000000000', 'db=evo')).status, 204);
    await server.flush();
    assert.equal((await server.writeLines('evo,host=b v=2,extra="new" 1700000001000000000', 'db=evo')).status, 204);
    await server.flush();
    assert.deepEqual(await server.rows('SELECT host, v, extra FROM evo ORDER BY time', 'evo'), [['a', 1, null], ['b', 2, 'new']]);
  });

  test('each file has time, the tags, then the fields, each by name, whatever order the lines gave them; SELECT * follows', async () => {
    const hour = 3_600_000_000_000;
    const bodies = ['canon,zone=z,host=a x=1,b=2', 'canon,host=b,zone=y b=3,x=4', 'canon,zone=x,host=c x=5,b=6'];
    for (const [i, body] of bodies.entries()) {
      assert.equal((await server.writeLines(`${body} ${1_700_000_000_000_000_000 + i * hour}`, 'db=canon')).status, 204);
      await server.flush();
    }
    assert.deepEqual(await columnOrders(join(server.dataDir, 'canon', 'canon')), Array(3).fill('time,host,zone,b,x'));
    const res = await fetch(`${server.url}/api/v1/query`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': 'canon' }, body: JSON.stringify({ sql: 'SELECT * FROM canon ORDER BY time' }),
    });
    const body = (await res.json()) as { columns: string[]; data: unknown[][] };
    assert.deepEqual(body.columns, ['time', 'host', 'zone', 'b', 'x']);
    assert.deepEqual(body.data.map((r) => r.slice(1)), [['a', 'z', 2, 1], ['b', 'y', 3, 4], ['c', 'x', 6, 5]]);
  });

  // Files with identical columns are read binding from the first file alone; any
  // difference, even only in column order (files of versions that kept the order the
  // lines brought), must fall back to matching by name.
  test('files whose columns differ only in order read back by name', async () => {
    const hour = 3_600_000_000_000;
    for (const i of [0, 2]) {
      assert.equal((await server.writeLines(`ord,host=${'abc'[i]} x=${2 * i + 1},y=${2 * i + 2} ${1_700_000_000_000_000_000 + i * hour}`, 'db=ord')).status, 204);
      await server.flush();
    }
    // Hour 23 of 2023-11-14, as an earlier version wrote it, before the measurement's first query lists its files.
    const dir = join(server.dataDir, 'ord', 'ord', '2023', '11', '14', '23');
    mkdirSync(dir, { recursive: true });
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      await conn.run(`COPY (SELECT TIMESTAMPTZ '2023-11-14 23:13:20+00' AS time, 'b' AS host, 3.0::DOUBLE AS y, 4.0::DOUBLE AS x) TO '${join(dir, 'ord_20231114_231320_1_older.parquet')}' (FORMAT parquet)`);
    } finally {
      conn.closeSync();
    }
    const orders = await columnOrders(join(server.dataDir, 'ord', 'ord'));
    assert.deepEqual(orders, ['time,host,x,y', 'time,host,y,x', 'time,host,x,y'], 'the second file has its fields in another order');
    assert.deepEqual(await server.rows('SELECT host, x, y FROM ord ORDER BY time', 'ord'), [['a', 1, 2], ['b', 4, 3], ['c', 5, 6]]);
    // Twice: the second query finds the files' column lists remembered.
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await server.rows('SELECT host, y FROM ord WHERE time >= \'2023-11-14T22:00:00Z\' ORDER BY time', 'ord'), [['a', 2], ['b', 3], ['c', 6]]);
    }
  });

  test('records spanning several hours land in one file per hour and read back in order', async () => {
    const base = Date.UTC(2026, 2, 1, 22, 30) * 1000;
    const lines = Array.from({ length: 6 }, (_, i) => `span,host=h v=${i} ${(base + i * 1_800_000_000) * 1000}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=span')).status, 204);
    await server.flush();
    const rows = await server.rows('SELECT v FROM span ORDER BY time', 'span');
    assert.deepEqual(rows, [[0], [1], [2], [3], [4], [5]]);
    const tables = await server.rows('SHOW TABLES FROM span');
    assert.equal(tables[0][3], 4, 'four hour partitions: 22h, 23h, 00h, 01h');
  });
});

test('a non-ASCII database in the x-arc-database header is read as UTF-8, one database however it is named; bytes that are not UTF-8 are a 400', async () => {
  // What Go's and Python's HTTP clients put on the wire for `dü`: its UTF-8 bytes (a Latin-1 string here, one char per byte).
  const header = Buffer.from('dü').toString('latin1');
  assert.equal((await server.post('/write?db=d%C3%BC&precision=s', 'm v=1 1767225600')).status, 204);
  assert.equal((await server.post('/api/v1/write/line-protocol', 'm v=2 1767225601', { 'x-arc-database': header, 'content-type': 'text/plain' })).status, 204);
  await server.flush();
  const res = await fetch(`${server.url}/api/v1/query`, {
    method: 'POST', body: JSON.stringify({ sql: 'SELECT v FROM m ORDER BY v' }), headers: { 'content-type': 'application/json', 'x-arc-database': header },
  });
  assert.deepEqual((await res.json() as { data: unknown[][] }).data, [[1], [2]]);
  const bad = await server.post('/api/v1/write/line-protocol', 'm v=3', { 'x-arc-database': '\xff', 'content-type': 'text/plain' });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /x-arc-database header is not UTF-8/);
});

/**
 * End to end: what InfluxDB clients call besides the write itself. `/ping` (204 and the
 * version headers), Telegraf's `CREATE DATABASE` through `POST /query` (a form body, as
 * Telegraf sends it), `SHOW DATABASES` as InfluxDB 1.x clients send it, and `/api/v2/write` errors in v2's `{code, message}` shape as the
 * official v2 client reads them; a write into the database so "created" then reads back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HttpError, InfluxDB, Point, setLogger } from '@influxdata/influxdb-client';
import { removeDir, TestServer } from './harness.js';

let server: TestServer;

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  assert.equal(await server.stop(), 0);
  removeDir(server.dataDir);
});

function form(q: string): Promise<Response> {
  return fetch(`${server.url}/query`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ q }).toString(),
  });
}

test('/ping: 204 with X-Influxdb-Version, for GET and HEAD; verbose=true answers the version', async () => {
  for (const method of ['GET', 'HEAD']) {
    const res = await fetch(`${server.url}/ping`, { method });
    assert.equal(res.status, 204, method);
    assert.equal(res.headers.get('x-influxdb-version'), '1.8.10');
    assert.equal(res.headers.get('x-influxdb-build'), 'Strata');
  }
  for (const value of ['true', '1']) {
    const verbose = await fetch(`${server.url}/ping?verbose=${value}`);
    assert.equal(verbose.status, 200);
    assert.deepEqual(await verbose.json(), { version: '1.8.10' });
  }
  assert.equal((await fetch(`${server.url}/ping?verbose=false`)).status, 204);
});

test("Telegraf's CREATE DATABASE through POST /query: 200 with one result per statement; the database takes writes", async () => {
  const res = await form('CREATE DATABASE "telegraf"');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { results: [{ statement_id: 0 }] });
  const two = await form('create database metrics WITH DURATION 7d SHARD DURATION 1h NAME "rp"; CREATE DATABASE "a \\"quoted\\" name";');
  assert.deepEqual(await two.json(), { results: [{ statement_id: 0 }, { statement_id: 1 }] });
  const inUrl = await fetch(`${server.url}/query?q=${encodeURIComponent('CREATE DATABASE inurl')}`, { method: 'POST' });
  assert.equal(inUrl.status, 200);

  assert.equal((await server.writeLines('cpu,host=a usage=1.5 1700000000', 'db=telegraf&precision=s')).status, 204);
  assert.deepEqual(await server.rows('SELECT host, usage FROM cpu', 'telegraf'), [['a', 1.5]]);
});

test('SHOW DATABASES through GET or POST /query lists the databases written to, in InfluxDB 1.x\'s series shape', async () => {
  const showIn = async (db: string): Promise<unknown> => {
    const res = await fetch(`${server.url}/query?q=${encodeURIComponent('SHOW DATABASES')}`);
    assert.equal(res.status, 200);
    const body = await res.json() as { results: { series: { values?: string[][] }[] }[] };
    return body.results[0].series[0].values?.some(([name]) => name === db);
  };
  assert.notEqual(await showIn('showdb_b'), true);
  // One only buffered, one flushed.
  assert.equal((await server.writeLines('m v=1 1700000000', 'db=showdb_a&precision=s')).status, 204);
  await server.flush();
  assert.equal((await server.writeLines('m v=2 1700000000', 'db=showdb_b&precision=s')).status, 204);
  assert.equal(await showIn('showdb_b'), true);
  const res = await form('CREATE DATABASE showdb_c; show  databases');
  assert.equal(res.status, 200);
  const body = await res.json() as { results: [{ statement_id: number }, { statement_id: number; series: { name: string; columns: string[]; values: string[][] }[] }] };
  assert.deepEqual(body.results[0], { statement_id: 0 });
  const [series] = body.results[1].series;
  assert.deepEqual([body.results[1].statement_id, series.name, series.columns], [1, 'databases', ['name']]);
  assert.deepEqual(series.values.filter(([name]) => name.startsWith('showdb_')), [['showdb_a'], ['showdb_b']]);
});

test('POST /query: other InfluxQL, a bad name or no q is a 400 saying why', async () => {
  const cases: [Promise<Response>, RegExp][] = [
    [form('SELECT * FROM cpu'), /^InfluxQL is not supported, only CREATE DATABASE .* and SHOW DATABASES: .*POST \/api\/v1\/query instead of "SELECT \* FROM cpu"$/],
    [form('CREATE DATABASE ok; DROP DATABASE ok'), /instead of "DROP DATABASE ok"/],
    [form('CREATE DATABASE ".."'), /^invalid database name: database "\.\." is not allowed/],
    [form('CREATE DATABASE "a\\x"'), /^InfluxQL is not supported, only CREATE DATABASE/],
    [form('CREATE DATABASE foo WITH garbage !!'), /^InfluxQL is not supported, only CREATE DATABASE/],
    [form(''), /^missing required parameter "q"$/],
    [form(' ; '), /^parameter "q" holds no statement$/],
    [fetch(`${server.url}/query?q=${encodeURIComponent('CREATE DATABASE a')}&q=${encodeURIComponent('CREATE DATABASE b')}`, { method: 'POST' }),
      /^parameter "q" is given 2 times/],
  ];
  for (const [pending, message] of cases) {
    const res = await pending;
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, message);
  }
});

test("/api/v2/write errors carry v2's code and message, which the official client reports", async () => {
  // The client also logs the failure it throws; the test reads it from the error.
  setLogger({ error: () => undefined, warn: () => undefined });
  const writeApi = new InfluxDB({ url: server.url, token: 'unused', writeOptions: { maxRetries: 0 } }).getWriteApi('org', 'v2err', 's');
  writeApi.writeRecords(['good v=1 1700000000', 'bad v=nope 1700000001']);
  const err = await writeApi.close().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof HttpError, String(err));
  assert.equal(err.statusCode, 400);
  assert.equal(err.code, 'invalid');
  assert.match(err.message, /^write rejected: line 2: .*nothing of the body was written/);
  const raw = await server.post('/api/v2/write?bucket=v2err&precision=zz', 'x v=1');
  assert.deepEqual(Object.keys(await raw.json() as object).sort(), ['code', 'error', 'message']);
  await server.flush();
  assert.deepEqual(await server.rows('SHOW TABLES', 'v2err'), []);
});

test('/api/v2/write: lines refused for a field type conflict are a 422 (v2\'s unprocessable entity) beside the good lines kept; a malformed line refuses the whole body (400), as InfluxDB v2; /write keeps 400 and the good lines', async () => {
  const v2 = (body: string): Promise<Response> => server.post('/api/v2/write?bucket=v2conflict&precision=s', body);
  assert.equal((await v2('m,host=a v=1 1700000000')).status, 204);

  const conflict = await v2('m,host=b v=2 1700000001\nm,host=c v="text" 1700000002');
  assert.equal(conflict.status, 422);
  const body = await conflict.json() as { code: string; message: string; accepted: number; rejected: number };
  assert.equal(body.code, 'unprocessable entity');
  assert.match(body.message, /^partial write: line 2: .*"v"/);
  assert.deepEqual([body.accepted, body.rejected], [1, 1]);

  // A malformed line beside a conflict: the body is malformed, as InfluxDB v2 says with 400,
  // and none of it is written (line 3, good, neither), so sending it again fixed stores it once.
  const mixed = await v2('m,host=d v="text" 1700000003\nm,host=e v= 1700000004\nm,host=f v=6 1700000005');
  assert.equal(mixed.status, 400);
  const refused = await mixed.json() as { code: string; message: string; accepted: number; rejected: number };
  assert.equal(refused.code, 'invalid');
  assert.match(refused.message, /^write rejected: line 2: .*; nothing of the body was written \(its 2 valid lines neither\), as InfluxDB 2\.x answers a malformed line \(accepted=0 rejected=3\)$/);
  assert.deepEqual([refused.accepted, refused.rejected], [0, 3]);
  assert.equal((await v2('m,host=f v=6 1700000005')).status, 204);

  const v1 = await server.post('/write?db=v2conflict&precision=s', 'm,host=g v="text" 1700000006\nm,host=h v=8 1700000007');
  assert.equal(v1.status, 400, 'InfluxDB 1.x answers a field type conflict with 400');

  await server.flush();
  assert.deepEqual(await server.rows('SELECT host, v FROM m ORDER BY time', 'v2conflict'), [['a', 1], ['b', 2], ['f', 6], ['h', 8]]);
});

test('a point without a timestamp is stored at the server time truncated to the precision, as InfluxDB stores it', async () => {
  for (const [path, unit] of [['/write?db=notime&precision=h', 'h'], ['/api/v2/write?bucket=notime&precision=s', 's']] as const) {
    assert.equal((await server.post(path, `np,unit=${unit} v=1`)).status, 204);
  }
  await server.flush();
  const rows = await server.rows("SELECT unit, epoch_us(time) FROM np ORDER BY unit", 'notime');
  assert.equal(rows.length, 2);
  const [[, hourUs], [, secondUs]] = rows as [string, bigint | number][];
  assert.equal(Number(hourUs) % 3_600_000_000, 0, 'precision=h: a whole hour');
  assert.equal(Number(secondUs) % 1_000_000, 0, 'precision=s: a whole second');
  assert.ok(Math.abs(Number(secondUs) - Date.now() * 1000) < 60_000_000, 'about now');
});

test('a multi-line string field from the official v2 client is one point, stored with its newlines', async () => {
  const writeApi = new InfluxDB({ url: server.url, token: 'unused', writeOptions: { maxRetries: 0 } }).getWriteApi('org', 'logs', 's');
  const message = 'Traceback (most recent call last):\n  File "a.py", line 2\n\tboom = "x"\r\nValueError';
  writeApi.writePoint(new Point('log').tag('host', 'a').stringField('msg', message).intField('n', 1).timestamp(1700000000));
  writeApi.writePoint(new Point('log').tag('host', 'b').stringField('msg', 'one line').intField('n', 2).timestamp(1700000001));
  await writeApi.close();
  await server.flush();
  assert.deepEqual(await server.rows('SELECT host, msg, n FROM log ORDER BY time', 'logs'), [['a', message, 1], ['b', 'one line', 2]]);
});

test('an unterminated quote beside a multi-line string: 400 naming its line, the multi-line point and the lines after it kept', async () => {
  const body = [
    'log,host=a msg="two\nlines",n=1i 1700000000',
    'log,host=b msg="never closed,n=2i 1700000001',
    'log,host=c n=3i 1700000002',
  ].join('\n');
  const res = await server.post('/write?db=quotes&precision=s', body);
  assert.equal(res.status, 400);
  assert.match((await res.json() as { error: string }).error, /^partial write: line 3: unterminated string in field "msg" \(accepted=2 rejected=1\)$/);
  await server.flush();
  assert.deepEqual(await server.rows('SELECT host, msg, n FROM log ORDER BY time', 'quotes'), [['a', 'two\nlines', 1], ['c', null, 3]]);
});

/**
 * End to end: `POST /api/v1/query` with bad requests, refused SQL (anything but one
 * SELECT, anything reading files), the catalogue commands, name resolution corner cases
 * and the exactness of the JSON it answers with.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { removeDir, stopWithin, TestServer } from './harness.js';

let server: TestServer;

/** Per test and per hook: every wait in this file is bounded. */
const BOUND = { timeout: 60_000 };

/** A query's raw answer: status, body text, and the body parsed. */
interface Raw {
  status: number;
  text: string;
  body: { success: boolean; error?: string; columns?: string[]; data?: unknown[][]; row_count?: number };
}

async function post(body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }, path = '/api/v1/query'): Promise<Raw> {
  const res = await fetch(server.url + path, { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Raw['body'] };
}

/** Runs `sql` with unqualified names in database `qdb` (unless told otherwise). */
function sql(statement: string, database = 'qdb'): Promise<Raw> {
  return post(JSON.stringify({ sql: statement }), { 'content-type': 'application/json', 'x-arc-database': database });
}

/** Asserts a 400 in Arc's query error shape whose message contains `fragment`. */
function assertRejected(r: Raw, fragment: string | RegExp, what = ''): void {
  assert.equal(r.status, 400, `${what}: ${r.text}`);
  assert.equal(r.body.success, false, r.text);
  assert.equal(typeof r.body.error, 'string', r.text);
  if (typeof fragment === 'string') assert.ok(r.body.error!.includes(fragment), `${what}: ${r.body.error}`);
  else assert.match(r.body.error!, fragment, what);
}

before(async () => {
  server = await TestServer.start();
  const writes: [string, string][] = [
    // 2^63-1 and 2: their sum needs more than int64 and more than a double's 53 bits.
    ['qdb', 'cpu,host=a v=1i 1700000000500000000\ncpu,host=b v=9223372036854775807i 1700000001000000000\ncpu,host=c v=2i 1700000002000000000'],
    ['qdb', 'mem,host=a free=5i 1700000000000000000'],
    ['otherdb', 'cpu,host=a v=10i 1700000000500000000\ncpu,host=z v=20i 1700000009000000000'],
  ];
  for (const [db, lines] of writes) {
    const res = await server.writeLines(lines, `db=${db}`);
    assert.equal(res.status, 204, await res.text());
  }
  await server.flush();
}, BOUND);
after(async () => {
  assert.equal(await stopWithin(server), 0);
  removeDir(server.dataDir);
}, BOUND);

describe('malformed requests', BOUND, () => {
  test('no body with Content-Type: application/json: 400 in the query error shape', async () => {
    const r = await post(undefined);
    assertRejected(r, 'Body cannot be empty');
    // Arc's answer struct with its result fields empty.
    assert.deepEqual(Object.keys(r.body), ['success', 'columns', 'data', 'row_count', 'execution_time_ms', 'timestamp', 'error']);
    assert.deepEqual([r.body.columns, r.body.data, r.body.row_count], [null, null, 0]);
  });

  test('no body and no Content-Type: 400', async () => {
    assertRejected(await post(undefined, {}), 'request body must be JSON {"sql": "<statement>"}');
  });

  test('invalid JSON: 400', async () => {
    assertRejected(await post('{"sql": "SELECT 1"'), /^request body is not valid JSON \(.+\): send \{"sql": "<statement>"\}$/);
    assertRejected(await post('{"sql": 1', { 'content-type': 'application/x-www-form-urlencoded' }), 'request body is not valid JSON');
    // Fastify's own words name application/json, which the client did not send.
    const empty = await post('', { 'content-type': 'text/plain' });
    assertRejected(empty, 'request body is not valid JSON');
    assert.ok(!empty.text.includes('content-type'), empty.text);
  });

  test('the body is read as JSON whatever its Content-Type (curl -d sends a form type, others text/json or application/*+json)', async () => {
    const body = JSON.stringify({ sql: 'SELECT 1 AS one' });
    for (const type of ['application/x-www-form-urlencoded', 'text/json', 'application/vnd.api+json', 'text/plain', 'application/json; charset=utf-8']) {
      const r = await post(body, { 'content-type': type });
      assert.equal(r.status, 200, `${type}: ${r.text}`);
      assert.deepEqual(r.body.data, [[1]], type);
    }
    assertRejected(await post('{"__proto__": {"x": 1}, "sql": "SELECT 1"}', { 'content-type': 'text/json' }), 'request body is not valid JSON');
  });

  test('a compressed body (Content-Encoding gzip, deflate, br) is read as write bodies are; an unknown encoding is 415, a corrupt one 400', async () => {
    const body = Buffer.from(JSON.stringify({ sql: 'SELECT 1 AS one' }));
    for (const [encoding, bytes] of [['gzip', gzipSync(body)], ['deflate', deflateSync(body)], ['br', brotliCompressSync(body)]] as const) {
      const res = await fetch(`${server.url}/api/v1/query`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
      assert.equal(res.status, 200, encoding);
      assert.deepEqual(((await res.json()) as { data: unknown }).data, [[1]], encoding);
    }
    const unknown = await fetch(`${server.url}/api/v1/query`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': 'compress' } });
    assert.equal(unknown.status, 415);
    assert.match(((await unknown.json()) as { error: string }).error, /unsupported Content-Encoding "compress"/);
    const corrupt = await fetch(`${server.url}/api/v1/query`, { method: 'POST', body: gzipSync(body).subarray(0, 12), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    assert.equal(corrupt.status, 400);
    assert.match(((await corrupt.json()) as { error: string }).error, /invalid gzip body/);
  });

  test('JSON without a string "sql": 400', async () => {
    for (const body of ['{"query":"SELECT 1"}', '{"sql":1}', '[]', '"SELECT 1"', 'null']) {
      assertRejected(await post(body), 'request body must be JSON {"sql": "<statement>"}', body);
    }
  });

  test('a "format" key is accepted and ignored, null as absent (a Go client\'s empty field, as Arc reads it)', async () => {
    for (const format of ['arrow', null]) {
      const r = await post(JSON.stringify({ sql: 'SELECT 1 AS one', format }));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.data, [[1]]);
    }
  });

  test('a NUL character in the SQL: 400 naming its position (DuckDB would run the text before it and ignore the rest)', async () => {
    assertRejected(await sql('SELECT 1 \u0000 garbage'), 'SQL contains a NUL character (U+0000) at position 9');
  });

  test('empty SQL (blank, or only a comment): 400', async () => {
    assertRejected(await sql(''), 'SQL query is required');
    assertRejected(await sql('  \n\t '), 'SQL query is required');
    assertRejected(await sql('-- nothing here'), 'empty query');
  });

  test('SQL over 100 000 characters: 400; a body over the JSON limit: 413 in the query shape', async () => {
    assertRejected(await sql(`SELECT 1${' '.repeat(100_001)}`), 'exceeds maximum length (100000 characters)');
    const huge = await post(JSON.stringify({ sql: `SELECT 1 -- ${'x'.repeat(1_100_000)}` }));
    assert.equal(huge.status, 413, huge.text);
    assert.equal(huge.body.success, false);
  });

  test('x-arc-database ".." or with "/": 400', async () => {
    assertRejected(await sql('SELECT * FROM cpu', '..'), 'invalid database name: database ".." is not allowed');
    assertRejected(await sql('SELECT * FROM cpu', '../qdb'), 'invalid database name: database "../qdb" contains "/"');
  });

  test('a repeated ?db= parameter is a 400, not a 500', async () => {
    const r = await post(JSON.stringify({ sql: 'SELECT * FROM cpu' }), { 'content-type': 'application/json' }, '/api/v1/query?db=qdb&db=otherdb');
    assertRejected(r, 'more than once');
  });

  test('unknown route: 404 JSON', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/api/v1/nope'], ['DELETE', '/api/v1/query/cpu/x']]) {
      const res = await fetch(server.url + path, { method });
      assert.equal(res.status, 404);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await res.json(), { error: `Cannot ${method} ${path}` });
    }
  });

  test('a path served for other methods: 405 with Allow naming them', async () => {
    // Matched as the router matches: /api/v1/query/arrow is also GET /api/v1/query/:measurement.
    for (const [method, path, allow] of [['GET', '/api/v1/query', 'POST'], ['GET', '/write?db=x', 'POST'], ['POST', '/health', 'GET, HEAD'],
      ['PUT', '/api/v1/query/arrow', 'GET, HEAD, POST'], ['DELETE', '/api/v1/query/cpu', 'GET, HEAD'], ['POST', '/api/v1/measurements', 'GET, HEAD'],
      ['GET', '/api/v2/write', 'POST'], ['POST', '/exec?query=SELECT%201', 'GET, HEAD']]) {
      const res = await fetch(server.url + path, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
      const body = (await res.json()) as { error: string; success?: boolean; code?: string; message?: string; query?: string };
      assert.match(body.error, new RegExp(`^${method} is not allowed on ${path.split('?')[0]}: use `));
      assert.ok(body.error.endsWith(`use ${allow.replace(/, (\w+)$/, ' or $1')}`), body.error);
      // In the shape of the errors the path's routes answer.
      assert.equal(body.success, /^\/api\/v1\/(query|measurements)/.test(path) ? false : undefined, `${method} ${path}`);
      if (path.startsWith('/exec')) assert.equal(body.query, 'SELECT 1');
      if (path === '/api/v2/write') assert.deepEqual([body.code, body.message], ['method not allowed', body.error]);
    }
  });
});

describe('SQL errors are 400 with DuckDB\'s message, without internal paths', BOUND, () => {
  test('syntax error', async () => {
    assertRejected(await sql('SELEC 1'), 'invalid SQL: syntax error at or near "SELEC"');
    // Syntax DuckDB parses but does not support is not said to be a non-SELECT statement.
    assertRejected(await sql('SELECT 1 WHERE 2 BETWEEN SYMMETRIC 3 AND 1'), /^not supported by DuckDB: Expression type T_List/);
    assertRejected(await sql('SELECT * FROM cpu WHERE'), /syntax error at end of input/);
  });

  test('unknown column, table column and function', async () => {
    const r = await sql('SELECT nope FROM cpu');
    assertRejected(r, 'Binder Error: Referenced column "nope" not found');
    // DuckDB echoes the rewritten SQL after its message; it names files the user never wrote.
    assert.ok(!r.text.includes(server.dataDir) && !r.text.includes('read_parquet'), r.text);
    assertRejected(await sql('SELECT cpu.nope FROM cpu'), 'Table "cpu" does not have a column named "nope"');
    assertRejected(await sql('SELECT nofunc(v) FROM cpu'), 'Scalar Function with name nofunc does not exist');
  });

  test('conversion errors at run time', async () => {
    const r = await sql('SELECT v::INTEGER FROM cpu');
    assertRejected(r, 'Conversion Error');
    assert.ok(!r.text.includes(server.dataDir), r.text);
  });
});

describe('only one SELECT, nothing that reads or writes files', BOUND, () => {
  const probe = join(tmpdir(), `strata-query-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  const statements = [
    'DROP TABLE cpu',
    'DELETE FROM cpu',
    "INSERT INTO cpu VALUES (1)",
    'CREATE TABLE t (a INT)',
    `COPY (SELECT 1) TO '${probe}.csv'`,
    `COPY cpu TO '${probe}.parquet'`,
    `ATTACH '${probe}.db'`,
    `EXPORT DATABASE '${probe}-export'`,
    'SET threads=1',
    'INSTALL httpfs',
    'LOAD httpfs',
    'PRAGMA version',
    'CALL pragma_version()',
    'EXPLAIN SELECT 1',
    'PIVOT cpu ON host USING sum(v)',
    'USE otherdb',
    'CHECKPOINT',
  ];
  for (const statement of statements) {
    test(`${statement}: 400`, async () => {
      assertRejected(await sql(statement), 'only SELECT statements are allowed');
    });
  }

  test('the refusal says what to send, not how DuckDB parses; a limit DuckDB advises SET for is named without the advice', async () => {
    assertRejected(await sql('DROP TABLE cpu'), /^only SELECT statements are allowed: send one SELECT per request \(DDL, DML, COPY, ATTACH, SET, PRAGMA, EXPLAIN and CALL are refused\)$/);
    assertRejected(await sql(`SELECT ${Array.from({ length: 1100 }, () => '1').join(' + ')}`), /^invalid SQL: Max expression depth limit of 1000 exceeded\.$/);
  });

  test('no file was created by COPY, ATTACH or EXPORT, and the data is intact', async () => {
    for (const suffix of ['.csv', '.parquet', '.db', '-export']) assert.equal(existsSync(probe + suffix), false, probe + suffix);
    const r = await sql('SELECT count(*) FROM cpu');
    assert.deepEqual(r.body.data, [[3]]);
  });

  test("DuckDB's catalog views (information_schema, pg_catalog), read as databases holding no data: 400 saying what to use", async () => {
    for (const statement of ['SELECT table_name FROM information_schema.tables', 'SELECT * FROM INFORMATION_SCHEMA.columns c JOIN cpu ON true', 'SELECT * FROM pg_catalog.pg_class']) {
      assertRejected(await sql(statement), "DuckDB's catalog is not exposed; list databases with SHOW DATABASES, measurements with SHOW TABLES [FROM db], columns with DESCRIBE <measurement>");
    }
  });

  test('DESCRIBE and SHOW alone, which list every DuckDB table (the server\'s own included): 400', async () => {
    for (const statement of ['DESCRIBE', 'SHOW', 'SHOW ALL TABLES', 'SELECT * FROM (DESCRIBE)']) {
      assertRejected(await sql(statement), 'DESCRIBE, SHOW and SUMMARIZE take a measurement or a query');
    }
  });

  test('TABLE cpu answers as SELECT * FROM cpu; a form the rewrite cannot express is a 400 saying so', async () => {
    const table = await sql('TABLE cpu');
    assert.equal(table.status, 200, JSON.stringify(table.body));
    const select = (await sql('SELECT * FROM cpu')).body;
    assert.deepEqual([table.body.columns, table.body.data], [select.columns, select.data]);
    assert.equal(table.body.data?.length, 3);
    // Forms the rewrite does not take for TABLE (a comment in between, `--` earlier on the line): refused, never misread.
    assertRejected(await sql('TABLE -- all of it\n cpu'), 'needs a plain table name');
    assertRejected(await sql("SELECT count(*) FROM (SELECT '--' AS s) t, (TABLE cpu) c"), 'needs a plain table name');
  });

  test("a parser error raised by the query's own function is its own, not the rewrite's", async () => {
    assertRejected(await sql("SELECT json_deserialize_sql(json_serialize_sql('SELEC')) FROM cpu"), 'Parser Error');
  });

  test('several statements: 400, even when all are SELECTs', async () => {
    assertRejected(await sql('SELECT 1; SELECT 2'), 'expected one SELECT statement, got 2');
    assertRejected(await sql('SELECT 1; DROP TABLE cpu'), 'only SELECT statements are allowed');
  });

  const fileReaders: [string, string][] = [
    ["SELECT * FROM read_csv('/etc/passwd')", 'read_csv'],
    ["SELECT * FROM read_csv_auto('/etc/passwd')", 'read_csv_auto'],
    ["SELECT * FROM read_parquet('/etc/passwd')", 'read_parquet'],
    ["SELECT * FROM glob('/*')", 'glob'],
    ["SELECT * FROM read_text('/etc/passwd')", 'read_text'],
    ["SELECT * FROM read_blob('/etc/passwd')", 'read_blob'],
    ["SELECT * FROM read_json('/etc/passwd')", 'read_json'],
    ["SELECT * FROM parquet_metadata('/etc/passwd')", 'parquet_metadata'],
    ["SELECT * FROM query_table('cpu')", 'query_table'],
    // Hidden in a subquery, a CTE and a join beside a real measurement.
    ["SELECT (SELECT count(*) FROM read_text('/etc/passwd'))", 'read_text'],
    ["WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", 'read_csv'],
    ["SELECT * FROM cpu, read_text('/etc/passwd')", 'read_text'],
    ["DESCRIBE SELECT * FROM read_text('/etc/passwd')", 'read_text'],
    ["SUMMARIZE SELECT * FROM read_csv('/etc/passwd')", 'read_csv'],
    ["SELECT * FROM (SUMMARIZE SELECT * FROM read_blob('/etc/passwd'))", 'read_blob'],
  ];
  for (const [statement, fn] of fileReaders) {
    test(`${statement}: 400 naming ${fn}()`, async () => {
      const r = await sql(statement);
      assertRejected(r, `table function ${fn}() is not allowed`);
      assert.ok(!r.text.includes('root:'), 'no file content in the answer');
    });
  }

  test("FROM '/etc/passwd' and other paths in FROM: 400", async () => {
    assertRejected(await sql("SELECT * FROM '/etc/passwd'"), "FROM '/etc/passwd' reads a file by path");
    assertRejected(await sql('FROM $$/etc/passwd$$'), 'reads a file by path');
    assertRejected(await sql('SELECT * FROM "/etc/passwd"'), 'measurement "/etc/passwd" contains "/"');
    assertRejected(await sql('SELECT * FROM "..".cpu'), 'database ".." is not allowed');
    assertRejected(await sql('SELECT * FROM "x/../..".cpu'), 'database "x/../.." contains "/"');
    assertRejected(await sql('SELECT * FROM memory.main.cpu'), 'three-part names are not supported');
  });

  test('a few hundred bytes DuckDB would blow up while parsing or binding them (nested simple CASE operands, macro calls, aliases, CTEs, BETWEEN; a CUBE of many columns): 400 at once, the server unharmed', async () => {
    const nest = (depth: number, wrap: (e: string) => string): string => {
      let e = 'v';
      for (let i = 0; i < depth; i++) e = wrap(e);
      return `SELECT ${e} FROM cpu`;
    };
    // 18 levels: json_serialize_sql answered 324 MB and the server died; 12 of round_even took minutes to prepare.
    const started = performance.now();
    assertRejected(await sql(nest(18, (e) => `CASE ${e} WHEN 1 THEN 1 WHEN 2 THEN 2 END`)), /^query too complex: .*simple CASE/);
    assertRejected(await sql(nest(12, (e) => `round_even(${e}, 1)`)), /^query too complex: .*macro calls/);
    assertRejected(await sql(nest(16, (e) => `nullif(${e}, 1)`)), /^query too complex: .*macro calls/);
    // A macro whose body is another macro's call (roundbankers is round_even).
    assertRejected(await sql(nest(12, (e) => `roundbankers(${e}, 1)`)), /^query too complex: .*macro calls/);
    assertRejected(await sql(`SELECT ${nest(14, (e) => `fmod(${e}, 3)`).slice('SELECT '.length)}`), /^query too complex/);
    // Named arguments out of order: format_pg_type uses logical_type 15 times, type_name once.
    assertRejected(await sql(nest(5, (e) => `format_pg_type(type_name := 'x', logical_type := ${e}::VARCHAR)`)), /^query too complex: .*macro calls/);
    // Copies the binder makes, each level twice the one before: select items reusing an alias
    // (21 levels held a connection 165 s and took 7 GB), CTEs read twice, nested BETWEEN.
    const aliases = Array.from({ length: 21 }, (_, i) => `${i === 0 ? 'v + v' : `a${i - 1} + a${i - 1}`} AS a${i}`).join(', ');
    assertRejected(await sql(`SELECT ${aliases} FROM cpu`), /^query too complex: .*binds them/);
    const ctes = Array.from({ length: 10 }, (_, i) => `t${i + 1} AS NOT MATERIALIZED (SELECT (SELECT max(x) FROM t${i}) + (SELECT max(x) FROM t${i}) AS x)`).join(', ');
    assertRejected(await sql(`WITH t0 AS NOT MATERIALIZED (SELECT v AS x FROM cpu), ${ctes} SELECT * FROM t10`), /^query too complex: .*binds them/);
    assertRejected(await sql(nest(14, (e) => `(${e} BETWEEN 0 AND 1)::INT`)), /^query too complex: .*binds them/);
    // A CUBE of 15 columns: 32,768 grouping sets took 17 GB and ignored interrupts.
    const columns = Array.from({ length: 15 }, (_, i) => `v + ${i} AS c${i}`).join(', ');
    assertRejected(await sql(`SELECT count(*) FROM (SELECT ${columns} FROM cpu) GROUP BY CUBE(${Array.from({ length: 15 }, (_, i) => `c${i}`).join(', ')})`),
      /^query too complex: its GROUP BY has 32,768 grouping sets/);
    // A PIVOT whose IN lists multiply to 900,000 columns (DuckDB's pivot_limit counts 100 values).
    const ins = Array.from({ length: 5 }, (_, i) => `c${i} IN (${Array.from({ length: i === 4 ? 9 : 10 }, (_, k) => k).join(',')})`).join(', ');
    assertRejected(await sql(`SELECT count(*) FROM (PIVOT (SELECT ${columns} FROM cpu) ON ${ins} USING ${Array.from({ length: 10 }, (_, i) => `sum(c${i})`).join(', ')})`),
      /^query too complex: its PIVOT makes 900,000 columns/);
    assert.ok(performance.now() - started < 10_000, `refused in ${(performance.now() - started).toFixed(0)} ms`);
    const pivot = await sql("SELECT * FROM (PIVOT (SELECT host, v FROM cpu) ON host IN ('a', 'b', 'c') USING count(*), max(v)) ORDER BY 1");
    assert.equal(pivot.status, 200, pivot.text);
    assert.equal(pivot.body.columns!.length, 6);
    // One CASE of 3,000 WHENs on an expression: its copies are in proportion to the text.
    const mapping = await sql(`SELECT CASE lower(host) ${Array.from({ length: 3000 }, (_, i) => `WHEN 'h${i}' THEN ${i}`).join(' ')} ELSE -1 END AS m FROM cpu ORDER BY time`);
    assert.equal(mapping.status, 200, mapping.text);
    assert.deepEqual(mapping.body.data, [[-1], [-1], [-1]]);
    const cube = await sql('SELECT count(*) AS n FROM cpu GROUP BY CUBE(host, v) ORDER BY n');
    assert.equal(cube.status, 200, cube.text);
    // Aliases reused, a CTE read twice, BETWEEN: as people write them.
    const usual = await sql('WITH h AS (SELECT host, v FROM cpu) SELECT a.host, a.v::DOUBLE / 2 AS half, half * 2 AS whole, whole BETWEEN 0 AND 10 AS small ' +
      'FROM h AS a JOIN h AS b USING (host) WHERE small OR half > 0 ORDER BY a.host');
    assert.equal(usual.status, 200, usual.text);
    assert.equal(usual.body.data!.length, 3);
    // What people write is far from the limit: a few levels of each, and searched CASEs nested deep.
    const fine = await sql(`SELECT ${nest(4, (e) => `CASE ${e} WHEN 1 THEN 1 WHEN 2 THEN 2 ELSE 0 END`).slice(7, -9)} AS a, ` +
      `${nest(4, (e) => `nullif(${e}, 5)`).slice(7, -9)} AS b, ${nest(60, (e) => `CASE WHEN ${e} > 0 THEN ${e.length > 50 ? 'v' : e} ELSE 0 END`).slice(7, -9)} AS c FROM cpu ORDER BY time`);
    assert.equal(fine.status, 200, fine.text);
    assert.equal(fine.body.data!.length, 3);
  });

  test('thousands of reads of a measurement with a long history: 400 once their file lists pass 100,000 files, not gigabytes of SQL', async () => {
    // 200 hourly files, read 501 times: 100,200 file references (a heap exhausted at 11,000 reads of 2,000 files).
    const lines = Array.from({ length: 200 }, (_, h) => `hist v=${h}i ${1700000000 + h * 3600}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=qhist&precision=s')).status, 204);
    await server.flush();
    const reads = (n: number): string => `SELECT ${Array.from({ length: n }, () => '(SELECT count(*) FROM hist)').join(', ')}`;
    const refused = await sql(reads(501), 'qhist');
    assertRejected(refused, /^the query reads 501 measurement references whose files, listed for each, pass 100,000: /);
    const answered = await sql(reads(3), 'qhist');
    assert.equal(answered.status, 200, answered.text);
    assert.deepEqual(answered.body.data, [[200, 200, 200]]);
  });

  test('generators are allowed', async () => {
    const r = await sql('SELECT * FROM range(3)');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [[0], [1], [2]]);
  });
});

describe('measurements with no files', BOUND, () => {
  test('a query on a measurement with no files: 200 with no columns and no rows', async () => {
    const r = await sql('SELECT * FROM nothing_here');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual({ columns: r.body.columns, data: r.body.data, row_count: r.body.row_count }, { columns: [], data: [], row_count: 0 });
    // Same in a database that does not exist at all.
    const other = await sql('SELECT * FROM nowhere.cpu');
    assert.equal(other.status, 200, other.text);
    assert.deepEqual(other.body.data, []);
  });

  // A measurement with no data reads as an empty table that has only `time`.
  test('a UNION or join with a measurement with no files still returns the other side', async () => {
    const union = await sql('SELECT count(*) FROM cpu UNION ALL SELECT count(*) FROM nothing_here');
    assert.equal(union.status, 200, union.text);
    assert.deepEqual(union.body.data, [[3], [0]]);
    const join = await sql('SELECT c.host FROM cpu c LEFT JOIN nothing_here n ON c.time = n.time ORDER BY c.host');
    assert.deepEqual(join.body.data, [['a'], ['b'], ['c']]);
  });

  test('naming a column the missing measurement would have had: NULL beside data, an empty result (as Arc) when nothing else is read', async () => {
    const r = await sql('SELECT c.host, n.v FROM cpu c LEFT JOIN nothing_here n ON c.host = n.host ORDER BY c.host');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.columns, ['host', 'v']);
    assert.deepEqual(r.body.data, [['a', null], ['b', null], ['c', null]], 'the rows that exist, not an empty answer');
    const alone = await sql('SELECT n.v FROM nothing_here n');
    assert.deepEqual({ columns: alone.body.columns, data: alone.body.data }, { columns: [], data: [] });
  });

  test('any column the query could ask of a missing measurement binds, as NULL: the rows of the measurements with data are answered', async () => {
    for (const [text, rows] of [
      ['SELECT host FROM nothing_here', undefined],
      ['SELECT host, x FROM nothing_here, nothing_either', undefined],
      ['SELECT host FROM cpu UNION ALL SELECT host FROM nothing_here ORDER BY 1', [['a'], ['b'], ['c']]],
      // Qualified, also by a name that cpu has too.
      ['SELECT nothing_here.x FROM cpu, nothing_here', []],
      ['SELECT n.host FROM cpu, nothing_here n', []],
      // Unqualified, beside columns of the measurement that has data.
      ['SELECT host, v, x FROM cpu, nothing_here', []],
      ['SELECT host, n.v FROM (SELECT host, time FROM cpu) c LEFT JOIN nothing_here n ON c.time = n.time ORDER BY host', [['a', null], ['b', null], ['c', null]]],
      ['SELECT count(*) FROM cpu JOIN nothing_here USING (host)', [[0]]],
      ['SELECT count(*) FROM cpu LEFT JOIN nothing_here USING (host)', [[3]]],
      ['SELECT * EXCLUDE (x) FROM cpu, nothing_here', []],
      ['SELECT n.* EXCLUDE (host) FROM cpu, nothing_here n', []],
      ['SELECT t.b FROM cpu, nothing_here AS t(a, b)', []],
      // Correlated: `w` is neither cpu's nor (yet) nothing_here's.
      ['SELECT host FROM cpu WHERE v > (SELECT max(w) FROM nothing_here)', []],
      ['SELECT host, coalesce((SELECT max(w) FROM nothing_here), 0) AS m FROM cpu ORDER BY host', [['a', 0], ['b', 0], ['c', 0]]],
      ['SELECT host, x FROM cpu, nothing_here, nothing_either', []],
    ] as const) {
      const r = await sql(text);
      assert.equal(r.status, 200, `${text}: ${r.text}`);
      if (rows === undefined) assert.deepEqual({ columns: r.body.columns, data: r.body.data }, { columns: [], data: [] }, text);
      else assert.deepEqual(r.body.data, rows, text);
    }
  });

  test("a binder error of the query's own is a 400, whatever measurement without data it also reads", async () => {
    // Each with the same query without the measurement that has no data, which answers alike.
    for (const [text, without, fragment] of [
      ['SELECT nosuch FROM cpu UNION ALL SELECT 1 FROM nothing_here', 'SELECT nosuch FROM cpu', 'Referenced column "nosuch" not found'],
      // DuckDB meets nothing_here's unknown `host` first.
      ["SELECT 1 FROM nothing_here WHERE host = 'a' UNION ALL SELECT nosuch FROM cpu", 'SELECT nosuch FROM cpu', 'Referenced column "nosuch" not found'],
      ['SELECT c.nosuch, n.v FROM cpu c LEFT JOIN nothing_here n ON c.host = n.host', 'SELECT c.nosuch FROM cpu c', 'Table "c" does not have a column named "nosuch"'],
      ['SELECT c.host, count(n.v) FROM cpu c, nothing_here n', 'SELECT c.host, count(*) FROM cpu c', 'must appear in the GROUP BY clause'],
    ] as const) {
      assertRejected(await sql(text), fragment, text);
      assertRejected(await sql(without), fragment, without);
    }
  });
});

describe('SHOW commands', BOUND, () => {
  const TABLE_COLUMNS = ['database', 'table_name', 'storage_path', 'file_count', 'total_size_mb'];

  test('SHOW DATABASES lists every database, sorted', async () => {
    for (const text of ['SHOW DATABASES', 'show databases;', '/* hi */ Show   Databases -- bye']) {
      const r = await sql(text);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.columns, ['database'], text);
      // qhist: written by the long-history test above.
      assert.deepEqual(r.body.data, [['otherdb'], ['qdb'], ['qhist']], text);
      assert.equal(r.body.row_count, 3);
    }
  });

  test('SHOW TABLES / SHOW MEASUREMENTS of the request database, with comments, ";" and any case', async () => {
    for (const text of ['SHOW TABLES', 'show measurements', '-- list\nSHOW /* all */ TABLES ;', 'sHoW tAbLeS;  ']) {
      const r = await sql(text);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.columns, TABLE_COLUMNS, text);
      const rows = r.body.data!;
      assert.deepEqual(rows.map((row) => row.slice(0, 4)), [['qdb', 'cpu', 'qdb/cpu/', 1], ['qdb', 'mem', 'qdb/mem/', 1]], text);
      for (const row of rows) assert.equal(typeof row[4], 'number');
    }
  });

  test('SHOW TABLES FROM / ON another database, bare or quoted', async () => {
    for (const text of ['SHOW TABLES FROM otherdb', 'show measurements on "otherdb";', 'SHOW TABLES FROM otherdb -- c']) {
      const r = await sql(text);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.data!.map((row) => row.slice(0, 4)), [['otherdb', 'cpu', 'otherdb/cpu/', 1]], text);
    }
    const none = await sql('SHOW TABLES FROM nowhere');
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body.data, []);
  });

  // "x/.." stays inside the data dir (it lists the databases as if they were tables);
  // "x/../.." would list, and recursively scan, the data dir's parent.
  test('SHOW TABLES FROM a name with "/" is refused like any database name', async () => {
    const r = await sql('SHOW TABLES FROM "x/.."');
    assert.ok(!r.text.includes('"otherdb"'), `lists the data dir itself: ${r.text.slice(0, 300)}`);
    assertRejected(r, 'contains "/"');
  });
});

describe('name resolution', BOUND, () => {
  test('a CTE named like a measurement shadows it; inside its own body the name is the measurement', async () => {
    const shadow = await sql('WITH cpu AS (SELECT 42 AS v) SELECT v FROM cpu');
    assert.deepEqual(shadow.body.data, [[42]], shadow.text);
    const self = await sql('WITH cpu AS (SELECT * FROM cpu WHERE v < 5) SELECT host FROM cpu ORDER BY host');
    assert.deepEqual(self.body.data, [['a'], ['c']], self.text);
  });

  test('a string literal containing "FROM cpu" is left alone', async () => {
    const r = await sql("SELECT 'x FROM cpu' AS s, host FROM mem");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [['x FROM cpu', 'a']]);
  });

  test('a join of cpu with otherdb.cpu reads each from its own database', async () => {
    const r = await sql('SELECT a.host, a.v, b.v FROM cpu a JOIN otherdb.cpu b ON a.time = b.time');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [['a', 1, 10]]);
    const both = await sql('SELECT (SELECT count(*) FROM cpu), (SELECT count(*) FROM otherdb.cpu), (SELECT count(*) FROM qdb.cpu)', 'otherdb');
    assert.deepEqual(both.body.data, [[2, 2, 3]], both.text);
  });

  // read_parquet has a virtual "filename" column: absolute paths of the data dir.
  test('the virtual filename column is not readable', async () => {
    const r = await sql('SELECT filename FROM cpu');
    assert.ok(!r.text.includes(server.dataDir), r.text.slice(0, 300));
    assertRejected(r, 'Referenced column "filename" not found');
  });
});

describe('JSON values', BOUND, () => {
  test('stored timestamps are RFC 3339 UTC with the fraction trimmed', async () => {
    const r = await sql('SELECT time FROM cpu ORDER BY time');
    assert.deepEqual(r.body.data, [['2023-11-14T22:13:20.5Z'], ['2023-11-14T22:13:21Z'], ['2023-11-14T22:13:22Z']]);
  });

  test('every timestamp type, dates and pre-1970 instants', async () => {
    const r = await sql(`SELECT TIMESTAMP '2024-01-01 00:00:00.120' AS a, '2024-01-01 00:00:00.5+02'::TIMESTAMPTZ AS b,
      TIMESTAMP_S '2024-01-01 00:00:01' AS c, TIMESTAMP_MS '2024-01-01 00:00:00.25' AS d, TIMESTAMP_NS '2024-01-01 00:00:00.000001999' AS e,
      DATE '2024-02-29' AS f, TIMESTAMP '1969-12-31 23:59:59.999999' AS g, TIMESTAMP '1900-01-01 00:00:00' AS h`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [[
      '2024-01-01T00:00:00.12Z', '2023-12-31T22:00:00.5Z', '2024-01-01T00:00:01Z', '2024-01-01T00:00:00.25Z',
      '2024-01-01T00:00:00.000001999Z', '2024-02-29', '1969-12-31T23:59:59.999999Z', '1900-01-01T00:00:00Z',
    ]]);
  });

  // Truncating division would move a pre-1970 instant to the wrong second.
  test('a pre-1970 TIMESTAMP_NS keeps its nanoseconds', async () => {
    const r = await sql("SELECT '1969-12-31 23:59:59.9999995'::TIMESTAMP_NS AS a");
    assert.deepEqual(r.body.data, [['1969-12-31T23:59:59.9999995Z']], r.text);
  });

  // new Date(±infinity).toISOString() throws: it must not become a 500.
  test('infinite timestamps and dates are "infinity" / "-infinity"', async () => {
    const r = await sql("SELECT 'infinity'::TIMESTAMP AS a, '-infinity'::TIMESTAMP AS b, 'infinity'::DATE AS c, '-infinity'::DATE AS d");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [['infinity', '-infinity', 'infinity', '-infinity']]);
  });

  // toISOString() writes such years with six digits and a sign: no fixed-width slicing.
  test('years outside 0000-9999 still give a complete date and time', async () => {
    const r = await sql("SELECT TIMESTAMP '10000-01-01 00:00:00' AS a, DATE '10000-01-01' AS b");
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.body.data![0][0]), /^\+?0?10000-01-01T00:00:00Z$/);
    assert.match(String(r.body.data![0][1]), /^\+?0?10000-01-01$/);
  });

  test('a number literal beyond the DOUBLE range (infinite) is a valid query, not a 500', async () => {
    // DuckDB serializes the constant as a bare Infinity, which is not JSON.
    const r = await sql("SELECT count(*) AS n, 1e400 > v AS above, -1e400 < v AS below FROM cpu WHERE v < 1e400 AND time >= '2023-11-14T22:13:21Z' GROUP BY ALL");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.body.columns, r.body.data], [['n', 'above', 'below'], [[2, true, true]]]);
  });

  test('int64 values and sums beyond 2^53 are exact in the JSON text', async () => {
    const r = await sql('SELECT sum(v) AS s, max(v) AS m, min(v) - 1 AS z FROM cpu');
    assert.equal(r.status, 200, r.text);
    // Checked on the text: JSON.parse would round both to 9223372036854775808.
    assert.ok(r.text.includes('"data":[[9223372036854775810,9223372036854775807,0]]'), r.text);
    const wide = await sql('SELECT 18446744073709551615::UBIGINT AS u, 170141183460469231731687303715884105727::HUGEINT AS h');
    assert.ok(wide.text.includes('"data":[[18446744073709551615,170141183460469231731687303715884105727]]'), wide.text);
  });

  test('NaN and infinities are null; DECIMAL is a number; strings are escaped', async () => {
    const r = await sql(`SELECT 'nan'::DOUBLE AS a, '-inf'::DOUBLE AS b, 1.10::DECIMAL(10,2) AS c, 'say "hi"' AS d`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.text.includes('"data":[[null,null,1.10,"say \\"hi\\""]]'), r.text);
  });
});

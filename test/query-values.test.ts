/**
 * Edge values through every result format (JSON, /exec, CSV, Arrow) of a real server,
 * against what DuckDB holds: the ends of DuckDB's DATE and TIMESTAMP ranges, infinite
 * timestamps in every unit, nanoseconds of TIMESTAMP_NS, decimals past 2^53 in Arrow, and
 * CSV rows of one empty field.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tableFromIPC, type Table } from 'apache-arrow';
import { removeDir, TestServer, waitFor } from './harness.js';

let server: TestServer;

before(async () => {
  server = await TestServer.start({ STRATA_QUERY_CACHE_TTL_MS: '0' });
});
after(async () => {
  assert.equal(await server.stop(), 0);
  removeDir(server.dataDir);
});

function post(path: string, sql: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(server.url + path, { method: 'POST', body: JSON.stringify({ sql }), headers: { 'content-type': 'application/json', ...headers } });
}

async function execRows(sql: string): Promise<unknown[][]> {
  const res = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { dataset: unknown[][] }).dataset;
}

async function csvText(sql: string): Promise<string> {
  const res = await post('/api/v1/query', sql, { accept: 'text/csv' });
  assert.equal(res.status, 200);
  return res.text();
}

async function arrowTable(sql: string): Promise<Table> {
  const res = await post('/api/v1/query/arrow', sql);
  assert.equal(res.status, 200);
  return tableFromIPC(new Uint8Array(await res.arrayBuffer()));
}

/** The int64 stored for row 0 of column `name` (apache-arrow's `get` refuses instants past ±2^53 ms). */
function rawInt64(table: Table, name: string): bigint {
  return (table.getChild(name)!.data[0].values as BigInt64Array)[0];
}

test('the ends of DuckDB\'s DATE and TIMESTAMP ranges and infinite TIMESTAMP_S/_MS/_NS in JSON, /exec, CSV and Arrow', async () => {
  const sql = `SELECT '294000-01-01 12:00:00.5'::TIMESTAMP AS far, '290000-01-01 (BC)'::TIMESTAMP AS early, DATE '5000000-01-01' AS day,
    'infinity'::TIMESTAMP::TIMESTAMP_S AS s, '-infinity'::TIMESTAMP_S AS s_neg, 'infinity'::TIMESTAMP_MS AS ms,
    'infinity'::TIMESTAMP_NS AS ns, '-infinity'::TIMESTAMP_NS AS ns_neg, '1969-12-31 23:59:59.5'::TIMESTAMP_MS AS ms_before`;
  // Years past 9999 and before 0000 as toISOString writes them (sign, six digits or more);
  // 290000 BC is year -289999 counted astronomically.
  const expected = ['+294000-01-01T12:00:00.5Z', '-289999-01-01T00:00:00Z', '+5000000-01-01',
    'infinity', '-infinity', 'infinity', 'infinity', '-infinity', '1969-12-31T23:59:59.5Z'];
  assert.deepEqual(await server.rows(sql), [expected]);
  assert.deepEqual(await execRows(sql), [expected]);
  assert.equal(await csvText(sql), `far,early,day,s,s_neg,ms,ns,ns_neg,ms_before\r\n${expected.join(',')}\r\n`);

  const table = await arrowTable(sql);
  const max = 9223372036854775807n;
  assert.deepEqual(['s', 's_neg', 'ms', 'ns', 'ns_neg'].map((c) => rawInt64(table, c)), [max, -max, max, max, -max]);
  assert.equal(rawInt64(table, 'far'), 9215576668800000000n + 43_200_500_000n);
  assert.equal(rawInt64(table, 'ms_before'), -500_000n);
});

test('TIMESTAMP_NS keeps its nanoseconds in JSON, /exec and CSV as DuckDB prints them, and is Timestamp(NANOSECOND) in Arrow', async () => {
  const nanos = ['1767225600123456789', '-1', '1767225600000001000', '1767225600100000000', '-2208988800000000001', '9223372036854775806'];
  const sql = `SELECT n, make_timestamp_ns(n) AS t, make_timestamp_ns(n)::VARCHAR AS duck, TIME_NS '12:34:56.123456789' AS tn
    FROM (VALUES ${nanos.map((n, i) => `(${i}, ${n})`).join(',')}) v(i, n) ORDER BY i`;
  const json = await server.rows(sql);
  // DuckDB's text (`2026-01-01 00:00:00.123456789`, trailing zeros trimmed) in RFC 3339 form.
  const expected = json.map((r) => String(r[2]).replace(' ', 'T') + 'Z');
  assert.deepEqual(expected.slice(0, 4), ['2026-01-01T00:00:00.123456789Z', '1969-12-31T23:59:59.999999999Z', '2026-01-01T00:00:00.000001Z', '2026-01-01T00:00:00.1Z']);
  const cells = (rows: unknown[][]): unknown[][] => rows.map((r) => [r[1], r[3]]);
  const want = expected.map((t) => [t, '12:34:56.123456789']);
  assert.deepEqual(cells(json), want);
  assert.deepEqual(cells(await execRows(sql)), want);
  assert.deepEqual(cells((await csvText(sql)).split('\r\n').slice(1, -1).map((line) => line.split(','))), want);

  const table = await arrowTable(sql);
  assert.equal(String(table.schema.fields[1].type), 'Timestamp<NANOSECOND>');
  assert.deepEqual(Array.from(table.getChild('t')!.data.flatMap((d) => Array.from(d.values as BigInt64Array))), nanos.map(BigInt));
});

test('a BLOB holding a backslash byte, and -0.0, keep their value in JSON, /exec, CSV and Arrow', async () => {
  // The four bytes `\x41` once printed as `\x41`, DuckDB's text of the one byte `A`.
  const sql = "SELECT '\\x5Cx41'::BLOB AS b, '-0.0'::DOUBLE AS z";
  const json = (await (await post('/api/v1/query', sql)).json()) as { data: unknown[][] };
  assert.deepEqual(json.data, [['\\x5Cx41', -0]]);
  assert.ok(Object.is(json.data[0][1], -0));
  const exec = await execRows(sql);
  assert.ok(exec[0][0] === '\\x5Cx41' && Object.is(exec[0][1], -0), JSON.stringify(exec));
  assert.equal(await csvText(sql), 'b,z\r\n\\x5Cx41,-0\r\n');
  // Arrow: the bytes themselves (Binary).
  const arrow = (await arrowTable(sql)).toArray()[0] as { b: Uint8Array; z: number };
  assert.ok(Buffer.from(arrow.b).toString('latin1') === '\\x41' && Object.is(arrow.z, -0), JSON.stringify(arrow));
});

test('Arrow: LIST, STRUCT, MAP, ARRAY and BLOB are native Arrow types, NULLs kept at every level', async () => {
  const sql = `SELECT r, list(v ORDER BY v) AS l, {'n': r, 's': CASE WHEN r = 1 THEN NULL ELSE 'x' || r END, 'l': [r, NULL]} AS st,
      MAP {'a': r, 'b': NULL} AS m, CASE WHEN r = 1 THEN NULL ELSE '\\x00\\xFF'::BLOB END AS b, [r, r + 1]::INTEGER[2] AS a,
      CASE WHEN r = 2 THEN NULL ELSE [{'t': TIMESTAMPTZ '2026-01-01 00:00:00.000001+00'}] END AS ls
    FROM (VALUES (0, 1.5), (0, NULL), (1, 2.5), (2, 3.5)) t(r, v) GROUP BY r ORDER BY r`;
  const table = await arrowTable(sql);
  assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`), ['r:Int32', 'l:List<Float64>', 'st:Struct<{n:Int32, s:Utf8, l:List<Int32>}>',
    'm:Map<{key:Utf8, value:Int32}>', 'b:Binary', 'a:FixedSizeList[2]<Int32>', 'ls:List<Struct<{t:Timestamp<MICROSECOND, UTC>}>>']);
  const rows = table.toArray().map((row) => {
    const { l, st, m, b, a, ls } = row.toJSON() as Record<string, { toJSON(): unknown; toArray(): unknown } | Uint8Array | null>;
    const s = (st as { toJSON(): Record<string, unknown> }).toJSON();
    return [Array.from(l as Iterable<unknown>), { ...s, l: Array.from(s.l as Iterable<unknown>) }, (m as { toJSON(): unknown }).toJSON(),
      b === null ? null : [...(b as Uint8Array)], Array.from(a as Iterable<unknown>), ls === null ? null : Array.from(ls as Iterable<{ toJSON(): unknown }>, (x) => x.toJSON())];
  });
  const t = Date.UTC(2026, 0, 1) + 0.001;
  assert.deepEqual(rows, [
    [[1.5, null], { n: 0, s: 'x0', l: [0, null] }, { a: 0, b: null }, [0, 255], [0, 1], [{ t }]],
    [[2.5], { n: 1, s: null, l: [1, null] }, { a: 1, b: null }, null, [1, 2], [{ t }]],
    [[3.5], { n: 2, s: 'x2', l: [2, null] }, { a: 2, b: null }, [0, 255], [2, 3], null],
  ]);
  // JSON is as before: arrays and objects, a BLOB as DuckDB's text.
  assert.deepEqual((await server.rows(sql))[1].slice(1, 5), [[2.5], { n: 1, s: null, l: [1, null] }, { a: 1, b: null }, null]);
});

test('Arrow: DECIMAL(18,3) past 2^53 unscaled is the nearest double, as DuckDB casts it', async () => {
  const values = ['123456789012345.678', '-263126849293436.849', '999999999999999.999', '48415616581590.770', '0.001', '-9007199254.741'];
  const table = await arrowTable(`SELECT ${values.map((v, i) => `${v}::DECIMAL(18,3) AS d${i}`).join(', ')}`);
  assert.deepEqual(values.map((_, i) => table.getChild(`d${i}`)!.get(0)), values.map(Number));
});

test('CSV: an empty string is "", NULL an empty field, as DuckDB\'s COPY writes them; a row of one NULL is "" instead of a blank line', async () => {
  const text = await csvText("SELECT CASE i WHEN 0 THEN '' WHEN 1 THEN 'x' ELSE NULL END AS v FROM range(3) t(i) ORDER BY i");
  assert.equal(text, 'v\r\n""\r\nx\r\n""\r\n');
  assert.equal(await csvText("SELECT '' AS a, NULL AS b, ''::BLOB AS c, NULL::BLOB AS d, 'x' AS e"), 'a,b,c,d,e\r\n"",,"",,x\r\n');
});

test('Arrow: DECIMAL(p, 0) of any width, HUGEINT and UHUGEINT (what sum() of integers returns) are Int64, as Arc narrows them; a value outside int64 fails the query with 422', async () => {
  const table = await arrowTable(`SELECT sum(x) AS s, (-9223372036854775808)::HUGEINT AS h_min, 9223372036854775807::UHUGEINT AS u_max,
    (-123456789012345678)::DECIMAL(38,0) AS d38, NULL::HUGEINT AS n, 1.5::DECIMAL(38,2) AS f FROM range(10) t(x)`);
  assert.deepEqual(table.schema.fields.map((f) => [f.name, String(f.type)]), [
    ['s', 'Int64'], ['h_min', 'Int64'], ['u_max', 'Int64'], ['d38', 'Int64'], ['n', 'Int64'], ['f', 'Float64'],
  ]);
  assert.deepEqual(table.schema.fields.map((f) => table.getChild(f.name)!.get(0)), [45n, -9223372036854775808n, 9223372036854775807n, -123456789012345678n, null, 1.5]);
  // JSON keeps every digit.
  assert.deepEqual(await server.rows('SELECT sum(x) AS s, 12345678901234567890123::HUGEINT AS big FROM range(10) t(x)'), [[45, 12345678901234567890123]]);
  for (const sql of ['SELECT 9223372036854775808::HUGEINT AS h', 'SELECT (-9223372036854775809)::HUGEINT AS h',
    'SELECT 9223372036854775808::UHUGEINT AS u', 'SELECT 18446744073709551615::UHUGEINT * 2 AS u', 'SELECT 10000000000000000000::DECIMAL(38,0) AS d']) {
    const res = await post('/api/v1/query/arrow', sql);
    assert.equal(res.status, 422, sql);
    assert.match(((await res.json()) as { error: string }).error, /outside the int64 range/, sql);
  }
});

test('Arrow: a value outside int64 in a chunk sent after the status line cuts the stream off, and is counted as rejected', async () => {
  const errors = async (): Promise<number> =>
    Number(/strata_queries_total\{outcome="rejected"\} (\d+)/.exec(await (await fetch(`${server.url}/metrics`)).text())![1]);
  const before = await errors();
  // Rows 0–149,999 are 1.2 MB of Int64: streaming has begun when row 150,000 is read.
  const res = await post('/api/v1/query/arrow', 'SELECT CASE WHEN range < 150000 THEN range::HUGEINT ELSE 9223372036854775808::HUGEINT END AS h FROM range(200000)');
  assert.equal(res.status, 200);
  await assert.rejects(res.arrayBuffer(), 'the body is cut off, not a shorter stream');
  let after = before;
  for (let i = 0; i < 40 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 25));
    after = await errors();
  }
  assert.equal(after, before + 1, 'counted as rejected (a 422: the query must cast the value), not cancelled');
  // The log reaches this process through a pipe, possibly after the response.
  const late = (): [number, string][] => server.logLines().filter((l) => /while streaming its result/.test(l.msg)).map((l) => [l.level, l.msg]);
  await waitFor(() => late().length > 0, 5000);
  assert.deepEqual(late(), [[40, 'query refused while streaming its result']], 'a warning: the query is at fault, not the server');
});

test('a DuckDB error part-way through a result is never a complete-looking answer: its status before 256 KiB, a cut-off body after', async () => {
  const forms: [string, Record<string, string>][] = [['/api/v1/query', {}], ['/api/v1/query', { accept: 'text/csv' }], ['/api/v1/query/arrow', {}]];
  for (const [path, headers] of forms) {
    const what = `${path} ${JSON.stringify(headers)}`;
    // DuckDB computes ~100 K rows ahead, so this error surfaces while the first few chunks
    // (~45 KB of output) are read, not when the query starts; the fetch that meets it
    // returns an empty chunk, exactly as at the end of a complete result.
    const early = await post(path, "SELECT CASE WHEN range < 133333 THEN range ELSE error('late boom ' || range) END AS n FROM range(200000)", headers);
    assert.ok(early.status >= 400, `${what}: ${early.status}`);
    const body = (await early.json()) as { success: boolean; error: string };
    assert.equal(body.success, false, what);
    assert.match(body.error, /late boom|failed part-way/, what);
    // Far into a large result the status line is out: the body is cut off.
    const late = await post(path, "SELECT CASE WHEN range < 2000000 THEN range ELSE error('late boom ' || range) END AS n FROM range(3000000)", headers);
    assert.equal(late.status, 200, what);
    await assert.rejects(late.arrayBuffer(), `${what}: the body ends in an error, not as a shorter answer`);
  }
});

test('a text value too long to escape into one JSON string (control characters take six characters each) answers 422; CSV carries it; the server goes on', async () => {
  // 90 M control characters escape to 540 M characters, past V8's longest string (2^29 − 24).
  const res = await post('/api/v1/query', 'SELECT repeat(chr(1), 90000000) AS s');
  assert.equal(res.status, 422);
  assert.match(((await res.json()) as { error: string }).error, /^a text value of 90000000 bytes is too long once escaped for JSON or CSV/);
  const csv = await csvText('SELECT repeat(chr(1), 90000000) AS s');
  assert.equal(csv.length, 's\r\n'.length + 90000000 + '\r\n'.length);
  assert.deepEqual(await execRows('SELECT 1 AS one'), [[1]]);
});

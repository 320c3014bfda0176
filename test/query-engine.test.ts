/**
 * End to end, issue 5: the SQL sandbox (hostile queries refused, no file touched),
 * DuckDB lockdown (writer, temp tables and spill still work), time-range pruning
 * (files scanned vs. the rows answered), read-your-writes (exactly once across a
 * flush), result formats (Arrow decoded with apache-arrow, CSV, streamed JSON, /exec),
 * priorities, timeouts and the pool metrics.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { tableFromIPC } from 'apache-arrow';
import { inspector, parquetFiles, removeDir, tempDir, TestServer } from './harness.js';

let server: TestServer;
const H = 3_600; // seconds per hour
const T0 = 1767225600; // 2026-01-01T00:00:00Z

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(server.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-arc-database': 'qe', ...headers } });
}

async function json(sql: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> & { data: unknown[][]; error?: string } }> {
  const res = await post('/api/v1/query', { sql }, headers);
  return { status: res.status, body: (await res.json()) as never };
}

before(async () => {
  server = await TestServer.start({ STRATA_BUFFER_MAX_AGE_MS: '600000', STRATA_QUERY_CACHE_TTL_MS: '0' });
  // 6 hours of cpu, 2 hosts, one point per host per 10 minutes, flushed as hour files.
  const lines: string[] = [];
  for (let t = T0; t < T0 + 6 * H; t += 600) {
    lines.push(`cpu,host=a usage=${(t - T0) / 600} ${t}`, `cpu,host=b usage=${(t - T0) / 600 + 0.5} ${t}`);
  }
  assert.equal((await server.writeLines(lines.join('\n'), 'db=qe&precision=s')).status, 204);
  await server.flush();
});
after(async () => {
  const stopping = Date.now();
  assert.equal(await server.stop(), 0);
  console.log(`server stopped in ${Date.now() - stopping} ms`);
  removeDir(server.dataDir);
});

describe('sandbox', () => {
  const outside = tempDir('strata-outside-');
  after(() => removeDir(outside));
  const target = join(outside, 'x');
  const hostile: [string, string][] = [
    ['read_csv', "SELECT * FROM read_csv('/etc/passwd')"],
    ['read_csv_auto', "SELECT * FROM read_csv_auto('/etc/passwd')"],
    ['read_text', "SELECT * FROM read_text('/etc/passwd')"],
    ['read_blob', "SELECT * FROM read_blob('/etc/passwd')"],
    ['read_json', "SELECT * FROM read_json('/etc/passwd')"],
    ['read_json_objects', "SELECT * FROM read_json_objects('/etc/passwd')"],
    ['read_parquet', "SELECT * FROM read_parquet('/etc/passwd')"],
    ['parquet_metadata', "SELECT * FROM parquet_metadata('/etc/passwd')"],
    ['glob', "SELECT * FROM glob('/etc/*')"],
    ['sniff_csv', "SELECT * FROM sniff_csv('/etc/passwd')"],
    ['query()', "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')"],
    ['path as table', "SELECT * FROM '/etc/passwd'"],
    ['quoted path as table', 'SELECT * FROM "/etc/passwd"'],
    ['read_text in a subquery', "SELECT (SELECT content FROM read_text('/etc/passwd'))"],
    ['read_text in a CTE', "WITH x AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM x"],
    ['quoted function name', 'SELECT * FROM "read_text"(\'/etc/passwd\')'],
    ['COPY', `COPY (SELECT 1) TO '${target}'`],
    ['COPY FROM', "COPY cpu FROM '/etc/passwd'"],
    ['ATTACH', `ATTACH '${target}.db' AS x`],
    ['INSTALL', 'INSTALL httpfs'],
    ['LOAD', 'LOAD httpfs'],
    ['SET', "SET enable_external_access = true"],
    ['RESET', 'RESET allowed_directories'],
    ['PRAGMA', 'PRAGMA database_list'],
    ['CALL', 'CALL pragma_version()'],
    ['EXPORT', `EXPORT DATABASE '${outside}'`],
    ['CREATE TABLE', 'CREATE TABLE t AS SELECT 1'],
    ['CREATE SECRET', "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"],
    ['INSERT', 'INSERT INTO cpu VALUES (1)'],
    ['DROP', 'DROP TABLE cpu'],
    ['multi-statement', `SELECT 1; COPY (SELECT 1) TO '${target}'`],
    ['comment hiding a statement', `SELECT 1 /* ; */; COPY (SELECT 1) TO '${target}'`],
    ['line comment then statement', `SELECT 1 --\n; ATTACH '${target}.db'`],
    ['path traversal database', 'SELECT * FROM "..".cpu'],
    ['path traversal measurement', 'SELECT * FROM qe."../qe/cpu"'],
    ['slash in name', 'SELECT * FROM "a/b"'],
    ['three-part name', 'SELECT * FROM a.b.cpu'],
    ['current_setting (host paths)', "SELECT current_setting('allowed_directories')"],
    ['current_query (the rewrite lists file paths)', 'SELECT current_query() FROM cpu'],
    ['current_query in a subquery', 'SELECT (SELECT current_query()) AS q FROM cpu'],
    // It binds SQL given as a string: table functions' binds run, and optimizing folds settings into the plan.
    ['json_serialize_plan folding a setting', "SELECT json_serialize_plan('SELECT current_setting(''allowed_directories'')', optimize := true)"],
    ['json_serialize_plan binding a table function', "SELECT json_serialize_plan('SELECT * FROM read_text(''/etc/passwd'')')"],
    // excel's: installing it on demand failed naming the home directory (~/.duckdb/extensions).
    ['function of an extension not linked in', "SELECT text(1.5, '0.0')"],
    // The seed stays with the pooled connection: the next request's random() and uuid() repeat a known sequence.
    ['setseed', 'SELECT setseed(0.5)'],
    ['setseed in a subquery', 'SELECT (SELECT setseed(0.5)) IS NULL AS x FROM cpu'],
  ];
  for (const [name, sql] of hostile) {
    test(`refused: ${name}`, async () => {
      const r = await json(sql);
      assert.equal(r.status, 400, `${sql} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.success, false);
      assert.ok(!JSON.stringify(r.body).includes('root:'), 'no file content leaked');
      assert.ok(!JSON.stringify(r.body).includes(server.dataDir), 'no data directory path leaked');
      assert.ok(!JSON.stringify(r.body).includes(`${homedir()}/`), 'no home directory path leaked');
    });
  }
  // DuckDB reports positions in the query with its Unicode spaces turned into ASCII ones
  // (U+3000: 3 bytes to 1). Taken as positions in the text as sent, they fell 2 bytes back
  // per space, where a decoy name in a comment or a quoted name was rewritten instead of
  // the reference: one left unrewritten read a read-your-writes temp table of another
  // database, and a replacement spliced into a quoted name let a tag key run as SQL.
  test('Unicode spaces before a reference: no temp table of the pool is read, no tag key runs as SQL', async () => {
    assert.equal((await server.writeLines('secretm,h=x s="other-db-secret" 1767225600', 'db=other&precision=s')).status, 204);
    const spaces = '\u3000'.repeat(8);
    for (let i = 0; i < 12; i++) {
      // The connection this request gets (the pool lends the last returned) holds other.secretm's records as a temp table.
      assert.equal((await json('SELECT count(*) AS n FROM other.secretm')).body.data[0][0], 1);
      const table = `strata_held_${i}`;
      // The decoy sits 16 bytes (8 spaces × 2) before the reference; cpu has data, so the query runs.
      const r = await json(`SELECT (SELECT count(*) FROM cpu) AS n, * FROM${spaces} /*${table}*/${' '.repeat(16 - table.length - 2)}${table}`);
      assert.ok(!JSON.stringify(r.body).includes('other-db-secret'), `${table}: ${JSON.stringify(r.body)}`);
      assert.deepEqual([r.status, r.body.data], [200, []], table);
    }
    // DuckDB's pre-pass over the rewrite: after `/* " */` it takes the rest for a quoted name
    // and leaves the no-break spaces; the rewrite's `"k--"` (a tag key) moves it into a
    // comment that ends at the newline, after which it turns them: `s FROM strata_held_N`.
    assert.equal((await server.writeLines('m2,k--=v f=1i 1767225600', 'db=qe&precision=s')).status, 204);
    for (let i = 0; i < 12; i++) {
      assert.equal((await json('SELECT count(*) AS n FROM other.secretm')).body.data[0][0], 1);
      const r = await json(`SELECT /* " */ * FROM m2\nUNION ALL BY NAME SELECT s\u00a0FROM\u00a0strata_held_${i}`);
      assert.ok(!JSON.stringify(r.body).includes('other-db-secret'), JSON.stringify(r.body));
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error, 'this query has Unicode spaces (U+00A0, U+2000 to U+200B, U+202F, U+205F, U+2060, U+3000, U+FEFF) '
        + 'inside what DuckDB takes for quoted text or a comment, which it would read otherwise once its measurements are rewritten: write them as ASCII spaces');
    }
    const key = `, (SELECT string_agg(file, '|') FROM glob('${server.dataDir}/**')) AS leak --`;
    const escaped = key.replace(/[ ,=\\]/g, (c) => `\\${c}`);
    assert.equal((await server.writeLines(`injb,${escaped}=v f=1 1767225600`, 'db=qe&precision=s')).status, 204);
    // The decoy `injb` in the quoted name sits 14 bytes (7 spaces × 2) before the reference.
    const r = await json(`SELECT${'\u3000'.repeat(7)} 1 AS "p injb  s" FROM injb`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.columns, r.body.data], [['p injb  s'], [[1]]]);
  });
  test('a measurement of two databases joined, its columns named with their database, as over DuckDB schemas', async () => {
    assert.equal((await server.writeLines(`cpu,host=a usage=100 ${T0}\ncpu,host=a usage=200 ${T0 + 600}`, 'db=qe2&precision=s')).status, 204);
    const r = await json('SELECT qe.cpu.usage, qe2.cpu.usage FROM qe.cpu JOIN qe2.cpu ON qe.cpu.time = qe2.cpu.time AND qe.cpu.host = qe2.cpu.host ORDER BY qe.cpu.time');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.columns, r.body.data], [['usage', 'usage'], [[0, 100], [1, 200]]]);
    // One of them with no data yet: its columns are NULL, as for any read without data.
    const none = await json('SELECT qe.cpu.usage, qe9.cpu.usage AS other FROM qe.cpu LEFT JOIN qe9.cpu ON qe.cpu.time = qe9.cpu.time WHERE qe.cpu.usage < 1 ORDER BY qe.cpu.usage');
    assert.equal(none.status, 200, JSON.stringify(none.body));
    assert.deepEqual([none.body.columns, none.body.data], [['usage', 'other'], [[0, null], [0.5, null]]]);
  });
  test("one query's huge value does not fail the JSON answers of the queries after it", async () => {
    // The encoder sized a chunk's buffer by the bytes per row of the last chunk it wrote,
    // whichever query that was: 1,000 rows × 10 MB asked Buffer for 10 GB (a 500).
    const huge = await json("SELECT repeat('x', 10000000) AS s");
    assert.equal(huge.status, 200);
    assert.equal((huge.body.data[0][0] as string).length, 10_000_000);
    const next = await json('SELECT range AS r FROM range(1000)');
    assert.equal(next.status, 200, JSON.stringify(next.body).slice(0, 300));
    assert.deepEqual(next.body.data, Array.from({ length: 1000 }, (_, i) => [i]));
  });
  test('a column named after a subquery over a measurement names the measurement, not its files', async () => {
    // DuckDB names an unaliased expression by its SQL text: the rewritten text, read_parquet([...paths]) and all.
    const sql = 'SELECT (SELECT max(usage) FROM cpu), EXISTS (SELECT 1 FROM qe.cpu c WHERE c.usage > 100)';
    const names = ['(SELECT max(usage) FROM cpu)', 'EXISTS(SELECT 1 FROM qe.cpu AS c WHERE (c.usage > 100))'];
    const r = await json(sql);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.columns, r.body.data], [names, [[35.5, false]]]);
    const csv = await (await post('/api/v1/query', { sql, format: 'csv' })).text();
    assert.equal(csv.split('\r\n')[0], names.join(','));
    const arrow = tableFromIPC(new Uint8Array(await (await post('/api/v1/query/arrow', { sql })).arrayBuffer()));
    assert.deepEqual(arrow.schema.fields.map((f) => f.name), names);
    const exec = await (await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}`, { headers: { 'x-arc-database': 'qe' } })).json() as { columns: { name: string }[] };
    assert.deepEqual(exec.columns.map((c) => c.name), names);
    // DESCRIBE and SUMMARIZE answer those names as values, in every format, aliased or not.
    for (const describe of [`DESCRIBE ${sql}`, `SELECT column_name AS c, 'x' AS other FROM (SUMMARIZE ${sql})`]) {
      const described = await json(describe);
      assert.deepEqual(described.body.data.map((row) => row[0]), names, JSON.stringify(described.body));
      const rows = await (await post('/api/v1/query', { sql: describe, format: 'csv' })).text();
      assert.deepEqual(rows.split('\r\n').slice(1, 3).map((line) => line.slice(0, line.indexOf(','))), names);
      const table = tableFromIPC(new Uint8Array(await (await post('/api/v1/query/arrow', { sql: describe })).arrayBuffer()));
      assert.deepEqual(table.getChildAt(0)!.toArray(), names);
    }
  });
  test('a subquery over a measurement as a simple CASE operand (which DuckDB copies per WHEN) is rewritten once and answers', async () => {
    const r = await json(`SELECT CASE (SELECT max(usage) FROM cpu WHERE time < to_timestamp(${T0 + H})) WHEN 5.5 THEN 'first hour' WHEN 35.5 THEN 'all' END AS x`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [['first hour']]);
  });
  test('recurring.t in a recursive CTE USING KEY is the CTE\'s rows so far, not measurement t of database recurring', async () => {
    const r = await json('WITH RECURSIVE t(x) USING KEY (x) AS (SELECT 1 UNION SELECT t.x + 1 FROM t, recurring.t AS r WHERE t.x < 3) SELECT x FROM t ORDER BY x');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [[1], [2], [3]]);
    // Elsewhere recurring.t is measurement t of database recurring, a CTE named t or not.
    assert.equal((await server.writeLines(`t v=5i ${T0}`, 'db=recurring&precision=s')).status, 204);
    const elsewhere = await json('WITH t AS (SELECT 1 AS v) SELECT (SELECT v FROM recurring.t) AS a, (SELECT v FROM t) AS b');
    assert.deepEqual(elsewhere.body.data, [[5, 1]], JSON.stringify(elsewhere.body));
  });
  test('a damaged stored file is named by its storage key, not its path on the server', async () => {
    // `damaged_read` is queried before the damage (its schema is known, so the failure comes
    // from the scan); `damaged_unread` only after (reading its schema, while planning, fails);
    // `damaged_pruned` has its damaged first hour pruned away, whose columns are still read.
    const measurements = ['damaged_read', 'damaged_unread', 'damaged_pruned'];
    for (const m of measurements) assert.equal((await server.writeLines(`${m} v=1 ${T0}\n${m} v=2 ${T0 + 5 * H}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual((await json('SELECT v FROM damaged_read ORDER BY v')).body.data, [[1], [2]]);
    for (const m of measurements) {
      const key = `qe/${m}/${parquetFiles(join(server.dataDir, 'qe', m)).sort()[0]}`;
      assert.ok(key.includes('/2026/01/01/00/'), key);
      writeFileSync(join(server.dataDir, key), 'not a parquet file');
      const r = await json(`SELECT sum(v) FROM ${m}${m === 'damaged_pruned' ? ` WHERE time >= to_timestamp(${T0 + 5 * H})` : ''}`);
      assert.ok(r.status >= 400 && r.body.error!.includes(`'${key}'`), `${m}: ${JSON.stringify(r.body)}`);
      assert.ok(!JSON.stringify(r.body).includes(server.dataDir) && !r.body.error!.includes('LINE'), `${m}: ${JSON.stringify(r.body)}`);
    }
  });
  test('no file was created outside', () => {
    assert.deepEqual(readdirSync(outside), []);
    assert.equal(existsSync(target), false);
  });
  test('the writer, temp tables and queries still work after lockdown', async () => {
    assert.equal((await server.writeLines(`locked v=1 ${T0}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual((await json('SELECT v FROM locked')).body.data, [[1]]);
    // Spilling a large sort still works (the temp directory is allowed).
    const r = await json('SELECT count(*) FROM (SELECT range AS r, random() AS x FROM range(3000000) ORDER BY x)');
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
});

describe('time-range pruning', () => {
  async function profile(sql: string): Promise<{ rows: unknown[][]; scanned: number; considered: number }> {
    const r = await json(sql, { 'x-strata-profile': 'true' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = r.body.profile as { files_scanned: number; files_considered: number };
    return { rows: r.body.data, scanned: p.files_scanned, considered: p.files_considered };
  }
  const cases: [string, string, number, number][] = [
    // [name, SQL, files scanned, count(*)]
    ['no filter', 'SELECT count(*) FROM cpu', 6, 72],
    ['Grafana $__timeFilter', "SELECT count(*) FROM cpu WHERE time >= '2026-01-01T01:00:00Z' AND time < '2026-01-01T03:00:00Z'", 2, 24],
    ['BETWEEN DuckDB literal', "SELECT count(*) FROM cpu WHERE time BETWEEN '2026-01-01 02:00:00' AND '2026-01-01 02:30:00'", 1, 8],
    ['typed literal, reversed', "SELECT count(*) FROM cpu WHERE TIMESTAMP '2026-01-01 05:00:00' <= time", 1, 12],
    // DuckDB reads the offset of a string compared with `time`, and drops it in a cast to plain TIMESTAMP.
    ['RFC 3339 offset', "SELECT count(*) FROM cpu WHERE time >= '2026-01-01T06:00:00+01:00'", 1, 12],
    ['TIMESTAMP literal with an offset DuckDB ignores', "SELECT count(*) FROM cpu WHERE time >= TIMESTAMP '2026-01-01T04:00:00-08:00'", 2, 24],
    ['TIMESTAMPTZ literal with an offset', "SELECT count(*) FROM cpu WHERE time < TIMESTAMPTZ '2026-01-01T03:00:00+02:00'", 1, 12],
    ['epoch to_timestamp', `SELECT count(*) FROM cpu WHERE time >= to_timestamp(${T0 + 4 * H})`, 2, 24],
    ['epoch_ms', `SELECT count(*) FROM cpu WHERE time < epoch_ms(${(T0 + H) * 1000})`, 1, 12],
    ['DATE plus days', "SELECT count(*) FROM cpu WHERE time < DATE '2025-12-31' + 1", 0, 0],
    ['DATE minus days', "SELECT count(*) FROM cpu WHERE time >= DATE '2026-01-02' - 1 AND time < DATE '2026-01-02' - 0", 6, 72],
    ['qualified alias', "SELECT count(*) FROM cpu c WHERE c.time > '2026-01-01T04:59:59Z'", 2, 12],
    ['OR is not understood', "SELECT count(*) FROM cpu WHERE time < '2026-01-01T01:00:00Z' OR host = 'a'", 6, 42],
    // DuckDB's parser itself turns NOT (a < b) into a >= b.
    ['NOT of a comparison, folded by the parser', "SELECT count(*) FROM cpu WHERE NOT (time < '2026-01-01T05:00:00Z')", 1, 12],
    ['NOT of a conjunction is not understood', "SELECT count(*) FROM cpu WHERE NOT (time < '2026-01-01T05:00:00Z' AND host = 'a')", 6, 42],
    ['function of time is not understood', "SELECT count(*) FROM cpu WHERE date_trunc('hour', time) >= '2026-01-01T05:00:00Z'", 6, 12],
    ['outer query bound does not prune a subquery', "SELECT count(*) FROM (SELECT * FROM cpu) WHERE time >= '2026-01-01T05:00:00Z'", 6, 12],
    ['other alias does not prune', "SELECT count(*) FROM cpu a JOIN cpu b ON a.time = b.time AND a.host = b.host WHERE a.time >= '2026-01-01T05:00:00Z'", 7, 12],
    ['now() lower bound prunes everything in the past', "SELECT count(*) FROM cpu WHERE time > now() - INTERVAL '1 hour'", 0, 0],
  ];
  for (const [name, sql, scanned, count] of cases) {
    test(name, async () => {
      const p = await profile(sql);
      assert.deepEqual(p.rows, [[count]]);
      assert.equal(p.scanned, scanned);
    });
  }
  test('every profile count is summed over the references: a self-join counts its files and its unflushed rows twice', async () => {
    assert.equal((await server.writeLines(`twice,host=a v=1i ${T0}\ntwice,host=a v=2i ${T0 + H}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.equal((await server.writeLines(`twice,host=a v=3i ${T0 + 2 * H}`, 'db=qe&precision=s')).status, 204);
    const r = await json("SELECT count(*) FROM twice a, twice b WHERE a.time >= '2026-01-01T01:00:00Z'", { 'x-strata-profile': 'true' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [[6]]);
    const p = r.body.profile as Record<string, unknown>;
    assert.deepEqual([p.files_considered, p.files_scanned, p.buffered_rows], [4, 3, 2]);
  });
  test('LEFT JOIN: a WHERE bound on the preserved side does not prune the other side', async () => {
    const sql = `SELECT count(*), count(b.host) FROM cpu a LEFT JOIN cpu b ON b.time = a.time - INTERVAL '1 hour' AND a.host = b.host
      WHERE a.time >= '2026-01-01T05:00:00Z'`;
    const p = await profile(sql);
    assert.deepEqual(p.rows, [[12, 12]]);
    assert.equal(p.scanned, 1 + 6);
  });
  test('a field only some files have is a column whatever the time range reads', async () => {
    // Separate flushes: the hour-0 file has `usage`, the later ones do not.
    for (const line of [`sparse,host=a v=1i,usage=100 ${T0}`, `sparse,host=a v=2i ${T0 + H}`, `sparse,host=a v=3i ${T0 + 2 * H}`]) {
      assert.equal((await server.writeLines(line, 'db=qe&precision=s')).status, 204);
      await server.flush();
    }
    const later = await profile("SELECT time, v, usage FROM sparse WHERE time >= '2026-01-01T01:00:00Z' ORDER BY time");
    assert.deepEqual(later.rows, [['2026-01-01T01:00:00Z', 2, null], ['2026-01-01T02:00:00Z', 3, null]]);
    assert.equal(later.scanned, 2);
    const none = await json("SELECT * FROM sparse WHERE time >= '2027-01-01T00:00:00Z'");
    assert.deepEqual([none.body.columns, none.body.data], [['time', 'host', 'usage', 'v'], []]);
    // Unknown in the pruned files, `usage` would bind to the outer query's cpu.usage.
    const outer = await profile(`SELECT count(*) FROM cpu WHERE time < '2026-01-01T01:00:00Z'
      AND EXISTS (SELECT 1 FROM sparse WHERE sparse.time >= '2026-01-01T01:00:00Z' AND usage >= 0)`);
    assert.deepEqual(outer.rows, [[0]]);
  });
  test('the columns of more files than are read at once (64) include the last file\'s', async () => {
    const lines = Array.from({ length: 70 }, (_, i) => `wide,host=a v=${i}i ${T0 + i * H}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.equal((await server.writeLines(`wide,host=a v=70i,late=1i ${T0 + 70 * H}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    const first = await profile(`SELECT v, late FROM wide WHERE time < to_timestamp(${T0 + H})`);
    assert.deepEqual([first.rows, first.scanned, first.considered], [[[0, null]], 1, 71]);
  });
  test('a column whose type differs between files has the type of the whole measurement whatever the time range reads', async () => {
    assert.equal((await server.writeLines(`retyped,host=a v=1i ${T0}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    // A file from outside Strata (or from before the field changed type) with v as DOUBLE, in hour 1.
    const inspect = await inspector();
    const hour1 = join(server.dataDir, 'qe', 'retyped', '2026', '01', '01', '01');
    mkdirSync(hour1, { recursive: true });
    await inspect.run(`COPY (SELECT TIMESTAMPTZ '2026-01-01 01:00:00+00' AS time, 'a' AS host, 2.5::DOUBLE AS v)
      TO '${join(hour1, 'retyped_20260101_010000_1_outside.parquet')}' (FORMAT parquet)`);
    inspect.closeSync();
    const all = await profile('SELECT typeof(v), v FROM retyped ORDER BY time');
    assert.deepEqual(all.rows, [['DOUBLE', 1], ['DOUBLE', 2.5]]);
    // The hour-0 file alone has v as BIGINT: DuckDB would bind it so without the widened empty set.
    const pruned = await profile(`SELECT typeof(v), v FROM retyped WHERE time < to_timestamp(${T0 + H})`);
    assert.deepEqual([pruned.rows, pruned.scanned, pruned.considered], [[['DOUBLE', 1]], 1, 2]);
  });
  test('nested columns of a file from outside Strata bind as themselves whatever the time range reads', async () => {
    assert.equal((await server.writeLines(`nestedcols,host=a v=1 ${T0}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    const inspect = await inspector();
    const hour1 = join(server.dataDir, 'qe', 'nestedcols', '2026', '01', '01', '01');
    mkdirSync(hour1, { recursive: true });
    await inspect.run(`COPY (SELECT TIMESTAMPTZ '2026-01-01 01:00:00+00' AS time, 'a' AS host, 2.0::DOUBLE AS v, {'a': 1, 'b': 'x'} AS s, [1, 2] AS l)
      TO '${join(hour1, 'nestedcols_20260101_010000_1_outside.parquet')}' (FORMAT parquet)`);
    inspect.closeSync();
    const all = await json('SELECT * FROM nestedcols ORDER BY time');
    assert.deepEqual([all.body.columns, all.body.data.length], [['time', 'host', 'v', 's', 'l'], 2]);
    const pruned = await json(`SELECT * FROM nestedcols WHERE time < to_timestamp(${T0 + H})`);
    assert.equal(pruned.status, 200, JSON.stringify(pruned.body));
    assert.deepEqual([pruned.body.columns, pruned.body.data], [['time', 'host', 'v', 's', 'l'], [['2026-01-01T00:00:00Z', 'a', 1, null, null]]]);
  });
  test('the profile is asked for by x-strata-profile or Arc\'s x-arc-profile, true or 1 in any case', async () => {
    for (const [header, value, wanted] of [['x-arc-profile', 'true', true], ['x-arc-profile', 'TRUE', true], ['x-strata-profile', '1', true],
      ['x-strata-profile', ' True ', true], ['x-arc-profile', 'false', false], ['x-strata-profile', 'yes', false], ['x-arc-profile', '0', false]] as const) {
      const r = await json('SELECT count(*) FROM cpu', { [header]: value });
      assert.equal(r.status, 200);
      assert.equal('profile' in r.body, wanted, `${header}: ${value}`);
      if (wanted) assert.equal((r.body.profile as { files_scanned: number }).files_scanned, 6);
    }
  });
  test('a column alias list may name another column `time`: no pruning', async () => {
    // The time column becomes `ts` and host becomes `time`: every host ('a', 'b') sorts after '2026-…'.
    const p = await profile("SELECT count(*) FROM cpu AS t(ts, time) WHERE time > '2026-01-01T05:00:00Z'");
    assert.deepEqual(p.rows, [[72]]);
    assert.equal(p.scanned, 6);
  });
  test('a sample is drawn before WHERE: no pruning below it', async () => {
    // 12 rows sampled from all 72 are almost never exactly the 12 of hour 5 (1 in 1.5e13);
    // from the pruned hour alone they always would be.
    for (const sql of [
      "SELECT count(*) FROM cpu TABLESAMPLE reservoir(12 ROWS) WHERE time >= '2026-01-01T05:00:00Z'",
      "SELECT count(*) FROM cpu WHERE time >= '2026-01-01T05:00:00Z' USING SAMPLE reservoir(12 ROWS)",
    ]) {
      const p = await profile(sql);
      assert.ok((p.rows[0][0] as number) < 12, `${sql} → ${JSON.stringify(p.rows)}`);
      assert.equal(p.scanned, 6);
    }
  });
  test('an ASOF JOIN matches the nearest right row: no pruning of its right side', async () => {
    // Events at 00:00 (v=1) and 02:00 (v=2): each cpu row of host a matches the latest one
    // at or before it (the earliest at or after it, the other way). With the 02:00 file
    // pruned away, the rows from 02:00 on would match 00:00 instead, which the WHERE keeps.
    for (const line of [`asofev,host=a v=1i ${T0}`, `asofev,host=a v=2i ${T0 + 2 * H}`]) {
      assert.equal((await server.writeLines(line, 'db=qe&precision=s')).status, 204);
    }
    await server.flush();
    const before = await profile(`SELECT count(*), min(e.v), max(e.v) FROM cpu c ASOF JOIN asofev e ON c.host = e.host AND c.time >= e.time
      WHERE e.time < '2026-01-01T01:00:00Z'`);
    assert.deepEqual([before.rows, before.scanned], [[[12, 1, 1]], 6 + 2]);
    const after = await profile(`SELECT count(*), min(e.v), max(e.v) FROM cpu c ASOF JOIN asofev e ON c.host = e.host AND c.time <= e.time
      WHERE e.time >= '2026-01-01T01:00:00Z'`);
    assert.deepEqual([after.rows, after.scanned], [[[12, 2, 2]], 6 + 2]);
    // The left side is matched row by row: a bound on it still prunes.
    const left = await profile(`SELECT count(*) FROM cpu c ASOF JOIN asofev e ON c.host = e.host AND c.time >= e.time
      WHERE c.time >= '2026-01-01T05:00:00Z'`);
    assert.deepEqual([left.rows, left.scanned], [[[6]], 1 + 2]);
  });
  test('the right side of a SEMI or ANTI join is hidden from the WHERE, whose alias then names another relation: no pruning of it', async () => {
    // `m.time` is the cross-joined `cpu AS m`; bounded by it, the hidden side would keep hour 5 alone.
    const anti = await profile(`SELECT count(*) FROM cpu AS c ANTI JOIN cpu AS m ON c.time = m.time, cpu AS m
      WHERE m.time >= '2026-01-01T05:00:00Z'`);
    assert.deepEqual([anti.rows, anti.scanned], [[[0]], 6 + 6 + 1]);
    const semi = await profile(`SELECT count(*) FROM cpu AS c SEMI JOIN cpu AS m ON c.time = m.time, cpu AS m
      WHERE m.time >= '2026-01-01T05:00:00Z'`);
    assert.deepEqual([semi.rows, semi.scanned], [[[72 * 12]], 6 + 6 + 1]);
    // A bound on the left side, which the WHERE sees, still prunes it.
    const left = await profile(`SELECT count(*) FROM cpu AS c SEMI JOIN cpu AS m ON c.time = m.time WHERE c.time >= '2026-01-01T05:00:00Z'`);
    assert.deepEqual([left.rows, left.scanned], [[[12]], 1 + 6]);
  });
  test('current_timestamp and current_date without parentheses name a column of that name when there is one: no pruning from them then', async () => {
    // Read as the clock (later than every row here), each bound would prune every file.
    const clock = await profile('SELECT count(*) FROM cpu WHERE time >= current_timestamp');
    assert.deepEqual([clock.rows, clock.scanned], [[[0]], 0]);
    // A join partner's column and a select-list alias take the name before the clock.
    const joined = await profile(`WITH w AS (SELECT TIMESTAMPTZ '2026-01-01 03:00:00+00' AS current_timestamp)
      SELECT count(*) FROM cpu, w WHERE cpu.time >= current_timestamp`);
    assert.deepEqual([joined.rows, joined.scanned], [[[36]], 6]);
    const aliased = await profile("SELECT count(*) FROM (SELECT DATE '2026-01-01' AS current_date, time FROM cpu WHERE time >= current_date)");
    assert.deepEqual([aliased.rows, aliased.scanned], [[[72]], 6]);
    // So does a field of the measurement itself.
    const lines = [`clockcols,host=a current_date="2020-01-01" ${T0}`, `clockcols,host=a current_date="2020-01-01" ${T0 + H}`];
    assert.equal((await server.writeLines(lines.join('\n'), 'db=qe&precision=s')).status, 204);
    await server.flush();
    const own = await profile('SELECT count(*) FROM clockcols WHERE time >= CAST(current_date AS DATE)');
    assert.deepEqual([own.rows, own.scanned], [[[2]], 2]);
  });
  test('a POSITIONAL JOIN pairs rows by place: no pruning below it', async () => {
    // Files are read in hour order, so hour 5 holds positions 60–71 of all 72 rows.
    const sql = `SELECT count(*), min(n.range), max(n.range) FROM cpu POSITIONAL JOIN range(72) n
      WHERE cpu.time >= '2026-01-01T05:00:00Z'`;
    const p = await profile(sql);
    assert.deepEqual(p.rows, [[12, 60, 71]]);
    assert.equal(p.scanned, 6);
  });
});

describe('host time zone', () => {
  // DuckDB starts in the host's zone; a half-hour offset makes any mix-up visible.
  let tz: TestServer;
  before(async () => {
    tz = await TestServer.start({ TZ: 'Asia/Kolkata', STRATA_QUERY_CACHE_TTL_MS: '0' });
    const lines: string[] = [];
    for (let t = T0; t < T0 + 6 * H; t += 600) lines.push(`cpu,host=a usage=1 ${t}`);
    assert.equal((await tz.writeLines(lines.join('\n'), 'db=tz&precision=s')).status, 204);
    await tz.flush();
  });
  after(async () => {
    await tz.stop();
    removeDir(tz.dataDir);
  });
  test('a timestamp without an offset means UTC on every connection, pruned or not', async () => {
    // Concurrent, so both pool connections answer (one after another, the same one would).
    const queries: [string, number][] = [
      ["SELECT count(*) FROM cpu WHERE time < '2026-01-01 01:00:00'", 6],
      ["SELECT count(*) FROM cpu WHERE time >= '2026-01-01 05:00:00'", 6],
      ["SELECT count(*) FROM (SELECT * FROM cpu) WHERE time >= '2026-01-01 05:00:00'", 6],
      ["SELECT count(DISTINCT date_trunc('day', time)) FROM cpu", 1],
    ];
    const answers = await Promise.all([...queries, ...queries].map(([sql]) => tz.rows(sql, 'tz')));
    assert.deepEqual(answers, [...queries, ...queries].map(([, n]) => [[n]]));
  });
});

describe('listings', () => {
  test('a file deleted from outside Strata after its listing was cached: the query plans again', async () => {
    const lines = [0, 1, 2].map((h) => `gone,host=a v=${h}i ${T0 + h * H}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual((await json('SELECT count(*) FROM gone')).body.data, [[3]]);
    const dir = join(server.dataDir, 'qe', 'gone');
    const files = parquetFiles(dir).sort();
    assert.equal(files.length, 3);
    rmSync(join(dir, files[1]));
    const r = await json('SELECT v FROM gone ORDER BY time');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [[0], [2]]);
  });

  test('a file deleted from outside between the bind and the read: the query plans again', async () => {
    const lines = [0, 1, 2].map((h) => `bindgone,host=a v=${h}i ${T0 + h * H}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual((await json('SELECT count(*) FROM bindgone')).body.data, [[3]]);
    const dir = join(server.dataDir, 'qe', 'bindgone');
    const files = parquetFiles(dir).sort();
    // The scalar subquery (~1 s here) runs before the scan that opens the files, after the bind found them all.
    const answer = json('SELECT v FROM bindgone WHERE v <= (SELECT max(range) - 1999999997 FROM range(2000000000)) ORDER BY time');
    await new Promise((resolve) => setTimeout(resolve, 150));
    rmSync(join(dir, files[1]));
    const r = await answer;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, [[0], [2]]);
  });

  test('a file deleted from outside before any query read it: the query plans again', async () => {
    // No query has read these files' schemas, so planning (not the scan) meets the missing one,
    // also when it lies in an hour the time range prunes away.
    const lines = [0, 1, 2].map((h) => `unread,host=a v=${h}i ${T0 + h * H}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=qe&precision=s')).status, 204);
    await server.flush();
    // SHOW TABLES caches the listing without reading any file.
    assert.equal((await json('SHOW TABLES')).status, 200);
    const dir = join(server.dataDir, 'qe', 'unread');
    const files = parquetFiles(dir).sort();
    assert.equal(files.length, 3);
    rmSync(join(dir, files[0]));
    const pruned = await json(`SELECT v FROM unread WHERE time >= to_timestamp(${T0 + H}) ORDER BY time`);
    assert.equal(pruned.status, 200, JSON.stringify(pruned.body));
    assert.deepEqual(pruned.body.data, [[1], [2]]);
    rmSync(join(dir, files[1]));
    const all = await json('SELECT v FROM unread ORDER BY time');
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.deepEqual(all.body.data, [[2]]);
  });

  test('a flush into one hour is seen by queries over that hour and over all hours', async () => {
    assert.equal((await server.writeLines(`later,host=a v=1i ${T0}\nlater,host=a v=2i ${T0 + H}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    const hour1 = "SELECT sum(v) FROM later WHERE time >= '2026-01-01T01:00:00Z'";
    assert.deepEqual((await json(hour1)).body.data, [[2]]);
    assert.deepEqual((await json('SELECT sum(v) FROM later')).body.data, [[3]]);
    assert.equal((await server.writeLines(`later,host=a v=10i ${T0 + H + 1}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.deepEqual((await json(hour1)).body.data, [[12]]);
    assert.deepEqual((await json('SELECT sum(v) FROM later')).body.data, [[13]]);
  });
});

describe('read your writes', () => {
  test('an unflushed record is visible, then exactly once after the flush', async () => {
    assert.equal((await server.writeLines(`ryw,host=x v=42i ${T0}`, 'db=qe&precision=s')).status, 204);
    assert.deepEqual((await json('SELECT host, v FROM ryw')).body.data, [['x', 42]]);
    await server.flush();
    assert.deepEqual((await json('SELECT host, v FROM ryw')).body.data, [['x', 42]]);
    // Mixed: one record in a file, one in memory.
    assert.equal((await server.writeLines(`ryw,host=y v=7i ${T0 + 1}`, 'db=qe&precision=s')).status, 204);
    assert.deepEqual((await json('SELECT host, v FROM ryw ORDER BY time')).body.data, [['x', 42], ['y', 7]]);
  });
  // Arc passes them to DuckDB; its Grafana guide tells users to run DESCRIBE.
  test('DESCRIBE, SHOW and SUMMARIZE of a measurement or a query see its stored and its buffered columns and rows', async () => {
    assert.equal((await server.writeLines(`dscr,host=a v=1i ${T0}`, 'db=qe&precision=s')).status, 204);
    await server.flush();
    assert.equal((await server.writeLines(`dscr,host=b v=3i,w=0.5 ${T0 + 3600}`, 'db=qe&precision=s')).status, 204);
    for (const sql of ['DESCRIBE dscr', 'SHOW dscr', 'DESCRIBE qe.dscr', 'describe TABLE "dscr"', 'DESCRIBE SELECT * FROM dscr']) {
      const r = await json(sql);
      assert.equal(r.status, 200, `${sql}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.columns, ['column_name', 'column_type', 'null', 'key', 'default', 'extra'], sql);
      assert.deepEqual(r.body.data.map((row) => row.slice(0, 2)).sort(), [['host', 'VARCHAR'], ['time', 'TIMESTAMP WITH TIME ZONE'], ['v', 'BIGINT'], ['w', 'DOUBLE']], sql);
    }
    const summary = await json(`SELECT column_name, min, max, count FROM (SUMMARIZE SELECT host, v FROM dscr WHERE time >= '2026-01-01T00:00:00Z') ORDER BY 1`);
    assert.deepEqual(summary.body.data, [['host', 'a', 'b', 2], ['v', '1', '3', 2]]);
    const whole = await json('SUMMARIZE dscr');
    assert.deepEqual(whole.body.data.map((row) => row[0]).sort(), ['host', 'time', 'v', 'w']);
  });

  test('as buffered records grow, gain a tag value or a field, are flushed and refilled, every query sees exactly them', async () => {
    // Each step is queried by concurrent requests, so that both pool connections (whose
    // tables of held records live on between queries) meet each kind of change (one after
    // another, the LIFO pool would hand every query the same connection).
    const expected: unknown[][] = [];
    const write = async (lines: string[], rows: unknown[][]): Promise<void> => {
      assert.equal((await server.writeLines(lines.join('\n'), 'db=qe&precision=s')).status, 204);
      expected.push(...rows);
    };
    const check = async (step: string): Promise<void> => {
      const answers = await Promise.all([0, 1, 2, 3].map(() => json('SELECT epoch(time)::BIGINT, host, v, w FROM grow ORDER BY time')));
      answers.forEach((r, i) => assert.deepEqual(r.body.data, expected, `${step}, query ${i}: ${JSON.stringify(r.body)}`));
    };
    await write([`grow,host=a v=1i ${T0}`, `grow,host=b v=2i ${T0 + 1}`], [[T0, 'a', 1, null], [T0 + 1, 'b', 2, null]]);
    await write([`grow,host=a w=0.5 ${T0 + 2}`], [[T0 + 2, 'a', null, 0.5]]);
    await check('first records');
    await write([`grow,host=b v=3i ${T0 + 3}`, `grow,host=a v=4i ${T0 + 4}`], [[T0 + 3, 'b', 3, null], [T0 + 4, 'a', 4, null]]);
    await check('more records, same tags and fields');
    await write([`grow,host=c v=5i ${T0 + 5}`], [[T0 + 5, 'c', 5, null]]);
    await check('a new tag value');
    await write([`grow,host=c,dc=x v=6i ${T0 + 6}`], [[T0 + 6, 'c', 6, null]]);
    await check('a new tag');
    await server.flush();
    await check('flushed');
    // More records than the flushed buffer held, with the same tags, tag values and
    // fields: only its generation tells the new buffer apart.
    const refill = Array.from({ length: 8 }, (_, i) => T0 + 100 + i);
    const hosts = ['a', 'b', 'c'];
    await write(
      refill.map((t, i) => `grow,host=${hosts[i % 3]}${i === 0 ? ',dc=x' : ''} v=${70 + i}i${i === 1 ? ',w=2.5' : ''} ${t}`),
      refill.map((t, i) => [t, hosts[i % 3], 70 + i, i === 1 ? 2.5 : null]),
    );
    await check('a new buffer after the flush');
    await write([`grow,host=b v=8i ${T0 + 200}`, `grow,host=a v=9i,w=1.5 ${T0 + 201}`], [[T0 + 200, 'b', 8, null], [T0 + 201, 'a', 9, 1.5]]);
    await check('the new buffer grows');
  });
  test('a query run again over grown buffered records is planned again: filters see values outside those first seen', async () => {
    // Same columns throughout, so the held table is only appended to (same name, same
    // text): DuckDB plans with its statistics, and a statement kept from the first run
    // would prune `v > 50` and `v IS NULL` away.
    const queries = ['SELECT count(*) FROM stats_grow WHERE v > 50', 'SELECT count(*) FROM stats_grow WHERE v IS NULL', 'SELECT count(*) FROM stats_grow'];
    const answers = async (): Promise<unknown[]> =>
      (await Promise.all([0, 1, 2, 3].map(async () => (await Promise.all(queries.map((q) => json(q)))).map((r) => r.body.data[0][0]))));
    assert.equal((await server.writeLines(`stats_grow v=1i,w=0i ${T0}\nstats_grow v=2i ${T0 + 1}`, 'db=qe&precision=s')).status, 204);
    assert.deepEqual(await answers(), Array(4).fill([0, 0, 2]));
    assert.equal((await server.writeLines(`stats_grow v=99i ${T0 + 2}\nstats_grow w=1i ${T0 + 3}`, 'db=qe&precision=s')).status, 204);
    assert.deepEqual(await answers(), Array(4).fill([1, 1, 4]));
  });
  test('the count never changes while flushes run concurrently', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `loop,host=h${i % 7} v=${i}i ${T0 + i}`).join('\n');
    assert.equal((await server.writeLines(lines, 'db=qe&precision=s')).status, 204);
    let flushing = true;
    const flusher = (async () => {
      for (let i = 0; i < 5; i++) {
        await server.writeLines(`other v=${i} ${T0 + i}`, 'db=qe&precision=s');
        await server.flush();
      }
      flushing = false;
    })();
    let checks = 0;
    while (flushing || checks < 5) {
      const r = await json('SELECT count(*), sum(v) FROM loop');
      assert.deepEqual(r.body.data, [[2000, 1999000]], JSON.stringify(r.body));
      checks++;
    }
    await flusher;
  });
});

describe('result formats', () => {
  test('Arrow: values, types and a zero-row schema', async () => {
    const res = await post('/api/v1/query/arrow', { sql: "SELECT time, host, usage, 1.5::DECIMAL(4,1) AS d, 7::DECIMAL(10,0) AS i FROM cpu WHERE time < '2026-01-01T00:10:00Z' ORDER BY host" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.apache.arrow.stream');
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    assert.deepEqual(table.schema.fields.map((f) => [f.name, String(f.type)]), [
      ['time', 'Timestamp<MICROSECOND, UTC>'], ['host', 'Utf8'], ['usage', 'Float64'], ['d', 'Float64'], ['i', 'Int64'],
    ]);
    assert.deepEqual(table.toArray().map((r) => { const o = r.toJSON(); return [o.time, o.host, o.usage, o.d, o.i]; }), [
      [T0 * 1000, 'a', 0, 1.5, 7n], [T0 * 1000, 'b', 0.5, 1.5, 7n],
    ]);
    const empty = await post('/api/v1/query/arrow', { sql: 'SELECT host, usage FROM cpu WHERE false' });
    const e = tableFromIPC(new Uint8Array(await empty.arrayBuffer()));
    assert.equal(e.numRows, 0);
    assert.deepEqual(e.schema.fields.map((f) => f.name), ['host', 'usage']);
  });
  test('Arrow: SHOW DATABASES (Grafana health check)', async () => {
    const res = await post('/api/v1/query/arrow', { sql: 'SHOW DATABASES' });
    assert.equal(res.status, 200);
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    assert.ok(table.getChild('database')!.toArray().includes('qe'));
  });
  test('a large JSON result streams and parses', async () => {
    const r = await json('SELECT range AS i, range * 0.5 AS x FROM range(100000)');
    assert.equal(r.body.row_count, 100000);
    assert.deepEqual(r.body.data[99999], [99999, 49999.5]);
  });
  test('Accept-Encoding: JSON and CSV answers compressed as the client asks (gzip, br, deflate), whole or streamed; small answers, Arrow and identity as they are', async () => {
    /** The answer as sent, not decompressed (fetch would undo the encoding). */
    const raw = (path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Buffer }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-arc-database': 'qe', ...headers } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, bytes: Buffer.concat(parts) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    const decode: Record<string, (b: Buffer) => Buffer> = { gzip: gunzipSync, br: brotliDecompressSync, deflate: inflateSync };
    // 150 rows (about 3 KB: compressed in one call, sent with its Content-Length), 2,000 (about 60 KB: one
    // body, compressed through a zlib stream, chunked) and 100,000 (streamed, chunked).
    for (const rows of [150, 2000, 100_000]) {
      const sql = `SELECT range AS i, 'host_' || (range % 7) AS host, range * 0.25 AS x FROM range(${rows})`;
      const plain = await raw('/api/v1/query', { sql }, {});
      assert.equal(plain.headers['content-encoding'], undefined);
      const expected = (JSON.parse(plain.bytes.toString()) as { data: unknown[][] }).data;
      assert.equal(expected.length, rows);
      // q=0 refuses an encoding, `*` included (the plugin alone read `*` as gzip): the next one there is.
      for (const [asked, chosen] of [['gzip', 'gzip'], ['br;q=1, gzip;q=0.5', 'br'], ['deflate', 'deflate'], ['identity, gzip;q=0', undefined], ['compress', undefined],
        ['gzip;q=0, zstd;q=0, *', 'br'], ['gzip;q=0, br;q=0, deflate;q=0, *', undefined], ['*;q=0', undefined]] as const) {
        const r = await raw('/api/v1/query', { sql }, { 'accept-encoding': asked });
        assert.equal(r.status, 200, asked);
        assert.equal(r.headers['content-encoding'], chosen, `${rows} rows, ${asked}`);
        if (chosen === undefined) {
          assert.deepEqual((JSON.parse(r.bytes.toString()) as { data: unknown[][] }).data, expected);
          continue;
        }
        assert.match(String(r.headers.vary), /accept-encoding/, asked);
        assert.ok(r.bytes.length * 3 < plain.bytes.length, `${chosen}: ${r.bytes.length} of ${plain.bytes.length} bytes`);
        assert.deepEqual([r.headers['content-length'], r.headers['transfer-encoding']],
          rows === 150 ? [String(r.bytes.length), undefined] : [undefined, 'chunked'], `${rows} rows, ${asked}`);
        const body = JSON.parse(decode[chosen](r.bytes).toString()) as { data: unknown[][]; row_count: number };
        assert.equal(body.row_count, rows);
        assert.deepEqual(body.data, expected, `${rows} rows, ${chosen}`);
      }
      const csv = await raw('/api/v1/query', { sql, format: 'csv' }, { 'accept-encoding': 'gzip' });
      assert.equal(csv.headers['content-encoding'], 'gzip');
      const lines = gunzipSync(csv.bytes).toString().split('\r\n');
      assert.deepEqual([lines[0], lines[rows], lines.length], ['i,host,x', `${rows - 1},host_${(rows - 1) % 7},${(rows - 1) * 0.25}`, rows + 2]);
    }
    // An answer under 1 KiB, an Arrow stream and an error are sent as they are.
    const small = await raw('/api/v1/query', { sql: 'SELECT 1 AS one' }, { 'accept-encoding': 'gzip' });
    assert.deepEqual([small.headers['content-encoding'], (JSON.parse(small.bytes.toString()) as { data: unknown }).data], [undefined, [[1]]]);
    const arrow = await raw('/api/v1/query/arrow', { sql: 'SELECT range AS i FROM range(100000)' }, { 'accept-encoding': 'gzip' });
    assert.equal(arrow.headers['content-encoding'], undefined);
    assert.equal(tableFromIPC(new Uint8Array(arrow.bytes)).numRows, 100000);
    const refused = await raw('/api/v1/query', { sql: 'DROP TABLE cpu' }, { 'accept-encoding': 'gzip' });
    assert.deepEqual([refused.status, refused.headers['content-encoding']], [400, undefined]);
  });
  test('CSV by Accept and by format', async () => {
    const sql = `SELECT 'a,b' AS s, 'say "hi"' AS q, NULL AS n, 1 AS i`;
    const expected = 's,q,n,i\r\n"a,b","say ""hi""",,1\r\n';
    const byAccept = await post('/api/v1/query', { sql }, { accept: 'text/csv' });
    assert.match(byAccept.headers.get('content-type')!, /^text\/csv/);
    assert.equal(await byAccept.text(), expected);
    assert.equal(await (await post('/api/v1/query', { sql, format: 'csv' })).text(), expected);
    assert.equal(await (await post('/api/v1/query', { sql, format: 'CSV' })).text(), expected);
    // The format the body names wins over Accept.
    const named = await post('/api/v1/query', { sql, format: 'json' }, { accept: 'text/csv' });
    assert.deepEqual(((await named.json()) as { data: unknown }).data, [['a,b', 'say "hi"', null, 1]]);
    // Accept weighed as RFC 9110 says: q-values, wildcards, parameters other than q ignored.
    for (const [accept, csv] of [
      ['text/csv; header=present', true], ['text/csv;charset=UTF-8', true], ['text/*', true],
      ['application/json, text/csv;q=0.1', false], ['text/csv;q=0.9, application/json', false],
      ['text/csv, application/json', true], ['text/csv;q=0', false], ['*/*', false],
      ['text/csv;q=0.5, */*;q=0.1', true], ['application/xml', false],
      // The most specific range decides: a type refused is refused, whatever wildcard follows.
      ['text/csv;q=0, text/*', false], ['application/json;q=0, */*', true],
    ] as const) {
      const res = await post('/api/v1/query', { sql }, { accept });
      assert.equal(res.status, 200, accept);
      assert.equal(res.headers.get('vary'), 'accept');
      if (csv) assert.equal(await res.text(), expected, accept);
      else assert.deepEqual(((await res.json()) as { data: unknown[][] }).data, [['a,b', 'say "hi"', null, 1]], accept);
    }
  });

  test('Arc\'s x-arc-arrow-compression: zstd and lz4 answer a stream every reader takes (uncompressed); any other value is Arc\'s 400', async () => {
    for (const codec of ['zstd', 'lz4']) {
      const res = await post('/api/v1/query/arrow', { sql: 'SELECT 41 + 1 AS n' }, { 'x-arc-arrow-compression': codec });
      assert.equal(res.status, 200, codec);
      assert.deepEqual(tableFromIPC(new Uint8Array(await res.arrayBuffer())).toArray().map((r) => Number(r.n)), [42], codec);
    }
    const bad = await post('/api/v1/query/arrow', { sql: 'SELECT 1' }, { 'x-arc-arrow-compression': 'bogus' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid x-arc-arrow-compression: must be zstd or lz4');
  });
  test('/exec with the query parameter given twice: 400 saying so', async () => {
    const res = await fetch(`${server.url}/exec?query=${encodeURIComponent('SELECT 1')}&query=${encodeURIComponent('SELECT 2')}`);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /"query" is given 2 times/);
  });
  test('/exec errors are QuestDB\'s {query, error, position}, naming the query they answer', async () => {
    const sql = 'SELECT nosuch FROM range(1)';
    const res = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}`);
    assert.equal(res.status, 400);
    const body = await res.json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['query', 'error', 'position']);
    assert.equal(body.query, sql);
    assert.match(String(body.error), /Referenced column "nosuch" not found/);
    assert.equal(body.position, 0);
    const missing = await fetch(`${server.url}/exec`);
    assert.equal(missing.status, 400);
    assert.deepEqual(await missing.json(), { query: '', error: 'query parameter "query" is required', position: 0 });
  });
  test('/exec answers columns with types and the dataset', async () => {
    const res = await fetch(`${server.url}/exec?query=${encodeURIComponent("SELECT 1 AS a, 'x' AS b")}`);
    assert.deepEqual(await res.json(), { query: "SELECT 1 AS a, 'x' AS b", columns: [{ name: 'a', type: 'INT' }, { name: 'b', type: 'VARCHAR' }], timestamp: -1, dataset: [[1, 'x']], count: 1 });
    // A timestamp column named `time`, as a measurement's, is the designated timestamp QuestDB gives the index of.
    const timed = await fetch(`${server.url}/exec?query=${encodeURIComponent("SELECT 1 AS a, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS time")}`);
    assert.equal(((await timed.json()) as { timestamp: number }).timestamp, 1);
    const list = await fetch(`${server.url}/exec?query=${encodeURIComponent("SELECT [TIMESTAMP '2026-01-01'] AS time")}`);
    assert.equal(((await list.json()) as { timestamp: number }).timestamp, -1, 'a list of timestamps is none');
  });
  test('/exec?quoteLargeNum=true (or QuestDB\'s console, src=con) sends LONG values as JSON strings, exact past 2^53', async () => {
    const sql = 'SELECT 9007199254740993::BIGINT AS b, 4294967295::UINTEGER AS u, 7::INTEGER AS i, NULL::BIGINT AS n';
    for (const param of ['quoteLargeNum=true', 'src=con']) {
      const res = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}&${param}`);
      assert.equal(res.status, 200, param);
      assert.match(await res.text(), /"dataset":\[\["9007199254740993","4294967295",7,null\]\]/, param);
    }
    const plain = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}`);
    assert.match(await plain.text(), /"dataset":\[\[9007199254740993,4294967295,7,null\]\]/);
  });
  test('/exec names column types as QuestDB does where it has the type, and as DuckDB does otherwise', async () => {
    const columns: [string, string][] = [
      ['1::TINYINT', 'BYTE'], ['1::SMALLINT', 'SHORT'], ['1::UTINYINT', 'SHORT'], ['1::INTEGER', 'INT'], ['1::USMALLINT', 'INT'],
      ['1::BIGINT', 'LONG'], ['1::UINTEGER', 'LONG'], ['1::UBIGINT', 'UBIGINT'], ['1.5::FLOAT', 'FLOAT'], ['1.5::DOUBLE', 'DOUBLE'],
      ['true', 'BOOLEAN'], ["'x'", 'VARCHAR'], ["TIMESTAMP '2026-01-01'", 'TIMESTAMP'], ["TIMESTAMPTZ '2026-01-01 00:00:00+00'", 'TIMESTAMP'],
      ["'2026-01-01'::TIMESTAMP_S", 'TIMESTAMP'], ["'2026-01-01'::TIMESTAMP_MS", 'TIMESTAMP'], ["'2026-01-01'::TIMESTAMP_NS", 'TIMESTAMP_NS'],
      ["DATE '2026-01-01'", 'DATE'], ["'\\x01'::BLOB", 'BINARY'], ['gen_random_uuid()', 'UUID'], ['1.5::DECIMAL(10, 2)', 'DECIMAL(10,2)'],
      ["INTERVAL '1 day'", 'INTERVAL'], ['[1, 2]', 'INTEGER[]'], ['\'{"a": 1}\'::JSON', 'JSON'],
    ];
    const sql = `SELECT ${columns.map(([e], i) => `${e} AS c${i}`).join(', ')}`;
    const res = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { columns: { name: string; type: string }[] };
    assert.deepEqual(body.columns.map((c) => c.type), columns.map(([, t]) => t));
  });
  test('/exec?limit= pages through the result as QuestDB does: N, LO,HI across chunk edges, LO, to the end, NULLs kept; count=true counts every row; nm=true leaves out the columns', async () => {
    const sql = "SELECT range AS n, CASE WHEN range % 3 = 0 THEN NULL ELSE 'v' || range END AS s FROM range(5000)";
    const exec = async (params: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}&${params}`);
      return { status: res.status, body: await res.json() as Record<string, unknown> };
    };
    const rows = (lo: number, hi: number): unknown[][] => Array.from({ length: hi - lo }, (_, i) => [lo + i, (lo + i) % 3 === 0 ? null : `v${lo + i}`]);
    // QuestDB numbers rows from 1, both ends included (0 reads as 1): `rows(lo, hi)` are 0-based, hi excluded.
    // DuckDB hands over 2,048 rows a chunk: windows inside one, across an edge, from a row not on a byte of the NULL bitmap.
    for (const [limit, lo, hi] of [['3', 0, 3], ['0,3', 0, 3], ['1,3', 0, 3], ['2,4', 1, 4], ['4,4', 3, 4], ['2040,2060', 2039, 2060], ['4093,4103', 4092, 4103],
      ['4990,6000', 4989, 5000], ['0', 0, 0], ['7000,7001', 5000, 5000], ['5,4', 4, 4], ['1,0', 0, 0], ['4990,', 4989, 5000], ['0,', 0, 5000]] as const) {
      const { status, body } = await exec(`limit=${limit}`);
      assert.equal(status, 200, limit);
      assert.deepEqual(body.dataset, rows(lo, hi), limit);
      // QuestDB's count is the number of the last row sent (0 for a page past the end).
      assert.equal(body.count, hi > lo ? hi : 0, limit);
      assert.deepEqual(body.columns, [{ name: 'n', type: 'LONG' }, { name: 's', type: 'VARCHAR' }], limit);
    }
    const bare = await exec('limit=1&nm=true');
    assert.deepEqual(bare.body, { dataset: [[0, null]], count: 1 });
    // QuestDB's console asks for a page and the whole result's row count.
    const counted = await exec('limit=2,4&count=true&nm=true');
    assert.deepEqual(counted.body, { dataset: rows(1, 4), count: 5000 });
    // A page past the end counts 0 with count=true too, as QuestDB's.
    assert.deepEqual((await exec('limit=7000,7001&count=true&nm=true')).body, { dataset: [], count: 0 });
    for (const limit of ['5,2', '6,4', 'abc', '1,2,3', ',5', '3,-1']) {
      const { status, body } = await exec(`limit=${encodeURIComponent(limit)}`);
      assert.equal(status, 400, limit);
      assert.match(String(body.error), /query parameter "limit" must be N \(the first N rows\), LO,HI .* or LO, \(rows LO to the end\), got /, limit);
    }
    for (const limit of ['-5', '-5,10']) {
      const { status, body } = await exec(`limit=${encodeURIComponent(limit)}`);
      assert.equal(status, 400, limit);
      assert.equal(body.error, `query parameter "limit" must not be negative, got "${limit}": for the last N rows, ORDER BY … DESC LIMIT N in the query`);
    }
    assert.equal(await server.connectionsInUse(), 0, 'a window read to its end gives its connection back');
  });
  test('/exec?timings=true adds QuestDB\'s timings in ns after count; counting the rows after a page is timed apart', async () => {
    const sql = 'SELECT range AS n FROM range(3000000)';
    const res = await fetch(`${server.url}/exec?query=${encodeURIComponent(sql)}&limit=2&count=true&timings=true`);
    assert.equal(res.status, 200);
    const body = await res.json() as { dataset: unknown; count: number; timings: Record<string, number> };
    assert.deepEqual(Object.keys(body), ['query', 'columns', 'timestamp', 'dataset', 'count', 'timings']);
    assert.deepEqual(body.dataset, [[0], [1]]);
    assert.equal(body.count, 3000000);
    assert.deepEqual(Object.keys(body.timings), ['authentication', 'compiler', 'execute', 'count']);
    for (const [key, ns] of Object.entries(body.timings)) assert.ok(Number.isSafeInteger(ns) && ns >= 0, `${key}: ${ns}`);
    assert.equal(body.timings.authentication, 0);
    // Reading 3 M rows to count them takes milliseconds; `execute` is the whole request's, as QuestDB's.
    assert.ok(body.timings.count > 1e5, JSON.stringify(body.timings));
    assert.ok(body.timings.execute >= body.timings.compiler + body.timings.count, JSON.stringify(body.timings));
  });
});

describe('Arc\'s estimate and measurement list', () => {
  test('POST /api/v1/query/estimate counts the query\'s rows without sending them, with Arc\'s warning levels; SHOW and refused SQL are 400', async () => {
    const estimate = async (sql: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await post('/api/v1/query/estimate', { sql });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const small = await estimate("SELECT * FROM cpu WHERE time >= '2026-01-01T05:00:00Z' -- the last hour");
    assert.equal(small.status, 200, JSON.stringify(small.body));
    assert.deepEqual(Object.keys(small.body), ['success', 'estimated_rows', 'warning_level', 'warning_message', 'execution_time_ms']);
    assert.deepEqual([small.body.success, small.body.estimated_rows, small.body.warning_level], [true, 12, 'none']);
    for (const [n, level] of [[10_001, 'low'], [100_001, 'medium'], [1_000_001, 'high']] as const) {
      const { body } = await estimate(`SELECT * FROM range(${n});`);
      assert.deepEqual([body.estimated_rows, body.warning_level], [n, level]);
    }
    const show = await estimate('SHOW TABLES');
    assert.equal(show.status, 400);
    assert.match(String(show.body.error), /^SHOW commands have no row count to estimate/);
    // Arc's error of its other JSON APIs: no answer struct, which this endpoint never sends.
    assert.deepEqual(Object.keys(show.body), ['success', 'error']);
    const refused = await estimate("SELECT * FROM read_csv('/etc/passwd')");
    assert.equal(refused.status, 400);
    assert.match(String(refused.body.error), /read_csv\(\) is not allowed/);
    // Refused, and accepted, as /api/v1/query does: checked before it is wrapped.
    for (const [sql, message] of [['SELECT 1) t, (SELECT 2', /^invalid SQL/], ['PRAGMA version', /^only SELECT statements are allowed/],
      ['', /^SQL query is required/], ['SELECT 1; SELECT 2', /expected one SELECT statement, got 2/]] as const) {
      const r = await estimate(sql);
      assert.equal(r.status, 400, sql);
      assert.match(String(r.body.error), message, sql);
    }
    assert.equal((await estimate('SELECT * FROM cpu;;')).body.estimated_rows, 72);
    // Semicolons before the statement too, which /api/v1/query accepts.
    assert.equal((await json('; SELECT * FROM cpu')).body.data.length, 72);
    assert.equal((await estimate('; ;\n-- before\nSELECT * FROM cpu')).body.estimated_rows, 72);
    // A comment after the semicolon, and one inside a string, which stays.
    assert.equal((await estimate('SELECT * FROM cpu; -- all of it')).body.estimated_rows, 72);
    assert.equal((await estimate("SELECT * FROM cpu WHERE host <> ';--' /* none */;")).body.estimated_rows, 72);
    // A `--` comment ends at a carriage return, as DuckDB reads it: the WHERE after it counts.
    const filtered = (await json("SELECT * FROM cpu -- one host\rWHERE host = 'a'")).body.data.length;
    assert.ok(filtered > 0 && filtered < 72);
    assert.equal((await estimate("SELECT * FROM cpu -- one host\rWHERE host = 'a'")).body.estimated_rows, filtered);
  });
  test('GET /api/v1/query/:measurement: Arc\'s SELECT * with limit, offset, order_by and where, each checked', async () => {
    const get = async (params: string): Promise<{ status: number; body: Record<string, unknown> & { data: unknown[][] } }> => {
      const res = await fetch(`${server.url}/api/v1/query/cpu?database=qe&${params}`);
      return { status: res.status, body: (await res.json()) as never };
    };
    // Newest first by default, 100 rows.
    const latest = await get('');
    assert.equal(latest.status, 200, JSON.stringify(latest.body));
    assert.deepEqual([latest.body.columns, latest.body.row_count], [['time', 'host', 'usage'], 72]);
    assert.equal(latest.body.data[0][0], '2026-01-01T05:50:00Z');
    const page = await get(`limit=2&offset=1&order_by=${encodeURIComponent('time ASC, host DESC')}&where=${encodeURIComponent("host = 'a' AND usage >= 1")}`);
    assert.deepEqual(page.body.data, [['2026-01-01T00:20:00Z', 'a', 2], ['2026-01-01T00:30:00Z', 'a', 3]]);
    for (const [url, message] of [['/api/v1/query/?database=qe', /^invalid measurement path: empty measurement/],
      ['/api/v1/query/cpu?database=', /^invalid measurement path: empty database/]] as const) {
      const res = await fetch(server.url + url);
      assert.equal(res.status, 400, url);
      assert.match(((await res.json()) as { error: string }).error, message, url);
    }
    // The database from x-arc-database when the parameter is absent.
    const byHeader = await fetch(`${server.url}/api/v1/query/cpu?limit=1`, { headers: { 'x-arc-database': 'qe' } });
    assert.equal(((await byHeader.json()) as { row_count: number }).row_count, 1);
    for (const [params, message] of [
      ['limit=1000001', /"limit" must be an integer from 0 to 1000000/], ['offset=-1', /"offset" must be an integer/],
      [`order_by=${encodeURIComponent('time; DROP TABLE x')}`, /"order_by" must be columns/],
      [`where=${encodeURIComponent('1=1; DROP TABLE cpu')}`, /"where" must be one condition/],
      [`where=${encodeURIComponent("host = 'a")}`, /"where" must be one condition/],
      [`where=${encodeURIComponent('1=1) UNION (SELECT 1')}`, /"where" must be one condition/],
    ] as const) {
      const r = await get(params);
      assert.equal(r.status, 400, params);
      assert.match(String(r.body.error), message, params);
    }
  });
  test('a measurement whose records are all still buffered is listed from its first write, with no file, by SHOW and GET /api/v1/measurements', async () => {
    assert.equal((await server.writeLines('fresh v=1 1767225600\nzz_fresh v=2 1767225600', 'db=newdb&precision=s')).status, 204);
    assert.deepEqual((await json('SHOW DATABASES')).body.data.filter(([d]) => d === 'newdb'), [['newdb']]);
    assert.deepEqual((await json('SHOW TABLES FROM newdb')).body.data,
      [['newdb', 'fresh', 'newdb/fresh/', 0, 0], ['newdb', 'zz_fresh', 'newdb/zz_fresh/', 0, 0]]);
    const listed = async (): Promise<unknown[]> => ((await (await fetch(`${server.url}/api/v1/measurements?database=newdb`)).json()) as { measurements: Record<string, unknown>[] })
      .measurements.map((m) => [m.measurement, m.file_count]);
    assert.deepEqual(await listed(), [['fresh', 0], ['zz_fresh', 0]]);
    // A measurement of the same name in another database is not listed here.
    assert.ok(!(await json('SHOW TABLES')).body.data.some((r) => r[1] === 'fresh'));
    await server.flush();
    assert.deepEqual(await listed(), [['fresh', 1], ['zz_fresh', 1]]);
    assert.deepEqual((await json('SHOW TABLES FROM newdb')).body.data.map((r) => r.slice(1, 4)), [['fresh', 'newdb/fresh/', 1], ['zz_fresh', 'newdb/zz_fresh/', 1]]);
  });

  test('GET /api/v1/measurements lists the stored measurements of a database, or of all, as Arc does', async () => {
    const res = await fetch(`${server.url}/api/v1/measurements?database=qe`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { success: boolean; measurements: Record<string, unknown>[]; count: number; execution_time_ms: number };
    assert.equal(body.success, true);
    assert.equal(body.count, body.measurements.length);
    const cpu = body.measurements.find((m) => m.measurement === 'cpu')!;
    assert.deepEqual(Object.keys(cpu), ['database', 'measurement', 'file_count', 'total_size_mb', 'storage_path']);
    assert.deepEqual([cpu.database, cpu.file_count, cpu.storage_path], ['qe', 6, 'qe/cpu/']);
    assert.ok((cpu.total_size_mb as number) > 0);
    // The same numbers as SHOW TABLES.
    const shown = (await json('SHOW TABLES')).body.data.find((r) => r[1] === 'cpu')!;
    assert.deepEqual([shown[3], shown[4]], [cpu.file_count, cpu.total_size_mb]);
    const names = body.measurements.map((m) => m.measurement as string);
    assert.deepEqual(names, [...names].sort());
    const all = (await (await fetch(`${server.url}/api/v1/measurements`)).json()) as { measurements: Record<string, unknown>[] };
    assert.ok(all.measurements.some((m) => m.database === 'qe' && m.measurement === 'cpu'));
    const bad = await fetch(`${server.url}/api/v1/measurements?database=a/b`);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /invalid database name/);
  });

  // `arcctl db list/show` read these (Arc's internal/api/databases.go).
  test('GET /api/v1/databases, /api/v1/databases/:name and its measurements, as Arc answers them, buffered-only measurements included; 404 for a database with none', async () => {
    assert.equal((await server.writeLines('only_buffered v=1 1767225600', 'db=dbroutes&precision=s')).status, 204);
    const get = async (path: string): Promise<[number, Record<string, unknown>]> => {
      const res = await fetch(`${server.url}${path}`);
      return [res.status, (await res.json()) as Record<string, unknown>];
    };
    const [status, list] = await get('/api/v1/databases');
    assert.equal(status, 200);
    const databases = list.databases as { name: string; measurement_count: number }[];
    assert.equal(list.count, databases.length);
    const qeCount = ((await json('SHOW TABLES')).body.data).length;
    assert.deepEqual(databases.find((d) => d.name === 'qe'), { name: 'qe', measurement_count: qeCount });
    assert.deepEqual(databases.find((d) => d.name === 'dbroutes'), { name: 'dbroutes', measurement_count: 1 });
    assert.deepEqual(databases.map((d) => d.name), [...databases.map((d) => d.name)].sort());
    assert.deepEqual(await get('/api/v1/databases/qe'), [200, { name: 'qe', measurement_count: qeCount }]);
    const [, qe] = await get('/api/v1/databases/qe/measurements');
    assert.deepEqual([qe.database, qe.count], ['qe', qeCount]);
    assert.deepEqual((qe.measurements as Record<string, unknown>[]).find((m) => m.name === 'cpu'), { name: 'cpu', file_count: 6 });
    assert.deepEqual(await get('/api/v1/databases/dbroutes/measurements'), [200, { database: 'dbroutes', measurements: [{ name: 'only_buffered', file_count: 0 }], count: 1 }]);
    for (const path of ['/api/v1/databases/nosuch', '/api/v1/databases/nosuch/measurements']) assert.deepEqual(await get(path), [404, { error: "Database 'nosuch' not found" }], path);
    const [badStatus, bad] = await get('/api/v1/databases/a%2Fb/measurements');
    assert.equal(badStatus, 400);
    assert.match(String(bad.error), /^invalid database name: database "a\/b" contains "\/"$/);
  });
});

describe('pool', () => {
  test('a timeout interrupts the query: 504, logged as a warning without a stack', async () => {
    const started = Date.now();
    const r = await json('SELECT count(*) FROM range(100000000000) a', { 'x-strata-timeout-ms': '301' });
    assert.equal(r.status, 504, JSON.stringify(r.body));
    assert.ok(Date.now() - started < 5000);
    // A deadline the request set is an expected outcome, not a server failure.
    const lines = async (): Promise<Record<string, unknown>[]> => server.output.split('\n').filter((l) => l.includes('Query timed out (after 301 ms)'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 40 && (await lines()).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const logged = await lines();
    assert.equal(logged.length, 1, server.output.slice(-2000));
    assert.equal(logged[0].level, 40);
    assert.ok(!JSON.stringify(logged[0]).includes('"stack"'));
  });
  test('a timeout inside one long DuckDB call answers 504 at once; the connection comes back when DuckDB returns', async () => {
    // DuckDB looks for interrupts between vectors: building one 10M-element list (seconds) looks for none.
    const r = await json('SELECT len(range(10000000)) AS n', { 'x-strata-timeout-ms': '300' });
    assert.equal(r.status, 504, JSON.stringify(r.body));
    assert.match((r.body as { error: string }).error, /timed out/);
    assert.equal(await server.connectionsInUse(), 1, 'answered while DuckDB still runs the call, its connection still borrowed');
    while ((await server.connectionsInUse()) !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual((await json('SELECT 41 + 1 AS n')).body.data, [[42]]);
  });
  test('a timeout while the query is planned is a 504, not the interrupted DuckDB statement as a 500', async () => {
    // A long IN list keeps the parse (a DuckDB call made while planning) busy for some ms;
    // the deadlines sweep across it. Each text is new, so none is parsed from the cache.
    const list = Array.from({ length: 14000 }, (_, i) => i).join(',');
    const failed: string[] = [];
    for (let ms = 1; ms <= 60; ms++) {
      const res = await post('/api/v1/query', { sql: `SELECT count(*) AS n FROM range(10) WHERE range IN (${list}) -- ${ms}` }, { 'x-strata-timeout-ms': String(ms) });
      if (res.status === 200) {
        await res.text().catch(() => undefined);
        continue;
      }
      const body = await res.json() as { success: boolean; error: string };
      if (res.status !== 504 || body.success !== false || !/timed out/.test(body.error)) failed.push(`${ms} ms: ${res.status} ${JSON.stringify(body)}`);
    }
    assert.deepEqual(failed, []);
  });
  test('a timeout in the middle of a streamed result cuts the response off: JSON, CSV and Arrow readers get an error, not a shorter answer', async () => {
    const sql = 'SELECT range AS n FROM range(300000000)';
    const timeouts = async (): Promise<number> =>
      Number((await (await fetch(`${server.url}/metrics`)).text()).match(/^strata_queries_total\{outcome="timeout"\} (\d+)/m)?.[1] ?? 0);
    const timeoutsBefore = await timeouts();
    // As fetch sends them: gzip asked for, so JSON and CSV are cut off inside a compressed stream.
    const forms: [string, Record<string, string>][] = [['/api/v1/query', {}], ['/api/v1/query', { accept: 'text/csv' }], ['/api/v1/query/arrow', {}],
      ['/api/v1/query', { 'accept-encoding': 'identity' }]];
    for (const [path, headers] of forms) {
      const res = await post(path, { sql }, { 'x-strata-timeout-ms': '499', ...headers });
      assert.equal(res.status, 200, 'the status line went out with the first rows');
      assert.equal(res.headers.get('content-encoding'), path.endsWith('arrow') || headers['accept-encoding'] === 'identity' ? null : 'gzip');
      let bytes = 0;
      const read = (async () => {
        for await (const chunk of res.body!) bytes += chunk.length;
      })();
      await assert.rejects(read, `${path} ${JSON.stringify(headers)}: the body ends in an error`);
      assert.ok(bytes > 0);
    }
    assert.equal(await timeouts(), timeoutsBefore + forms.length, 'each counted as a timeout');
    // Each logged once (the deadline, and the body it ends), as a warning without a stack.
    const logged = (): Record<string, unknown>[] => server.output.split('\n').filter((l) => l.includes('Query timed out (after 499 ms) while streaming'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 40 && logged().length < forms.length; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(logged().length, forms.length, server.output.slice(-3000));
    assert.ok(logged().every((l) => l.level === 40 && !JSON.stringify(l).includes('"stack"')));
    // Nothing more: a compressed answer's zlib stream, closed by the cut, is no second failure.
    assert.deepEqual(server.output.split('\n').filter((l) => l.includes('while streaming its result') && !l.includes('Query timed out')), []);
  });
  test('HTTP/1.0 (a body that ends with its connection): a failure mid-stream resets the connection, so the client sees an error, not a shorter answer', async () => {
    const url = new URL(server.url);
    const body = JSON.stringify({ sql: "SELECT i, CASE WHEN i = 900000 THEN error('stop here') ELSE 'ok' END AS s FROM range(1000000) t(i)", format: 'csv' });
    for (const version of ['1.0', '1.1']) {
      // Half-open allowed: after an end of stream the socket can still be written to, below.
      const socket = connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true });
      socket.write(`POST /api/v1/query HTTP/${version}\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      let text = '';
      socket.setEncoding('latin1').on('data', (d: string) => (text += d));
      const ended = await new Promise<string>((resolve) => {
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        // Linux may report a reset that arrives after the data as an end of stream (its read
        // returns 0 once the connection is closed). Writing tells the two apart: after a reset
        // the connection is gone (EPIPE or ECONNRESET); after a clean close it is only half-closed.
        socket.on('end', () => socket.write('x', (err) => {
          const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
          resolve(code === 'EPIPE' || code === 'ECONNRESET' ? 'ECONNRESET' : 'end');
        }));
      });
      assert.match(text, new RegExp(`^HTTP/1.1 200`), version);
      assert.ok(text.includes('\r\n899999,ok\r\n') || text.length > 1e6, `${version}: rows were sent before the failure`);
      if (version === '1.0') assert.equal(ended, 'ECONNRESET', 'HTTP/1.0: reset, not a clean close that would end the body');
      // HTTP/1.1: the chunked body lacks its last chunk (a clean close may follow).
      else assert.ok(!text.endsWith('\r\n0\r\n\r\n'), 'HTTP/1.1: no last chunk');
      socket.destroy();
    }
  });
  test('a result of up to 256 KiB is one body with a Content-Length, a larger one is chunked, and a failure within the first 256 KiB gets its status', async () => {
    // Uncompressed (fetch asks for gzip): a compressed answer is framed by its compression (the Accept-Encoding test).
    const forms: [string, Record<string, string>][] = [['/api/v1/query', { 'accept-encoding': 'identity' }],
      ['/api/v1/query', { accept: 'text/csv', 'accept-encoding': 'identity' }], ['/api/v1/query/arrow', { 'accept-encoding': 'identity' }]];
    for (const [path, headers] of forms) {
      const what = `${path} ${JSON.stringify(headers)}`;
      const small = await post(path, { sql: 'SELECT range AS n FROM range(3000)' }, headers);
      assert.equal(small.status, 200, what);
      assert.equal(small.headers.get('transfer-encoding'), null, what);
      const smallBody = Buffer.from(await small.arrayBuffer());
      assert.equal(Number(small.headers.get('content-length')), smallBody.length, what);
      const large = await post(path, { sql: 'SELECT range AS n FROM range(200000)' }, headers);
      assert.equal(large.headers.get('transfer-encoding'), 'chunked', what);
      const largeBody = Buffer.from(await large.arrayBuffer());
      const count = path.endsWith('arrow') ? tableFromIPC(largeBody).numRows
        : headers.accept === undefined ? (JSON.parse(largeBody.toString()) as { data: unknown[][] }).data.length
          : largeBody.toString().trimEnd().split('\r\n').length - 1;
      assert.equal(count, 200000, what);
      if (!path.endsWith('arrow') && headers.accept === undefined) {
        // Encoded partly on a worker thread (STRATA_QUERY_ENCODE_WORKERS), sent in order.
        const data = (JSON.parse(largeBody.toString()) as { data: number[][] }).data;
        assert.ok(data.every(([n], i) => n === i), what);
      }
      // Rows 0–19,999 come in several chunks before the failure: well within 256 KiB in every format.
      const failing = await post(path, { sql: "SELECT CASE WHEN range < 20000 THEN range ELSE error('boom at ' || range) END AS n FROM range(30000)" }, headers);
      assert.ok(failing.status >= 400, `${what}: ${failing.status}`);
      const failure = await failing.json() as Record<string, unknown>;
      if (path.endsWith('arrow')) {
        // Arc's Arrow errors: no JSON answer fields.
        assert.deepEqual(failure, { success: false, error: 'Invalid Input Error: boom at 20000' }, what);
      } else {
        assert.deepEqual({ ...failure, execution_time_ms: 0, timestamp: '' },
          { success: false, columns: null, data: null, row_count: 0, execution_time_ms: 0, timestamp: '', error: 'Invalid Input Error: boom at 20000' }, what);
        assert.match(String(failure.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, what);
      }
      // Streaming has begun in DuckDB (one row found) but the status line is not out: a timeout is still a 504.
      const slow = await post(path, { sql: 'SELECT range AS n FROM range(100000000000) WHERE range % 1000000007 = 5' }, { 'x-strata-timeout-ms': '500', ...headers });
      assert.equal(slow.status, 504, what);
      assert.match(((await slow.json()) as { error: string }).error, /timed out/, what);
    }
  });
  test('clients gone before their query starts, or with a query pipelined behind another, leave no connection borrowed', async () => {
    const body = JSON.stringify({ sql: 'SELECT 1' });
    const port = Number(new URL(server.url).port);
    for (let i = 0; i < 300; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(`POST /api/v1/query HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
          setImmediate(() => {
            socket.destroy();
            resolve();
          });
        });
        socket.on('error', () => resolve());
      });
    }
    let borrowed = await server.connectionsInUse();
    for (let i = 0; i < 50 && borrowed > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      borrowed = await server.connectionsInUse();
    }
    assert.equal(borrowed, 0, 'every connection released');
    assert.deepEqual((await json('SELECT 1 AS one', { 'x-strata-timeout-ms': '3000' })).body.data, [[1]]);
    // Two large queries pipelined on one socket, the client gone during the first answer:
    // the second's response waits detached from the socket and never sees it close.
    const request = (sql: string): string => {
      const text = JSON.stringify({ sql });
      return `POST /api/v1/query HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
    };
    for (let round = 0; round < 2; round++) {
      const socket = await new Promise<ReturnType<typeof connect>>((resolve) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
      });
      // The second round pipelines eight: one socket listener per socket, not per request.
      const behind = Array.from({ length: round === 0 ? 1 : 7 }, (_, i) => request(`SELECT range AS m${i} FROM range(50000000)`));
      socket.write(request('SELECT range AS n FROM range(50000000)') + behind.join(''));
      await new Promise((r) => socket.once('data', r));
      await new Promise((r) => setTimeout(r, 300));
      socket.destroy();
    }
    borrowed = await server.connectionsInUse();
    for (let i = 0; i < 50 && borrowed > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      borrowed = await server.connectionsInUse();
    }
    assert.equal(borrowed, 0, 'the pipelined queries released their connections');
    assert.doesNotMatch(server.output, /MaxListenersExceededWarning/);
  });
  test('a bad priority is 400; metrics report the pool', async () => {
    assert.equal((await json('SELECT 1', { 'x-strata-priority': 'urgent' })).status, 400);
    const m = (await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { timestamp: string; pool: Record<string, unknown> };
    assert.match(m.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339 in whole seconds, as Arc stamps it');
    assert.equal(m.pool.connections_open, 2);
    assert.deepEqual(m.pool.queue_depth, { critical: 0, high: 0, normal: 0, low: 0 });
    assert.ok((m.pool.queries_total as number) > 10);
  });
  test('a disconnected client cancels its query', async () => {
    const controller = new AbortController();
    const res = fetch(server.url + '/api/v1/query', {
      method: 'POST', body: JSON.stringify({ sql: 'SELECT count(*) FROM range(100000000000) b' }),
      headers: { 'content-type': 'application/json' }, signal: controller.signal,
    }).catch(() => undefined);
    setTimeout(() => controller.abort(), 200);
    await res;
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      const m = (await (await fetch(`${server.url}/api/v1/metrics/query-pool`)).json()) as { pool: { queries_aborted_total: number } };
      ok = m.pool.queries_aborted_total >= 1;
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, 'the cancelled query was interrupted');
  });
  test('a query whose client left mid-result runs again in full on every connection (kept prepared statements)', async () => {
    const sql = 'SELECT range AS n FROM range(2000000)';
    for (let i = 0; i < 2; i++) {
      const controller = new AbortController();
      const res = await fetch(server.url + '/api/v1/query', {
        method: 'POST', body: JSON.stringify({ sql }), headers: { 'content-type': 'application/json' }, signal: controller.signal,
      });
      await res.body!.getReader().read();
      controller.abort();
    }
    for (let i = 0; i < 3; i++) {
      const r = await json(sql);
      assert.equal(r.status, 200);
      assert.equal(r.body.data.length, 2_000_000);
      assert.deepEqual(r.body.data[1_999_999], [1_999_999]);
    }
  });
});

describe('kept prepared statements', () => {
  test('current_localtimestamp() and current_localtime(), which DuckDB folds when it prepares, read the clock on every request', async () => {
    for (const sql of ['SELECT current_localtimestamp() AS t', 'SELECT current_localtime() AS t']) {
      const seen: string[] = [];
      // More requests than pooled connections, so each connection runs the text again.
      for (let i = 0; i < 6; i++) {
        const r = await server.query(sql);
        assert.equal(r.status, 200);
        seen.push(String(r.body.data[0][0]));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.equal(new Set(seen).size, seen.length, `${sql}: ${seen.join(', ')}`);
    }
  });
});

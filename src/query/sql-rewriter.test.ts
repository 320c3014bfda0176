/**
 * Tests for the SQL rewriter against real DuckDB: each case is analysed, rewritten over
 * real Parquet files and executed in an instance that has no tables at all (so a
 * reference the rewrite missed fails instead of silently reading something), and,
 * unless the case opts out, its rows are compared with the original SQL run on an
 * "oracle" instance holding the same data as real tables, so name resolution (CTEs,
 * scoping, aliases) matches DuckDB's own binder.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { QueryRejectedError } from '../errors.js';
import { analyzeSql, KEYWORDS_SQL, readParquetSource, UNICODE_SPACES_MOVED, type MeasurementRef, type SqlParser } from './sql-rewriter.js';

let dir: string;
let sandboxDb: DuckDBInstance;
let sandbox: DuckDBConnection;
let oracleDb: DuckDBInstance;
let oracle: DuckDBConnection;
let parser: SqlParser;
/** `database/measurement` -> Parquet files. */
const files = new Map<string, string[]>();

/** Each file: database, measurement, file name, and the SELECT that produces its rows. */
const DATA: readonly [string, string, string, string][] = [
  ['default', 'cpu', 'a.parquet', `SELECT * FROM (VALUES
     (TIMESTAMP '2024-01-01 00:00:00', 'a', 1.0::DOUBLE, 'us'),
     (TIMESTAMP '2024-01-01 00:01:00', 'b', 2.0::DOUBLE, 'eu')) t(time, host, usage, region)`],
  // A later file with an extra column: read together only thanks to union_by_name.
  ['default', 'cpu', 'b.parquet', `SELECT TIMESTAMP '2024-01-01 00:02:00' AS time, 'a' AS host, 3.0::DOUBLE AS usage, 'us' AS region, 7 AS core`],
  // A quote in the file name exercises readParquetSource's escaping.
  ['default', 'mem', "it's.parquet", `SELECT * FROM (VALUES
     (TIMESTAMP '2024-01-01 00:00:30', 'a', 10),
     (TIMESTAMP '2024-01-01 00:01:30', 'b', 20)) t(time, host, used)`],
  ['db2', 'cpu', 'x.parquet', `SELECT * FROM (VALUES
     (TIMESTAMP '2024-01-01 00:00:00', 'a', 50.0::DOUBLE),
     (TIMESTAMP '2024-01-01 00:05:00', 'x', 60.0::DOUBLE)) t(time, host, usage)`],
  ['db3', 'cpu', 'y.parquet', `SELECT * FROM (VALUES
     (TIMESTAMP '2024-01-01 00:00:00', 'a', 7),
     (TIMESTAMP '2024-01-01 00:09:00', 'z', 8)) t(time, host, v)`],
  ['default', 'my-measurement', 'x.parquet', `SELECT TIMESTAMP '2024-01-01 00:00:00' AS time, 'm' AS host, 1 AS v`],
  ['default', 'CPU', 'x.parquet', `SELECT TIMESTAMP '2024-01-01 00:00:00' AS time, 'upper' AS host`],
  // Printed back quoted (a keyword) and bare (capitals alone need no quotes).
  ['default', 'system', 'x.parquet', `SELECT TIMESTAMP '2024-01-01 00:00:00' AS time, 3 AS v`],
  ['db2', 'Mixed', 'x.parquet', `SELECT TIMESTAMP '2024-01-01 00:00:00' AS time, 4 AS v`],
];

function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

async function serialize(conn: DuckDBConnection, sql: string): Promise<string> {
  const result = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
  return String(result.getRows()[0][0]);
}

function sourceFor(ref: MeasurementRef): string {
  const paths = files.get(`${ref.database}/${ref.measurement}`);
  assert.ok(paths, `no files for ${ref.database}.${ref.measurement}`);
  return readParquetSource(paths);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-sql-rewriter-'));
  sandboxDb = await DuckDBInstance.create(':memory:');
  sandbox = await sandboxDb.connect();
  oracleDb = await DuckDBInstance.create(':memory:');
  oracle = await oracleDb.connect();
  parser = { serialize: (sql) => serialize(sandbox, sql) };
  for (const [database, measurement, name, select] of DATA) {
    await mkdir(join(dir, database, measurement), { recursive: true });
    const path = join(dir, database, measurement, name);
    await sandbox.run(`COPY (${select}) TO ${literal(path)} (FORMAT parquet)`);
    const key = `${database}/${measurement}`;
    files.set(key, [...(files.get(key) ?? []), path]);
  }
  // The oracle cannot hold both `cpu` and `CPU` (DuckDB names are case-insensitive).
  await oracle.run('CREATE SCHEMA db2');
  await oracle.run('CREATE SCHEMA db3');
  for (const [key, paths] of files) {
    if (key === 'default/CPU') continue;
    const [database, measurement] = key.split('/');
    const table = `${database === 'default' ? '' : `"${database}".`}"${measurement}"`;
    await oracle.run(`CREATE TABLE ${table} AS FROM ${readParquetSource(paths)}`);
  }
});

after(async () => {
  sandbox.closeSync();
  sandboxDb.closeSync();
  oracle.closeSync();
  oracleDb.closeSync();
  await rm(dir, { recursive: true, force: true });
});

interface Case {
  readonly name: string;
  readonly sql: string;
  /** Expected refs as `database.measurement`, in order of first appearance. */
  readonly refs: readonly string[];
  readonly tableFunctions?: readonly string[];
  /** Rows of the rewritten SQL (`getRowsJson` form); omitted when the SQL must not run. */
  readonly rows?: readonly (readonly unknown[])[];
  /** False when the oracle cannot express the case (case-sensitive names, another default database). */
  readonly oracle?: false;
  readonly defaultDatabase?: string;
}

const T0 = '2024-01-01 00:00:00';

const CASES: readonly Case[] = [
  { name: 'plain select', sql: 'SELECT host, usage FROM cpu ORDER BY time', refs: ['default.cpu'], rows: [['a', 1], ['b', 2], ['a', 3]] },
  { name: 'files with different columns are read by name', sql: 'SELECT host, core FROM cpu ORDER BY time', refs: ['default.cpu'], rows: [['a', null], ['b', null], ['a', 7]] },
  { name: 'table alias', sql: 'SELECT c.host FROM cpu c WHERE c.usage > 1 ORDER BY c.time', refs: ['default.cpu'], rows: [['b'], ['a']] },
  { name: 'alias with column aliases', sql: 'SELECT t, h FROM cpu AS c(t, h) ORDER BY t LIMIT 1', refs: ['default.cpu'], rows: [[T0, 'a']] },
  { name: 'unaliased measurement qualifies columns', sql: 'SELECT cpu.host FROM cpu WHERE cpu.usage = 2', refs: ['default.cpu'], rows: [['b']] },
  { name: 'database-qualified measurement binds as the measurement name', sql: 'SELECT cpu.host, cpu.usage FROM db2.cpu ORDER BY cpu.time', refs: ['db2.cpu'], rows: [['a', 50], ['x', 60]] },
  { name: 'quoted database and measurement', sql: 'SELECT host FROM "db2"."cpu" ORDER BY host', refs: ['db2.cpu'], rows: [['a'], ['x']] },
  {
    name: 'columns qualified by database and measurement (db.m.col), however written',
    sql: 'SELECT db2.cpu.host, "db2" . /* c */ cpu.usage FROM db2.cpu WHERE DB2.CPU.usage > 55 ORDER BY db2.cpu.time',
    refs: ['db2.cpu'], rows: [['x', 60]],
  },
  {
    name: 'db.m.col beside the same measurement of the request database, aliased',
    sql: 'SELECT db2.cpu.host, c.usage FROM db2.cpu JOIN cpu c USING (host) ORDER BY c.time',
    refs: ['db2.cpu', 'default.cpu'], rows: [['a', 1], ['a', 3]],
  },
  {
    // Both would be named `cpu`: each gets a name of its own, which its columns' db.cpu prefix becomes.
    name: 'a measurement of two databases joined, columns named with their database',
    sql: 'SELECT db2.cpu.host, db2.cpu.usage, DB3.cpu.v FROM db2.cpu JOIN db3.cpu ON db2.cpu.host = db3 . cpu.host ORDER BY db2 /* c */ . cpu.time',
    refs: ['db2.cpu', 'db3.cpu'], rows: [['a', 50, 7]],
  },
  {
    // DuckDB expands CASE x WHEN … into one copy of x per WHEN, each at the same position.
    name: 'a measurement of two databases joined, a db.m.col compared by CASE … WHEN … WHEN',
    sql: "SELECT CASE db2.cpu.host WHEN 'a' THEN 1 WHEN 'x' THEN 2 END AS k FROM db2.cpu JOIN db3.cpu ON db2.cpu.host = db3.cpu.host",
    refs: ['db2.cpu', 'db3.cpu'], rows: [[1]],
  },
  {
    name: 'a database-qualified measurement beside a CTE of its name',
    sql: 'WITH cpu AS (SELECT 1 AS one) SELECT db2.cpu.host, cpu.one FROM db2.cpu, cpu ORDER BY db2.cpu.host',
    refs: ['db2.cpu'], rows: [['a', 1], ['x', 1]],
  },
  { name: 'quoted measurement with a dash', sql: 'SELECT host, v FROM "my-measurement"', refs: ['default.my-measurement'], rows: [['m', 1]] },
  { name: 'measurement names are case-sensitive', sql: 'SELECT host FROM CPU', refs: ['default.CPU'], rows: [['upper']], oracle: false },
  { name: 'unqualified names use the request database', sql: 'SELECT count(*) AS n FROM cpu', defaultDatabase: 'db2', refs: ['db2.cpu'], rows: [['2']], oracle: false },
  // DuckDB's lexer ends a `--` comment at a carriage return too.
  { name: 'a comment ended by a carriage return between database and measurement', sql: 'SELECT count(*) AS n FROM db2 -- x\r.cpu', refs: ['db2.cpu'], rows: [['2']], oracle: false },
  { name: 'join of cpu and db2.cpu', sql: 'SELECT a.host, a.usage, b.usage FROM cpu a JOIN db2.cpu b USING (host) ORDER BY a.time', refs: ['default.cpu', 'db2.cpu'], rows: [['a', 1, 50], ['a', 3, 50]] },
  { name: 'same measurement twice', sql: "SELECT a.usage, b.usage FROM cpu a JOIN cpu b ON b.time > a.time WHERE a.host = 'a' ORDER BY 1, 2", refs: ['default.cpu'], rows: [[1, 2], [1, 3]] },
  { name: 'string literal containing FROM', sql: "SELECT 'FROM cpu' AS s", refs: [], rows: [['FROM cpu']] },
  { name: 'comments containing FROM', sql: 'SELECT host -- FROM mem\nFROM cpu /* FROM mem */ WHERE usage > 2', refs: ['default.cpu'], rows: [['a']] },
  // DuckDB reports positions in the text with its Unicode spaces turned into ASCII ones (U+3000: 3 bytes to 1).
  { name: 'Unicode spaces around the reference', sql: 'SELECT\u3000host FROM\u3000\u3000cpu\u00a0WHERE usage\u2003=\u20031', refs: ['default.cpu'], rows: [['a']] },
  {
    // Untransformed, DuckDB's position of `mem` (16 bytes back) would fall on the `cpu` in the comment.
    name: 'a name in a comment where the position of the reference would fall before Unicode spaces are turned',
    sql: `SELECT count(*) AS n FROM${'\u3000'.repeat(8)} /*cpu*/${' '.repeat(11)}mem`, refs: ['default.mem'], rows: [['2']],
  },
  { name: 'non-ASCII text before the reference', sql: "SELECT 'é😀' AS s, host FROM cpu WHERE usage = 1", refs: ['default.cpu'], rows: [['é😀', 'a']] },
  { name: 'select without tables', sql: 'SELECT 1 AS one', refs: [], rows: [[1]] },
  { name: 'CTE shadows the measurement its body reads', sql: 'WITH cpu AS (SELECT host, usage FROM cpu WHERE usage > 1) SELECT host FROM cpu ORDER BY usage', refs: ['default.cpu'], rows: [['b'], ['a']] },
  {
    name: 'CTE body sees earlier CTEs only',
    sql: "WITH x AS (SELECT host FROM mem), mem AS (SELECT 'cte' AS host) SELECT host FROM x UNION ALL SELECT host FROM mem ORDER BY host",
    refs: ['default.mem'], rows: [['a'], ['b'], ['cte']],
  },
  { name: 'CTE names match case-insensitively', sql: "WITH CPU AS (SELECT 'cte' AS host) SELECT host FROM cpu", refs: [], rows: [['cte']] },
  {
    name: 'CTE in a subquery is local to it',
    sql: 'SELECT (SELECT count(*) FROM (WITH mem AS (SELECT 1 AS x) SELECT * FROM mem)) AS local, (SELECT count(*) FROM mem) AS measurement',
    refs: ['default.mem'], rows: [['1', '2']],
  },
  {
    name: 'nested WITH sees the outer CTE',
    sql: "WITH h AS (SELECT DISTINCT host FROM cpu) SELECT * FROM (WITH g AS (SELECT host FROM h WHERE host <> 'b') SELECT host FROM g) ORDER BY host",
    refs: ['default.cpu'], rows: [['a']],
  },
  { name: 'schema-qualified name is never a CTE', sql: "WITH cpu AS (SELECT 'cte' AS host) SELECT host FROM db2.cpu ORDER BY host", refs: ['db2.cpu'], rows: [['a'], ['x']] },
  {
    name: 'recursive CTE reading a measurement',
    sql: 'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < (SELECT count(*) FROM cpu)) SELECT max(n) AS n FROM t',
    refs: ['default.cpu'], rows: [[3]],
  },
  {
    name: 'recursive CTE named like the measurement it seeds from',
    sql: 'WITH RECURSIVE mem AS (SELECT host, used FROM mem UNION ALL SELECT host, used + 100 FROM mem WHERE used < 100) SELECT host, used FROM mem ORDER BY used',
    refs: ['default.mem'], rows: [['a', 10], ['b', 20], ['a', 110], ['b', 120]],
  },
  {
    name: 'subqueries in SELECT, IN and EXISTS',
    sql: "SELECT host, (SELECT max(used) FROM mem) AS mx FROM cpu WHERE host IN (SELECT host FROM mem WHERE used > 15) AND EXISTS (SELECT 1 FROM db2.cpu WHERE cpu.host = 'x')",
    refs: ['default.mem', 'default.cpu', 'db2.cpu'], rows: [['b', 20]],
  },
  {
    name: 'LEFT JOIN ON',
    sql: 'SELECT c.host, m.used FROM cpu c LEFT JOIN mem m ON m.host = c.host AND m.used > 15 ORDER BY c.time',
    refs: ['default.cpu', 'default.mem'], rows: [['a', null], ['b', 20], ['a', null]],
  },
  {
    name: 'ASOF JOIN',
    sql: 'SELECT c.time, m.used FROM cpu c ASOF JOIN mem m ON c.host = m.host AND c.time >= m.time ORDER BY c.time',
    refs: ['default.cpu', 'default.mem'], rows: [['2024-01-01 00:02:00', 10]],
  },
  { name: 'POSITIONAL JOIN', sql: 'SELECT cpu.host, mem.used FROM cpu POSITIONAL JOIN mem', refs: ['default.cpu', 'default.mem'], rows: [['a', 10], ['b', 20], ['a', null]] },
  {
    name: 'CROSS JOIN LATERAL',
    sql: 'SELECT c.host, l.used FROM cpu c CROSS JOIN LATERAL (SELECT used FROM mem m WHERE m.host = c.host) l ORDER BY c.time',
    refs: ['default.cpu', 'default.mem'], rows: [['a', 10], ['b', 20], ['a', 10]],
  },
  {
    name: 'SEMI and ANTI joins with USING',
    sql: 'SELECT host FROM db2.cpu SEMI JOIN mem USING (host) UNION ALL SELECT host FROM db2.cpu ANTI JOIN mem USING (host) ORDER BY host',
    refs: ['db2.cpu', 'default.mem'], rows: [['a'], ['x']],
  },
  {
    name: 'UNION, INTERSECT and EXCEPT',
    sql: "SELECT host FROM cpu INTERSECT SELECT host FROM db2.cpu UNION SELECT host FROM mem EXCEPT SELECT 'b' ORDER BY host",
    refs: ['default.cpu', 'db2.cpu', 'default.mem'], rows: [['a']],
  },
  {
    name: 'set operation inside a CTE',
    sql: 'WITH hosts AS (SELECT host FROM cpu UNION SELECT host FROM mem) SELECT count(*) AS n FROM hosts',
    refs: ['default.cpu', 'default.mem'], rows: [['2']],
  },
  {
    name: 'window function and QUALIFY',
    sql: 'SELECT host, usage FROM cpu QUALIFY row_number() OVER (PARTITION BY host ORDER BY time DESC) = 1 ORDER BY host',
    refs: ['default.cpu'], rows: [['a', 3], ['b', 2]],
  },
  { name: 'TABLE statement', sql: 'TABLE db2.cpu', refs: ['db2.cpu'], rows: [[T0, 'a', 50], ['2024-01-01 00:05:00', 'x', 60]] },
  {
    name: 'TABLE in a set operation and a CTE, any case, any whitespace',
    sql: 'WITH t AS (table \t mem) SELECT (SELECT count(*) FROM t) AS m, count(*) AS c FROM (TaBlE db2.cpu UNION ALL TABLE\n  db2.cpu)',
    refs: ['default.mem', 'db2.cpu'], rows: [['2', '4']],
  },
  {
    name: 'the word table in a comment just before the name is not the TABLE keyword',
    sql: "SELECT host FROM -- the raw table\ncpu WHERE usage = 1 UNION ALL SELECT host FROM /* table /* x */ */ db2.cpu ORDER BY host",
    refs: ['default.cpu', 'db2.cpu'], rows: [['a'], ['a'], ['x']],
  },
  {
    name: 'a string after a commented table word stays a string (no table function smuggled in)',
    sql: "SELECT * FROM -- table\ncpu WHERE host = '\nglob(''/*'') --'",
    refs: ['default.cpu'], rows: [],
  },
  { name: 'FROM-first syntax', sql: 'FROM db2.cpu SELECT host WHERE usage > 55', refs: ['db2.cpu'], rows: [['x']] },
  { name: 'TABLESAMPLE after an unaliased name', sql: 'SELECT count(*) AS n FROM cpu TABLESAMPLE 100%', refs: ['default.cpu'], rows: [['3']] },
  {
    name: 'PIVOT clause over a measurement',
    sql: "SELECT * FROM (FROM mem PIVOT (sum(used) FOR host IN ('a', 'b'))) ORDER BY time",
    refs: ['default.mem'], rows: [['2024-01-01 00:00:30', '10', null], ['2024-01-01 00:01:30', null, '20']],
  },
  {
    name: 'UNPIVOT statement over a measurement',
    sql: 'UNPIVOT db2.cpu ON usage INTO NAME k VALUE v',
    refs: ['db2.cpu'], rows: [[T0, 'a', 'usage', 50], ['2024-01-01 00:05:00', 'x', 'usage', 60]],
  },
  {
    name: 'allowed table function is reported and runs',
    sql: 'SELECT r.range AS i, cpu.host FROM range(2) r, cpu WHERE cpu.usage = 1 ORDER BY i',
    refs: ['default.cpu'], tableFunctions: ['range'], rows: [['0', 'a'], ['1', 'a']],
  },
  {
    name: 'file-reading table functions are reported',
    sql: "SELECT * FROM read_csv('/etc/passwd') UNION ALL SELECT * FROM glob('/*') UNION ALL SELECT * FROM cpu, Read_Parquet('x.parquet')",
    refs: ['default.cpu'], tableFunctions: ['glob', 'read_csv', 'read_parquet'],
  },
  {
    name: 'table function in a WHERE subquery is reported',
    sql: "SELECT host FROM cpu WHERE host IN (SELECT * FROM read_text('/etc/hosts'))",
    refs: ['default.cpu'], tableFunctions: ['read_text'],
  },
];

for (const c of CASES) {
  test(c.name, async () => {
    const analyzed = await analyzeSql(c.sql, c.defaultDatabase ?? 'default', parser);
    assert.deepEqual(analyzed.refs.map((r) => `${r.database}.${r.measurement}`), c.refs);
    assert.deepEqual([...analyzed.tableFunctions].sort(), c.tableFunctions ?? []);
    if (c.rows === undefined) return;
    const rewritten = analyzed.render((o) => sourceFor(o.ref));
    const rows = (await sandbox.runAndReadAll(rewritten)).getRowsJson();
    assert.deepEqual(rows, c.rows, `rewritten SQL: ${rewritten}`);
    if (c.oracle !== false) assert.deepEqual(rows, (await oracle.runAndReadAll(c.sql)).getRowsJson(), 'differs from DuckDB on real tables');
  });
}

const REJECTED: readonly { name: string; sql: string; message: RegExp }[] = [
  { name: 'DROP TABLE is rejected', sql: 'DROP TABLE cpu', message: /^only SELECT statements are allowed: send one SELECT per request \(DDL, DML, COPY, ATTACH, SET, PRAGMA, EXPLAIN and CALL are refused\)$/ },
  // DuckDB advises a SET the sandbox refuses.
  { name: 'an expression nested too deep', sql: `SELECT ${Array.from({ length: 1100 }, () => '1').join(' + ')}`, message: /^invalid SQL: Max expression depth limit of 1000 exceeded\.$/ },
  { name: 'COPY is rejected', sql: "COPY cpu TO '/tmp/out.csv'", message: /^only SELECT statements are allowed/ },
  { name: 'ATTACH is rejected', sql: "ATTACH '/tmp/other.duckdb' AS other", message: /^only SELECT statements are allowed/ },
  { name: 'EXPLAIN is rejected', sql: 'EXPLAIN SELECT * FROM cpu', message: /^only SELECT statements are allowed/ },
  { name: 'syntax DuckDB parses but does not support is named so', sql: 'SELECT 1 WHERE 2 BETWEEN SYMMETRIC 3 AND 1', message: /^not supported by DuckDB: Expression type T_List/ },
  { name: 'a statement refused for itself gets no PIVOT hint when its PIVOT has an IN list', sql: "CREATE TABLE t AS PIVOT cpu ON host IN ('a') USING sum(usage)",
    message: /^only SELECT statements are allowed: [^;]*$/ },
  { name: 'PIVOT without an IN list is rejected, saying what to write instead', sql: 'SELECT * FROM (PIVOT cpu ON host USING sum(usage))',
    message: /^only SELECT statements are allowed: .*; a PIVOT needs its IN list of values written out here \(PIVOT cpu ON host IN \('a', 'b'\) USING …\)$/ },
  { name: 'SELECT followed by DROP is rejected', sql: 'SELECT 1; DROP TABLE cpu', message: /^only SELECT statements are allowed/ },
  { name: 'two SELECT statements are rejected', sql: 'SELECT 1; SELECT 2', message: /^expected one SELECT statement, got 2$/ },
  { name: 'empty SQL is rejected', sql: '  -- nothing here\n', message: /^empty query/ },
  { name: 'syntax error carries DuckDB message and position', sql: 'SELEC host FROM cpu', message: /^invalid SQL: syntax error at or near "SELEC" \(at character 0\)$/ },
  { name: 'syntax error position counts characters, not bytes', sql: "SELECT 'é😀' FROM cpu WHERE )", message: /^invalid SQL: syntax error at or near "\)" \(at character 27\)$/ },
  // Without a measurement or query they list DuckDB's tables, the server's own included (SHOW TABLES is answered before parsing: show.ts).
  { name: 'DESCRIBE alone is rejected', sql: 'DESCRIBE', message: /^DESCRIBE, SHOW and SUMMARIZE take a measurement or a query/ },
  { name: 'SHOW TABLES is rejected here', sql: 'SHOW TABLES', message: /^DESCRIBE, SHOW and SUMMARIZE take a measurement or a query/ },
  { name: 'SHOW ALL TABLES in a subquery is rejected', sql: 'SELECT * FROM (SHOW ALL TABLES)', message: /^DESCRIBE, SHOW and SUMMARIZE take a measurement or a query/ },
  { name: 'file path in FROM is rejected', sql: "SELECT * FROM '/etc/passwd'", message: /^FROM '\/etc\/passwd' reads a file by path/ },
  { name: 'dollar-quoted file path in FROM is rejected', sql: 'SELECT * FROM cpu, $$data.csv$$', message: /^FROM 'data.csv' reads a file by path/ },
  { name: 'three-part name is rejected', sql: 'SELECT * FROM memory.main.cpu', message: /three-part names are not supported/ },
  { name: 'time travel is rejected', sql: 'SELECT * FROM cpu AT (VERSION => 1)', message: /^AT \(\.\.\.\) time travel is not supported on measurement "cpu"$/ },
  { name: 'database name escaping the data directory is rejected', sql: 'SELECT * FROM "../etc".passwd', message: /^database "\.\.\/etc" contains "\/"$/ },
  { name: 'measurement named .. is rejected', sql: 'SELECT * FROM ".."', message: /^measurement "\.\." is not allowed$/ },
  { name: 'current_setting is rejected, schema-qualified or nested', sql: "SELECT host FROM cpu WHERE host <> main.CURRENT_SETTING('temp_directory')", message: /^current_setting\(\) is not allowed/ },
  { name: 'current_query is rejected, quoted, qualified or in a lambda', sql: 'SELECT list_transform([1], x -> system.main."current_query"()) FROM cpu', message: /^current_query\(\) is not allowed/ },
  { name: 'json_serialize_plan is rejected (it binds SQL given as a string)', sql: "SELECT host FROM cpu WHERE json_serialize_plan('SELECT * FROM read_csv(''x'')') IS NULL", message: /^json_serialize_plan\(\) is not allowed/ },
];

for (const c of REJECTED) {
  test(c.name, async () => {
    await assert.rejects(analyzeSql(c.sql, 'default', parser), (err: unknown) => {
      assert.ok(err instanceof QueryRejectedError, `expected QueryRejectedError, got ${String(err)}`);
      assert.equal(err.statusCode, 400);
      assert.match(err.message, c.message);
      return true;
    });
  });
}

test('db.m.col where another relation is named like the measurement binds to the measurement, as in DuckDB', async () => {
  // `cpu` inside the subquery is the aliased read: `db2.cpu.host` can only mean the outer
  // one, and without `db2.` it would mean the inner one (a per-host max would become a global one).
  for (const sql of [
    'SELECT host, usage FROM db2.cpu WHERE usage >= (SELECT max(usage) FROM db2.cpu AS cpu WHERE cpu.host = db2.cpu.host) ORDER BY host',
    'WITH cpu AS (SELECT 1 AS host) SELECT db2.cpu.host FROM db2.cpu, cpu AS c ORDER BY 1',
  ]) {
    const analyzed = await analyzeSql(sql, 'default', parser);
    const rendered = analyzed.render((o) => sourceFor(o.ref));
    assert.ok(rendered.includes('"db2.cpu".host'), rendered);
    assert.deepEqual((await sandbox.runAndReadAll(rendered)).getRowsJson(), (await oracle.runAndReadAll(sql)).getRowsJson(), sql);
  }
});

test('render refuses a rewrite in which DuckDB would turn Unicode spaces it left in the user\'s text', async () => {
  // After `/* " */` DuckDB's pre-pass takes the text for a quoted name and leaves the
  // no-break spaces; a source holding `"k--"` ends that name and starts a comment to the
  // newline, after which the pre-pass turns them.
  const source = 'SELECT * REPLACE (CAST("k--" AS VARCHAR) AS "k--") FROM (SELECT 1 AS "k--")';
  const sql = 'SELECT /* " */ * FROM cpu\nUNION ALL BY NAME SELECT 1 AS a\u00a0FROM\u00a0mem';
  const analyzed = await analyzeSql(sql, 'default', parser);
  assert.deepEqual(analyzed.refs, [{ database: 'default', measurement: 'cpu' }]);
  assert.throws(() => analyzed.render(() => source), (err: unknown) => err instanceof QueryRejectedError && err.message === UNICODE_SPACES_MOVED);
  // The same with ASCII spaces, whose reference to mem DuckDB reports: rewritten, and run.
  const ascii = await analyzeSql(sql.replaceAll('\u00a0', ' '), 'default', parser);
  assert.equal(ascii.refs.length, 2);
  assert.doesNotThrow(() => ascii.render((o) => sourceFor(o.ref)));
});

test('DESCRIBE, SHOW and SUMMARIZE of a measurement describe SELECT * FROM its source (they take no subquery for a name); of a query, its references are rewritten in place', async () => {
  const rendered = async (sql: string): Promise<string> =>
    (await analyzeSql(sql, 'default', parser)).render((o) => `src('${o.ref.database}.${o.ref.measurement}')`).replace(/strata_source_[0-9a-f]{16}_/g, 'MARK_');
  assert.equal(await rendered('DESCRIBE cpu'), `DESCRIBE SELECT * FROM (SELECT * FROM src('default.cpu') AS MARK_0) AS "cpu"`);
  assert.equal(await rendered('show db2 . "cpu"'), `show SELECT * FROM (SELECT * FROM src('db2.cpu') AS MARK_0) AS "cpu"`);
  assert.equal(await rendered('SELECT * FROM (SUMMARIZE cpu) s'), `SELECT * FROM (SUMMARIZE SELECT * FROM (SELECT * FROM src('default.cpu') AS MARK_0) AS "cpu") s`);
  assert.equal(await rendered('DESCRIBE TABLE cpu'), `DESCRIBE SELECT * FROM (SELECT * FROM src('default.cpu') AS MARK_0) AS "cpu"`);
  assert.equal(await rendered('SUMMARIZE SELECT * FROM cpu WHERE usage > 1'), `SUMMARIZE SELECT * FROM (SELECT * FROM src('default.cpu') AS MARK_0) AS "cpu" WHERE usage > 1`);
  // Each renders to SQL DuckDB runs.
  for (const sql of ['DESCRIBE cpu', 'show db2 . "cpu"', 'SELECT * FROM (SUMMARIZE cpu) s', 'DESCRIBE TABLE cpu', 'SUMMARIZE SELECT * FROM cpu WHERE usage > 1']) {
    const analyzed = await analyzeSql(sql, 'default', parser);
    const described = (await sandbox.runAndReadAll(analyzed.render((o) => sourceFor(o.ref)))).getRowObjects();
    assert.ok(described.some((row) => row.column_name === 'time'), sql);
  }
});

test('occurrences expose each reference node by path and alias', async () => {
  const analyzed = await analyzeSql('SELECT * FROM cpu c WHERE EXISTS (SELECT 1 FROM db2.cpu)', 'default', parser);
  assert.deepEqual(analyzed.occurrences.map((o) => o.alias), ['c', 'cpu']);
  for (const o of analyzed.occurrences) {
    const node = o.path.reduce<unknown>((n, key) => (n as Record<string | number, unknown>)[key], analyzed.statement);
    assert.equal(node, o.node);
    assert.equal(o.node.table_name, o.ref.measurement);
  }
  assert.deepEqual(analyzed.occurrences[0].path, ['from_table']);
});

test('render asks for each occurrence in text order and keeps the rest of the text', async () => {
  const sql = 'SELECT 1 FROM cpu a, cpu /* note */ , db2 . cpu;';
  const analyzed = await analyzeSql(sql, 'default', parser);
  const asked: string[] = [];
  const rendered = analyzed.render((o) => {
    asked.push(`${o.ref.database}.${o.ref.measurement} as ${o.alias}`);
    return `src_${asked.length}()`;
  });
  assert.deepEqual(asked, ['default.cpu as a', 'default.cpu as cpu', 'db2.cpu as cpu']);
  assert.equal(rendered.replace(/strata_source_[0-9a-f]{16}_/g, 'MARK_'),
    'SELECT 1 FROM (SELECT * FROM src_1() AS MARK_0) a, (SELECT * FROM src_2() AS MARK_1) AS "cpu" /* note */ , '
    + '(SELECT * FROM src_3() AS MARK_2) AS "cpu";');
});

test('restoreReferences gives subquery columns the names DuckDB gives the user\'s SQL over real tables, without file paths', async () => {
  const keywords = new Set((await sandbox.runAndReadAll(KEYWORDS_SQL)).getRows().map(([k]) => String(k)));
  for (const sql of [
    'SELECT (SELECT max(usage) FROM cpu)',
    'SELECT EXISTS (SELECT 1 FROM db2.cpu c WHERE c.usage > 55), 1 IN (SELECT used FROM mem) AS named, (SELECT count(*) FROM "my-measurement")',
    'SELECT (SELECT count(*) FROM cpu JOIN db2.cpu AS "Other" USING (host) WHERE host <> \'(\'), (SELECT (SELECT max(used) FROM mem) FROM cpu LIMIT 1)',
    'SELECT (SELECT max(v) FROM system), (SELECT max(v) FROM db2."Mixed"), (SELECT max(v) FROM "system" AS Time)',
    // Only looks like a printed source: left as written.
    'SELECT (SELECT max(usage) FROM cpu), 1 AS "(SELECT * FROM x AS strata_source_0) AS y", 2 AS "(SELECT * FROM x AS strata_source_0) AS cpu"',
  ]) {
    const analyzed = await analyzeSql(sql, 'default', parser);
    const names = (await sandbox.runAndReadAll(analyzed.render((o) => sourceFor(o.ref)))).columnNames();
    assert.ok(names.some((n) => n.includes(dir)), `the rewrite shows in DuckDB's own names: ${names.join(' | ')}`);
    assert.deepEqual(names.map((n) => analyzed.restoreReferences(n, keywords)), (await oracle.runAndReadAll(sql)).columnNames(), sql);
  }
});

test('functions lists the functions and clock keywords called; unseededSample a SAMPLE without a seed', async () => {
  const analyzed = await analyzeSql(
    'SELECT now(), CURRENT_DATE, c.current_time, abs(v) FROM cpu c WHERE host IN (SELECT lower(h) FROM db2.cpu) USING SAMPLE 10%', 'default', parser);
  assert.deepEqual([...analyzed.functions].sort(), ['abs', 'current_date', 'lower', 'now']);
  assert.equal(analyzed.unseededSample, true);
  for (const sql of ['SELECT * FROM cpu USING SAMPLE 10% (bernoulli, 7)', 'SELECT * FROM cpu TABLESAMPLE reservoir(5 ROWS) REPEATABLE (3)', 'SELECT * FROM cpu']) {
    assert.equal((await analyzeSql(sql, 'default', parser)).unseededSample, false, sql);
  }
  assert.equal((await analyzeSql('SELECT * FROM (SELECT * FROM cpu TABLESAMPLE 5 ROWS)', 'default', parser)).unseededSample, true);
});

test('readParquetSource quotes paths and reads by column name', () => {
  assert.equal(
    readParquetSource(['/d/a.parquet', "/d/it's.parquet"]),
    "read_parquet(['/d/a.parquet', '/d/it''s.parquet'], union_by_name = true, hive_partitioning = false)",
  );
});

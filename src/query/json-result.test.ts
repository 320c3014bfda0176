import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ChunkBudget } from './chunk-budget.js';
import { isValid, readColumn, type Column } from './chunk-columns.js';
import { cellText, csvField, jsonRowsBytes, numberText, rfc3339FromMicros, rfc3339FromNanos, rowsBytes } from './json-result.js';

function isNull(col: Column, r: number): boolean {
  return col.kind === 'other' ? col.texts[r] === null : !isValid(col.valid, r);
}

test('numberText matches String for short decimals, long digits, integers, signs and limits, but keeps the sign of -0', () => {
  const values = [0, -0, 1, -1, 0.1, 0.5, 12.3457, -12.3457, 0.000001, 0.0000015, 1e-7, 0.1 + 0.2, 123456789.123456,
    999999999.999999, 1e9, 1e9 + 0.5, 2 ** -20, 12.3456 + 0.0001, 1e21, Number.MIN_VALUE, Number.MAX_VALUE];
  for (let i = 0; i < 100_000; i++) values.push(i / 1000, -i / 7, i * 1e-6, Math.round(i * 7919.123) / 1e4 + 0.0001);
  // Doubles of every exponent, most needing 15–17 digits or an exponent form.
  const bits = new Uint32Array(200_000);
  for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(Math.random() * 2 ** 32);
  values.push(...new Float64Array(bits.buffer).filter(Number.isFinite));
  for (const v of values) assert.equal(numberText(v), Object.is(v, -0) ? '-0' : String(v), `${v}`);
});

test('rfc3339FromMicros: fraction trimmed, before 1970, outside ±2^53 µs, infinities', () => {
  assert.equal(rfc3339FromMicros(0n), '1970-01-01T00:00:00Z');
  assert.equal(rfc3339FromMicros(10_500_000n), '1970-01-01T00:00:10.5Z');
  assert.equal(rfc3339FromMicros(-1n), '1969-12-31T23:59:59.999999Z');
  assert.equal(rfc3339FromMicros(-86_400_000_001n), '1969-12-30T23:59:59.999999Z');
  assert.equal(rfc3339FromMicros(1_767_225_723_000_120n), '2026-01-01T00:02:03.00012Z');
  assert.equal(rfc3339FromMicros(-62_135_596_800_000_000n), '0001-01-01T00:00:00Z');
  assert.equal(rfc3339FromMicros(253_402_300_800_000_001n), '+010000-01-01T00:00:00.000001Z');
  assert.equal(rfc3339FromMicros(9223372036854775807n), 'infinity');
  assert.equal(rfc3339FromMicros(-9223372036854775807n), '-infinity');
});

/**
 * Every chunk of `sql` through `jsonRowsBytes`, as the route streams it, parsed back; and
 * each cell's CSV text, checked against the CSV `rowsBytes` wrote of the same chunks (`csvText`).
 */
async function encoded(sql: string): Promise<{ text: string; rows: unknown[][]; csv: string[][]; csvText: string; utf8: boolean }> {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const result = await conn.stream(sql);
    const types = result.columnTypes();
    const parts: Buffer[] = [];
    const csvParts: Buffer[] = [];
    const csv: string[][] = [];
    let csvText = '';
    let rows = 0;
    for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      const budget = new ChunkBudget(result.columnNames(), chunk.rowCount);
      const columns = types.map((t, i) => readColumn(chunk!, i, t, 'exact', budget));
      parts.push(jsonRowsBytes(columns, chunk.rowCount, rows > 0));
      csvParts.push(rowsBytes(columns, chunk.rowCount, 'csv', false));
      for (let r = 0; r < chunk.rowCount; r++) {
        const cells = columns.map((col) => cellText(col, r, 'csv'));
        csv.push(cells);
        // NULL is an empty field, an empty string `""` (csvField).
        csvText += (cells.map((cell, c) => (isNull(columns[c], r) ? '' : csvField(cell))).join(',') || '""') + '\r\n';
      }
      rows += chunk.rowCount;
    }
    assert.equal(Buffer.concat(csvParts).toString('utf8'), csvText, "CSV rows: each cell's text, RFC 4180 quoted");
    const text = Buffer.concat(parts).toString('utf8');
    // Decoding replaced any invalid UTF-8 above: whether the bytes themselves are UTF-8.
    const utf8 = isUtf8(Buffer.concat(parts)) && isUtf8(Buffer.concat(csvParts));
    return { text, rows: JSON.parse(`[${text}]`) as unknown[][], csv, csvText, utf8 };
  } finally {
    conn.closeSync();
  }
}

test('jsonRowsBytes: doubles print as String() does, but -0 as -0 (as Arc does); NaN, ±Infinity and NULL as null', async () => {
  const edge = [0.1 + 0.2, 1 / 3, -0, 0, 1e21, 2 ** 53 - 1, -(2 ** 31), 2 ** 31, 4294967295.5, 1e-7, 5e-324, Number.MAX_VALUE, 2 ** 53, 2 ** 53 + 2, -(2 ** 60), 123456789.123456,
    999999999.999999, 1e9 + 0.5, 12.3456 + 0.0001, -12.3457, 0.000001, 100, -7];
  const random = Array.from({ length: 5000 }, (_, i) => (i % 2 === 0 ? Math.round(Math.random() * 1e6) / 1e4 + 0.0001 : (Math.random() - 0.5) * 10 ** ((i % 40) - 20)));
  const values = [...edge, ...random];
  const list = values.map((v) => `(${v === 0 && Object.is(v, -0) ? '-0.0' : v.toExponential(17)}::DOUBLE)`).join(',');
  const { text, rows } = await encoded(`SELECT x FROM (VALUES ${list}, ('NaN'::DOUBLE), ('Infinity'::DOUBLE), ('-Infinity'::DOUBLE), (NULL)) t(x)`);
  assert.equal(text, [...values.map((v) => `[${Object.is(v, -0) ? '-0' : String(v)}]`), '[null]', '[null]', '[null]', '[null]'].join(','));
  assert.equal(rows.length, values.length + 4);
});

/** Significant digits of a number's text (`-1.50e+3` → `15`). */
function digitsOf(text: string): string {
  return text.replace(/e.*$/i, '').replace(/[-.]/g, '').replace(/^0+/, '').replace(/0+$/, '') || '0';
}

test('FLOAT prints as the shortest decimal that reads back as the same float32, as DuckDB prints it (not the double it widens to), in JSON and CSV', async () => {
  const known = ['1.1', '0.1', '95.5', '-12.34', '3.4028235e+38', '1e-45', '16777216', '1.2621775e-29', '1.5474251e+26', '-0.3', '1e+21', '0'];
  const sql = ['1.1', '0.1', '95.5', '-12.34', '3.4028235e38', '1e-45', '16777217', 'pow(2, -96)', 'pow(2, 87)', '-0.3', '1e21', '0']
    .map((v, i) => `SELECT ${i} AS i, (${v})::FLOAT AS f, (${v})::FLOAT::VARCHAR AS duck`).join(' UNION ALL ') + ' ORDER BY i';
  const { text, rows, csv } = await encoded(sql);
  assert.deepEqual(rows.map((r) => r[2]), ['1.1', '0.1', '95.5', '-12.34', '3.4028235e+38', '1e-45', '16777216.0', '1.2621775e-29', '1.5474251e+26', '-0.3', '1e+21', '0.0']);
  assert.equal(text, known.map((k, i) => `[${i},${k},${JSON.stringify(rows[i][2])}]`).join(','));
  assert.deepEqual(csv.map((r) => r[1]), known);

  // Random bit patterns (every exponent) and two-decimal values: each reads back as the
  // same float, with no more digits than DuckDB's own text.
  const bits = new Uint32Array(4000);
  const floats = new Float32Array(bits.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = i % 2 === 0 ? Math.floor(Math.random() * 0xff800000) : 0;
  for (let i = 1; i < floats.length; i += 2) floats[i] = Math.round((Math.random() - 0.5) * 1e6) / 100;
  const values = Array.from(floats).filter(Number.isFinite);
  const random = await encoded(`SELECT f, f::VARCHAR FROM (VALUES ${values.map((v) => `(${v.toExponential(9)}::FLOAT)`).join(',')}) t(f)`);
  random.rows.forEach(([f, duck], i) => {
    assert.equal(Math.fround(f as number), values[i], `${values[i]}`);
    assert.ok(digitsOf(String(f)).length <= digitsOf(duck as string).length, `${values[i]}: ${f} beside DuckDB's ${duck}`);
    assert.equal(random.csv[i][0], String(f));
  });
});

test('jsonRowsBytes: strings (non-ASCII, escapes, long, empty, NULL), integers, booleans, timestamps, dates, other types', async () => {
  const strings = ['host_1', '', 'héllo wörld — 日本語 🚀', 'quote " backslash \\ tab \t newline \n nul \u0001', 'a'.repeat(40), 'ÿ'.repeat(20)];
  const list = strings.map((s) => `('${s.replaceAll("'", "''")}')`).join(',');
  const { rows: texts } = await encoded(`SELECT s FROM (VALUES ${list}, (NULL)) t(s)`);
  assert.deepEqual(texts, [...strings.map((s) => [s]), [null]]);

  const { rows } = await encoded(`SELECT * FROM (VALUES
    ((-128)::TINYINT, 4294967295::UINTEGER, -9007199254740993::BIGINT, 18446744073709551615::UBIGINT, true, TIMESTAMPTZ '2026-01-01 00:00:10.5+00', DATE '2026-03-04', 1.50::DECIMAL(4,2), [1, 2]),
    (0, 0, 9007199254740991, 0, false, TIMESTAMPTZ '2026-01-01 00:00:10.5+00', DATE '1969-12-31', NULL, NULL),
    (NULL, NULL, NULL, NULL, NULL, TIMESTAMP '1969-12-31 23:59:59.999999', NULL, NULL, NULL),
    (1, 1, -1, 1, NULL, TIMESTAMP '0001-01-01 00:00:00', NULL, NULL, NULL),
    (1, 1, -1, 1, NULL, 'infinity'::TIMESTAMP, NULL, NULL, NULL),
    (1, 1, -1, 1, NULL, NULL, NULL, NULL, NULL)) t(i8, u32, i64, u64, b, ts, d, dec, list)`);
  assert.deepEqual(rows.map((r) => r.slice(0, 2)), [[-128, 4294967295], [0, 0], [null, null], [1, 1], [1, 1], [1, 1]]);
  assert.deepEqual(rows.map((r) => r.slice(4)), [
    [true, '2026-01-01T00:00:10.5Z', '2026-03-04', 1.5, [1, 2]],
    [false, '2026-01-01T00:00:10.5Z', '1969-12-31', null, null],
    [null, '1969-12-31T23:59:59.999999Z', null, null, null],
    [null, '0001-01-01T00:00:00Z', null, null, null],
    [null, 'infinity', null, null, null],
    [null, null, null, null, null],
  ]);
  // 64-bit integers exactly, beyond 2^53 too: compared as text.
  const { text } = await encoded('SELECT -9007199254740993::BIGINT, 18446744073709551615::UBIGINT, (-9223372036854775808)::BIGINT, 9007199254740991::BIGINT');
  assert.equal(text, '[-9007199254740993,18446744073709551615,-9223372036854775808,9007199254740991]');
});

test('TIMESTAMP_NS keeps its nine digits in JSON and CSV, as DuckDB prints them: before 1970, zero fractions, past 2^53 ns, the ends of its range', async () => {
  const nanos = ['0', '1', '-1', '999', '1000', '-999999999', '-1000000000', '-1000000001', '100000000', '-86400000000000001',
    '9007199254740993', '-9007199254740993', '1767225600123456789', '1767225600000000000', '1767225600000001000', '1767225600123400000',
    '1767225599999999999', '-2208988800000000001', '-9200000000000000001', '9223372036854775806'];
  const { rows, csv } = await encoded(`SELECT make_timestamp_ns(n) AS t, make_timestamp_ns(n)::VARCHAR AS duck FROM (VALUES ${nanos.map((n) => `(${n})`).join(',')}) v(n)`);
  // DuckDB's text (`2026-01-01 00:00:00.123456789`, trailing zeros trimmed) in RFC 3339 form.
  const expected = rows.map((r) => [String(r[1]).replace(' ', 'T') + 'Z']);
  assert.equal(expected[12][0], '2026-01-01T00:00:00.123456789Z');
  assert.deepEqual(rows.map((r) => [r[0]]), expected);
  assert.deepEqual(csv.map((r) => [r[0]]), expected);
  assert.deepEqual(nanos.map((n) => [rfc3339FromNanos(BigInt(n))]), expected);
  // ±infinity, NULL, and a TIME_NS (read as a node-api value) beside them.
  const { rows: ends } = await encoded("SELECT * FROM (VALUES ('infinity'::TIMESTAMP_NS, TIME_NS '12:34:56.123456789'), ('-infinity'::TIMESTAMP_NS, NULL), (NULL, NULL)) t(a, b)");
  assert.deepEqual(ends, [['infinity', '12:34:56.123456789'], ['-infinity', null], [null, null]]);
});

test('µs timestamps in JSON and CSV as DuckDB prints them: second and day boundaries, before 1970, up to ±2^53 µs and beyond', async () => {
  const micros = ['0', '-1', '999999', '1000000', '-999999', '-1000000', '-1000001', '86399999999', '86400000000', '-86400000001',
    '1767225599999999', '1767225600000000', '1767225600000001', '9007199254740991', '-9007199254740991', '9007199254740992',
    '9007199254000000', '9007199253999999', '-9007199254000000', '-9007199254000001', '-62135596800000000', '253402300799999999'];
  const { rows, csv } = await encoded(`SELECT make_timestamp(n) AS t, make_timestamp(n)::VARCHAR AS duck FROM (VALUES ${micros.map((n) => `(${n})`).join(',')}) v(n)`);
  // DuckDB's text (`1969-12-31 23:59:59.999999`) in RFC 3339 form; all within years 1–9999.
  const expected = rows.map((r) => [String(r[1]).replace(' ', 'T') + 'Z']);
  assert.deepEqual(rows.map((r) => [r[0]]), expected);
  assert.deepEqual(csv.map((r) => [r[0]]), expected);
});

test('repeated µs timestamps are copied right: across chunks, after the row buffer grew, with and without a fraction', async () => {
  // Three rows per time, whole seconds and half seconds in turn; rows 2046–2048 share one time
  // across DuckDB's 2,048-row chunks; the second of some carries 1 MB of text, so the buffer
  // grows between copies.
  const { rows, csv } = await encoded(`SELECT make_timestamp(1767225600000000 + (range // 3) * 500000) AS t,
    t::VARCHAR AS duck, CASE WHEN range % 999 = 1 THEN repeat('x', 1000000) ELSE 'y' END AS s FROM range(6000)`);
  assert.equal(rows.length, 6000);
  const expected = rows.map((r) => String(r[1]).replace(' ', 'T') + 'Z');
  assert.deepEqual(rows.map((r) => r[0]), expected);
  assert.deepEqual(csv.map((r) => r[0]), expected);
  assert.equal(rows[1][2], 'x'.repeat(1000000));
});

test('nested values are JSON arrays and objects in JSON (items printed as their own columns are), their text form in CSV', async () => {
  const { text, csv } = await encoded(`SELECT [1.1::FLOAT, -0.0::FLOAT, 'NaN'::FLOAT, NULL] AS floats,
    [0.1::DOUBLE + 0.2::DOUBLE, 'Infinity'::DOUBLE] AS doubles, [TIMESTAMP '2020-01-01 00:00:01.5', NULL] AS times, [18446744073709551615::UBIGINT] AS big,
    [1.50::DECIMAL(4,2)] AS dec, {'a': 1, 'b': 'x "q"', 'c': [[1, 2], []]} AS s, MAP {'k': [DATE '2026-03-04'], 'j': NULL} AS m,
    union_value(num := 2)::UNION(num INTEGER, str VARCHAR) AS u, [1, 2]::INTEGER[2] AS arr, NULL::INTEGER[] AS none, []::INTEGER[] AS empty`);
  assert.equal(text, '[[1.1,-0,null,null],[0.30000000000000004,null],["2020-01-01T00:00:01.5Z",null],[18446744073709551615],[1.50],' +
    '{"a":1,"b":"x \\"q\\"","c":[[1,2],[]]},{"k":["2026-03-04"],"j":null},2,[1,2],null,[]]');
  // CSV keeps each value's text form, DuckDB's (`nested-text.test.ts`).
  assert.deepEqual(csv[0], ['[1.1, -0.0, nan, NULL]', '[0.30000000000000004, inf]', "['2020-01-01 00:00:01.5', NULL]",
    '[18446744073709551615]', '[1.50]', "{'a': 1, 'b': 'x \"q\"', 'c': [[1, 2], []]}", '{k=[2026-03-04], j=NULL}', '2', '[1, 2]', '', '[]']);
});

test('a VARIANT is the value it holds, as a column of that value\'s type gives it, in JSON; DuckDB\'s text of it in CSV', async () => {
  const { text, csv } = await encoded(`SELECT 'it''s'::VARIANT AS s, 42::VARIANT AS i, 1.25::DECIMAL(5,2)::VARIANT AS d, TIMESTAMP '2026-01-01 00:00:01.5'::VARIANT AS t,
    {'a': 's', 'b': [1.5::DOUBLE, NULL]}::VARIANT AS o, [1, 'a'::VARIANT, NULL::VARIANT] AS l, NULL::VARIANT AS n`);
  assert.equal(text, '["it\'s",42,1.25,"2026-01-01T00:00:01.5Z",{"a":"s","b":[1.5,null]},[1,"a",null],null]');
  assert.deepEqual(csv[0], ["it's", '42', '1.25', '2026-01-01 00:00:01.5', "{'a': s, 'b': [1.5, NULL]}", '[1, a, NULL]', '']);
});

test('an unnamed STRUCT (row(), a tuple) keeps every field, by position: a JSON array, DuckDB\'s (…) in CSV; nested in STRUCTs and LISTs too', async () => {
  const { text, csv } = await encoded(`SELECT row(1, 'x') AS r, (1, 2) AS t, row(5, row(6, 7)) AS n, [row(1, 'a'), NULL, row(2, NULL)] AS l,
    {'k': row(3, 4), 'm': 'it''s'} AS s, CASE WHEN false THEN row(1, 2) END AS none`);
  assert.equal(text, '[[1,"x"],[1,2],[5,[6,7]],[[1,"a"],null,[2,null]],{"k":[3,4],"m":"it\'s"},null]');
  assert.deepEqual(csv[0], ['(1, x)', '(1, 2)', '(5, (6, 7))', '[(1, a), NULL, (2, NULL)]', "{'k': (3, 4), 'm': 'it\\'s'}", '']);
  // Inside an ARRAY, a MAP and a UNION too.
  const deeper = await encoded(`SELECT array_value(row(1, 2), row(3, 4)) AS a, MAP {'k': row(1, 'x'), 'n': NULL} AS m,
    union_value(t := row(5, 6)) AS u, [MAP {'k': row(7, 8)}] AS lm`);
  assert.equal(deeper.text, '[[[1,2],[3,4]],{"k":[1,"x"],"n":null},[5,6],[{"k":[7,8]}]]');
  assert.deepEqual(deeper.csv[0], ['[(1, 2), (3, 4)]', '{k=(1, x), n=NULL}', '(5, 6)', '[{k=(7, 8)}]']);
});

test('a STRUCT field named __proto__ keeps its value (node-api\'s plain-object values lose it), at any depth, in JSON and CSV', async () => {
  const { text, csv } = await encoded(`SELECT {'__proto__': 5, 'b': 6} AS s, [{'__proto__': NULL, 'c': {'__proto__': 'x'}}] AS l`);
  assert.equal(text, '[{"__proto__":5,"b":6},[{"__proto__":null,"c":{"__proto__":"x"}}]]');
  assert.deepEqual(csv[0], ["{'__proto__': 5, 'b': 6}", "[{'__proto__': NULL, 'c': {'__proto__': x}}]"]);
});

test('invalid UTF-8 a DuckDB function made (printf of a lone byte) is sent with U+FFFD in its place, in JSON and CSV', async () => {
  const { text, csvText, utf8 } = await encoded("SELECT printf('%c', 200) || 'abc' AS s, 'é' AS t, NULL AS n UNION ALL SELECT 'x\"' || printf('%c', 255), 'ok', 1");
  assert.deepEqual(JSON.parse(`[${text}]`), [['\ufffdabc', 'é', null], ['x"\ufffd', 'ok', 1]]);
  assert.equal(csvText, '\ufffdabc,é,\r\n"x""\ufffd",ok,1\r\n');
  assert.ok(utf8, 'the bytes sent are UTF-8');
  // A sequence cut between two values: the column's bytes together are valid UTF-8, each value is not.
  const split = await encoded("SELECT s FROM (VALUES (1, printf('%c', 195)), (2, printf('%c', 169))) t(i, s) ORDER BY i");
  assert.deepEqual(JSON.parse(`[${split.text}]`), [['\ufffd'], ['\ufffd']]);
  assert.ok(split.utf8, 'the bytes sent are UTF-8');
});

test('CSV rows: RFC 4180 quoting of strings and other types, NaN and infinities, NULL as nothing, an empty string and a blank line as ""', async () => {
  const csvOf = async (sql: string): Promise<string> => (await encoded(sql)).csvText;
  assert.equal(await csvOf(`SELECT * FROM (VALUES
    ('a,b', 1.5::DOUBLE, [1, 2], NULL::VARCHAR, TIMESTAMPTZ '2026-01-01 00:00:10.5+00', 'infinity'::TIMESTAMP, DATE '2026-03-04', 2.5::FLOAT),
    ('say "hi"', 'NaN'::DOUBLE, NULL, '', NULL, NULL, NULL, 'NaN'::FLOAT),
    ('line' || chr(10) || 'break' || chr(13), '-Infinity'::DOUBLE, [], 'x', NULL, NULL, NULL, '-Infinity'::FLOAT),
    ('日本語', NULL, [3], 'é', NULL, NULL, NULL, NULL)) t(s, d, l, v, ts, inf, day, f)`),
  '"a,b",1.5,"[1, 2]",,2026-01-01T00:00:10.5Z,infinity,2026-03-04,2.5\r\n' +
  '"say ""hi""",NaN,,"",,,,NaN\r\n' +
  '"line\nbreak\r",-Infinity,[],x,,,,-Infinity\r\n' +
  '日本語,,[3],é,,,,\r\n');
  assert.equal(await csvOf("SELECT * FROM (VALUES ('a'), (NULL), (''), ('b')) t(s)"), 'a\r\n""\r\n""\r\nb\r\n');
});

test('rfc3339FromNanos of whole µs is rfc3339FromMicros of them', () => {
  for (const micros of [0n, 1n, -1n, 10_500_000n, -86_400_000_001n, 1_767_225_723_000_120n, 9_007_199_254_740_993n, -9_200_000_000_000_000n]) {
    assert.equal(rfc3339FromNanos(micros * 1000n), rfc3339FromMicros(micros), `${micros}`);
  }
});

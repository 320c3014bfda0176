/**
 * Edge cases of the line-protocol parser, one `test()` per case. Each case gives a
 * body and the exact rows expected (every column of the batch, NULL where a row
 * lacks it; field columns keyed `name:type` so that type clashes show) plus the
 * rejected lines with a substring of their message. Rejected lines are checked
 * between two valid lines, which must survive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Precision } from '../time.js';
import { parseLineProtocol, type ParseResult } from './parser.js';

const NOW = Date.UTC(2026, 0, 1) * 1000;
const MAX_US = Number.MAX_SAFE_INTEGER;

interface Row {
  m: string;
  line: number;
  time: number;
  tags: Record<string, string | null>;
  fields: Record<string, number | bigint | boolean | string | null>;
}

interface Case {
  name: string;
  body: string;
  precision?: Precision;
  firstLine?: number;
  rows: Row[];
  errors?: Array<{ line: number; includes: string }>;
}

function row(m: string, line: number, time: number, tags: Row['tags'], fields: Row['fields']): Row {
  return { m, line, time, tags, fields };
}

/** Every row of every batch, in batch order, with all of the batch's columns. */
function rowsOf(result: ParseResult): Row[] {
  const rows: Row[] = [];
  for (const b of result.batches) {
    for (let i = 0; i < b.rowCount; i++) {
      const tags: Row['tags'] = {};
      for (const t of b.tags) tags[t.name] = t.codes[i] === 0 ? null : t.dictionary[t.codes[i] - 1];
      const fields: Row['fields'] = {};
      for (const f of b.fields) {
        fields[`${f.name}:${f.type}`] = f.valid[i] === 0 ? null : f.type === 'bool' ? f.values[i] === 1 : f.values[i];
      }
      rows.push(row(b.measurement, b.sourceLine[i], b.time[i], tags, fields));
    }
  }
  return rows;
}

function assertWellFormed(result: ParseResult): void {
  for (const b of result.batches) {
    assert.ok(b.rowCount > 0, `empty batch for ${b.measurement}`);
    assert.equal(b.time.length, b.rowCount);
    assert.equal(b.sourceLine.length, b.rowCount);
    for (const t of b.tags) assert.equal(t.codes.length, b.rowCount);
    for (const f of b.fields) {
      assert.equal(f.valid.length, b.rowCount);
      assert.equal(f.values.length, b.rowCount);
    }
    for (const t of b.time) assert.ok(Number.isInteger(t) && Math.abs(t) <= MAX_US, `bad time ${t}`);
  }
}

const cases: Case[] = [];

function accepts(name: string, body: string, rows: Row[], precision?: Precision): void {
  cases.push({ name: `accepts ${name}`, body, rows, precision });
}

/** A single field `v` in measurement `m`, no tags, no timestamp. */
function acceptsValue(text: string, column: string, value: Row['fields'][string]): void {
  accepts(`field value ${text}`, `m v=${text}`, [row('m', 1, NOW, {}, { [column]: value })]);
}

/** `bad` is line 2 of three; lines 1 and 3 must be kept. */
function rejects(name: string, bad: string, message: string, precision?: Precision): void {
  cases.push({
    name: `rejects ${name}`,
    body: `ok,k=v n=1i\n${bad}\nok,k=v n=2i\n`,
    precision,
    errors: [{ line: 2, includes: message }],
    rows: [row('ok', 1, NOW, { k: 'v' }, { 'n:int64': 1n }), row('ok', 3, NOW, { k: 'v' }, { 'n:int64': 2n })],
  });
}

function rejectsValue(text: string, message = `invalid field value for "v" (${JSON.stringify(text)}): expected a number`): void {
  rejects(`field value ${text}`, `cpu v=${text}`, message);
}

// --- Line structure --------------------------------------------------------

accepts('all four field types with tags and an ns timestamp',
  'cpu,host=server01,region=us-west usage=64.5,count=3i,ok=true,msg="all good" 1700000000123456789',
  [row('cpu', 1, 1700000000123456, { host: 'server01', region: 'us-west' },
    { 'usage:float64': 64.5, 'count:int64': 3n, 'ok:bool': true, 'msg:string': 'all good' })]);
accepts('a line without tags', 'cpu v=1 1700000000000000000', [row('cpu', 1, 1700000000000000, {}, { 'v:float64': 1 })]);
accepts('a line without timestamp (server time)', 'cpu,h=a v=1', [row('cpu', 1, NOW, { h: 'a' }, { 'v:float64': 1 })]);
accepts('trailing spaces after the field set', 'cpu v=1   ', [row('cpu', 1, NOW, {}, { 'v:float64': 1 })]);
accepts('runs of spaces between sections and after the timestamp', 'cpu,h=a   v=1    5000   ',
  [row('cpu', 1, 5, { h: 'a' }, { 'v:float64': 1 })]);
accepts('leading spaces and tabs', ' \t  cpu v=1', [row('cpu', 1, NOW, {}, { 'v:float64': 1 })]);
accepts('sparse columns as NULLs', 'cpu,a=1 x=1\ncpu,b=2 y=2i', [
  row('cpu', 1, NOW, { a: '1', b: null }, { 'x:float64': 1, 'y:int64': null }),
  row('cpu', 2, NOW, { a: null, b: '2' }, { 'x:float64': null, 'y:int64': 2n }),
]);
accepts('several measurements in one body, batches in first-seen order',
  'cpu,h=a v=1\nmem used=5i\ncpu,h=b v=2\ndisk free=1.5', [
    row('cpu', 1, NOW, { h: 'a' }, { 'v:float64': 1 }),
    row('cpu', 3, NOW, { h: 'b' }, { 'v:float64': 2 }),
    row('mem', 2, NOW, {}, { 'used:int64': 5n }),
    row('disk', 4, NOW, {}, { 'free:float64': 1.5 }),
  ]);
accepts('keys in a different order on each line', 'cpu,a=1,b=2 x=1,y=2\ncpu,b=3,a=4 y=3,x=4\ncpu,a=5 x=5', [
  row('cpu', 1, NOW, { a: '1', b: '2' }, { 'x:float64': 1, 'y:float64': 2 }),
  row('cpu', 2, NOW, { a: '4', b: '3' }, { 'x:float64': 4, 'y:float64': 3 }),
  row('cpu', 3, NOW, { a: '5', b: null }, { 'x:float64': 5, 'y:float64': null }),
]);
accepts('the same measurement interleaved with others', 'a,t=1 x=1\nb,t=2 y=2\na,t=3 x=3', [
  row('a', 1, NOW, { t: '1' }, { 'x:float64': 1 }),
  row('a', 3, NOW, { t: '3' }, { 'x:float64': 3 }),
  row('b', 2, NOW, { t: '2' }, { 'y:float64': 2 }),
]);
accepts('a type clash between lines as two columns of one name', 'm x=1i\nm x=1.5', [
  row('m', 1, NOW, {}, { 'x:int64': 1n, 'x:float64': null }),
  row('m', 2, NOW, {}, { 'x:int64': null, 'x:float64': 1.5 }),
]);

// --- Lines, comments, line numbers -----------------------------------------

accepts('CRLF line endings', 'cpu v=1 1000\r\ncpu msg="x" 2000\r\n', [
  row('cpu', 1, 1, {}, { 'v:float64': 1, 'msg:string': null }),
  row('cpu', 2, 2, {}, { 'v:float64': null, 'msg:string': 'x' }),
]);
accepts('a CR inside a line as data', 'cpu,t=a\rb v=1', [row('cpu', 1, NOW, { t: 'a\rb' }, { 'v:float64': 1 })]);
accepts('comments and blank lines, still counted', '# comment\n\ncpu v=1\n   # indented comment\n\t\n\r\ncpu v=2\n', [
  row('cpu', 3, NOW, {}, { 'v:float64': 1 }),
  row('cpu', 7, NOW, {}, { 'v:float64': 2 }),
]);
accepts('a last line without newline', 'cpu v=1\ncpu v=2', [
  row('cpu', 1, NOW, {}, { 'v:float64': 1 }),
  row('cpu', 2, NOW, {}, { 'v:float64': 2 }),
]);
accepts('an empty body', '', []);
accepts('a body of comments only', '# a\n#b\n', []);
cases.push({
  name: 'numbers lines from firstLine',
  body: 'cpu v=1\ncpu\ncpu v=2',
  firstLine: 41,
  rows: [row('cpu', 41, NOW, {}, { 'v:float64': 1 }), row('cpu', 43, NOW, {}, { 'v:float64': 2 })],
  errors: [{ line: 42, includes: 'missing fields' }],
});

// --- Escapes ----------------------------------------------------------------

accepts('escaped comma and space in the measurement', 'my\\ cpu\\,1,t=x v=1',
  [row('my cpu,1', 1, NOW, { t: 'x' }, { 'v:float64': 1 })]);
accepts('"=" and other backslashes kept in the measurement', 'a=b\\=c\\d v=1',
  [row('a=b\\=c\\d', 1, NOW, {}, { 'v:float64': 1 })]);
accepts('a literal backslash before an escaped comma in the measurement', 'a\\\\,t=1 v=1',
  [row('a\\,t=1', 1, NOW, {}, { 'v:float64': 1 })]);
accepts('escaped space, comma and equals in a tag key', 'cpu,my\\ key\\,x\\=y=v v=1',
  [row('cpu', 1, NOW, { 'my key,x=y': 'v' }, { 'v:float64': 1 })]);
accepts('escaped space, comma and equals in a tag value', 'cpu,t=a\\ b\\,c\\=d v=1',
  [row('cpu', 1, NOW, { t: 'a b,c=d' }, { 'v:float64': 1 })]);
accepts('other backslashes kept in a tag value', 'cpu,path=C:\\dir\\n v=1',
  [row('cpu', 1, NOW, { path: 'C:\\dir\\n' }, { 'v:float64': 1 })]);
accepts('quotes and "#" in a tag value as data', 'cpu,t="q"#1 v=1',
  [row('cpu', 1, NOW, { t: '"q"#1' }, { 'v:float64': 1 })]);
accepts('escaped space, comma and equals in a field key', 'cpu my\\ f\\,x\\=y=1',
  [row('cpu', 1, NOW, {}, { 'my f,x=y:float64': 1 })]);
accepts('non-ASCII names and values', '温度,城市=東京 值=21.5,註="晴れ ☀"',
  [row('温度', 1, NOW, { 城市: '東京' }, { '值:float64': 21.5, '註:string': '晴れ ☀' })]);

// --- String fields ----------------------------------------------------------

accepts('a string with spaces, commas and equals', 'cpu msg="a b, c=d e",v=1 5000',
  [row('cpu', 1, 5, {}, { 'msg:string': 'a b, c=d e', 'v:float64': 1 })]);
accepts('a string with escaped quotes and backslashes', 'cpu msg="say \\"hi\\" to C:\\\\dir"',
  [row('cpu', 1, NOW, {}, { 'msg:string': 'say "hi" to C:\\dir' })]);
accepts('other backslashes kept in a string', 'cpu msg="a\\nb\\tc\\,d"',
  [row('cpu', 1, NOW, {}, { 'msg:string': 'a\\nb\\tc\\,d' })]);
accepts('an escaped backslash just before the closing quote', 'cpu msg="ends with \\\\",v=1',
  [row('cpu', 1, NOW, {}, { 'msg:string': 'ends with \\', 'v:float64': 1 })]);
accepts('consecutive escapes in a string', String.raw`cpu msg="a\\\\b\\\"c"`,
  [row('cpu', 1, NOW, {}, { 'msg:string': String.raw`a\\b\"c` })]);
accepts('a literal backslash before an escaped space in a tag value', String.raw`cpu,t=a\\ b v=1`,
  [row('cpu', 1, NOW, { t: String.raw`a\ b` }, { 'v:float64': 1 })]);
accepts('an empty string', 'cpu msg=""', [row('cpu', 1, NOW, {}, { 'msg:string': '' })]);
accepts('strings that look like other types', 'cpu a="1i",b="true",c="1.5"',
  [row('cpu', 1, NOW, {}, { 'a:string': '1i', 'b:string': 'true', 'c:string': '1.5' })]);
accepts('a string holding line-protocol syntax', 'cpu msg="x,y=1 z=\\"2\\" 3" 1000',
  [row('cpu', 1, 1, {}, { 'msg:string': 'x,y=1 z="2" 3' })]);

// --- Field values -----------------------------------------------------------

for (const t of ['t', 'T', 'true', 'True', 'TRUE']) acceptsValue(t, 'v:bool', true);
for (const f of ['f', 'F', 'false', 'False', 'FALSE']) acceptsValue(f, 'v:bool', false);

acceptsValue('1', 'v:float64', 1);
acceptsValue('-1.5', 'v:float64', -1.5);
acceptsValue('0.1', 'v:float64', 0.1);
acceptsValue('1e3', 'v:float64', 1000);
acceptsValue('1e+3', 'v:float64', 1000);
acceptsValue('1.5E-3', 'v:float64', 0.0015);
acceptsValue('-2.5e-10', 'v:float64', -2.5e-10);
acceptsValue('.5', 'v:float64', 0.5);
acceptsValue('-.5', 'v:float64', -0.5);
acceptsValue('1.', 'v:float64', 1);
acceptsValue('0', 'v:float64', 0);
acceptsValue('-0', 'v:float64', -0);
acceptsValue('1.7976931348623157e308', 'v:float64', Number.MAX_VALUE);
acceptsValue('5e-324', 'v:float64', Number.MIN_VALUE);
acceptsValue('123456789012345678901234567890', 'v:float64', 1.2345678901234568e29);

acceptsValue('123i', 'v:int64', 123n);
acceptsValue('-5i', 'v:int64', -5n);
acceptsValue('0i', 'v:int64', 0n);
acceptsValue('-0i', 'v:int64', 0n);
acceptsValue('9223372036854775807i', 'v:int64', 9223372036854775807n);
acceptsValue('-9223372036854775808i', 'v:int64', -9223372036854775808n);
acceptsValue('9007199254740993i', 'v:int64', 9007199254740993n);
acceptsValue('-9007199254740993i', 'v:int64', -9007199254740993n);
acceptsValue('000000000000000042i', 'v:int64', 42n);
acceptsValue('123u', 'v:int64', 123n);
acceptsValue('0u', 'v:int64', 0n);
acceptsValue('9223372036854775807u', 'v:int64', 9223372036854775807n);

accepts('a duplicate field key: the last value wins', 'cpu v=1,v=2', [row('cpu', 1, NOW, {}, { 'v:float64': 2 })]);
accepts('a duplicate field key of another type: the last value wins', 'cpu v=1,w=2,v="x"',
  [row('cpu', 1, NOW, {}, { 'v:string': 'x', 'w:float64': 2 })]);
accepts('a duplicate field key after a line without one', 'm x=1,y=2\nm x=1,x=5', [
  row('m', 1, NOW, {}, { 'x:float64': 1, 'y:float64': 2 }),
  row('m', 2, NOW, {}, { 'x:float64': 5, 'y:float64': null }),
]);
accepts('a field named like a tag of its line as <key>_value', 'cpu,x=a x=1,y=2i',
  [row('cpu', 1, NOW, { x: 'a' }, { 'x_value:float64': 1, 'y:int64': 2n })]);
accepts('the _value rename only on lines that have the tag', 'cpu,x=a x=1\ncpu x=2', [
  row('cpu', 1, NOW, { x: 'a' }, { 'x_value:float64': 1, 'x:float64': null }),
  row('cpu', 2, NOW, { x: null }, { 'x_value:float64': null, 'x:float64': 2 }),
]);
accepts('fewer tags than the line before', 'm,a=1,b=2 v=1\nm,a=3 v=2', [
  row('m', 1, NOW, { a: '1', b: '2' }, { 'v:float64': 1 }),
  row('m', 2, NOW, { a: '3', b: null }, { 'v:float64': 2 }),
]);

// --- Timestamps -------------------------------------------------------------

function acceptsTime(text: string, precision: Precision, us: number): void {
  accepts(`timestamp ${text} ${precision} as ${us} µs`, `m v=1 ${text}`, [row('m', 1, us, {}, { 'v:float64': 1 })], precision);
}
acceptsTime('1700000000123456789', 'ns', 1700000000123456);
acceptsTime('1700000000123456', 'us', 1700000000123456);
acceptsTime('1700000000123', 'ms', 1700000000123000);
acceptsTime('1700000000', 's', 1700000000000000);
acceptsTime('28333333', 'm', 1699999980000000);
acceptsTime('472222', 'h', 1699999200000000);
acceptsTime('1234567890123456789', 'ns', 1234567890123456);
acceptsTime('9007199254740991999', 'ns', MAX_US);
acceptsTime('-9007199254740991000', 'ns', -MAX_US);
acceptsTime('9007199254', 's', 9007199254000000);
acceptsTime('0001000', 'ns', 1);
acceptsTime('999', 'ns', 0);
acceptsTime('-1500', 'ns', -2);
acceptsTime('-1000', 'ns', -1);
acceptsTime('-1001', 'ns', -2);
acceptsTime('-1', 'ns', -1);
acceptsTime('-0', 'ns', 0);
acceptsTime('-1700000000123456789', 'ns', -1700000000123457);
acceptsTime('-5', 'us', -5);
acceptsTime('-1', 'ms', -1000);
acceptsTime('-86400', 's', -86400000000);
acceptsTime('-1', 'm', -60000000);
acceptsTime('-1', 'h', -3600000000);

// --- Rejected lines ---------------------------------------------------------

rejects('a missing measurement', ',t=1 v=1', 'missing measurement');
rejects('a measurement only', 'cpu', 'missing fields');
rejects('a measurement and a space', 'cpu ', 'missing fields');
rejects('tags without fields', 'cpu,host=a', 'missing fields');
rejects('tags and a space without fields', 'cpu,host=a ', 'missing fields');
rejects('a tag without "="', 'cpu,host v=1', 'missing tag value for key "host"');
rejects('a tag without "=" at the end of the line', 'cpu,host', 'missing tag value for key "host"');
rejects('a tag with an empty value', 'cpu,host= v=1', 'missing tag value for key "host"');
rejects('a tag with an empty value before another tag', 'cpu,host=,r=1 v=1', 'missing tag value for key "host"');
rejects('an empty tag key', 'cpu,=a v=1', 'missing tag key');
rejects('a trailing comma in the tag set', 'cpu,host=a, v=1', 'missing tag key');
rejects('two commas in the tag set', 'cpu,,host=a v=1', 'missing tag key');
rejects('an unescaped "=" in a tag value', 'cpu,host=a=b v=1', 'invalid tag value for key "host": unescaped "="');
rejects('a duplicate tag key', 'cpu,host=a,host=b v=1', 'duplicate tag key "host"');
rejects('an empty field key', 'cpu =1', 'missing field key');
rejects('an empty field key after a comma', 'cpu v=1,=2', 'missing field key');
rejects('a trailing comma in the field set', 'cpu v=1,', 'missing field key');
rejects('a trailing comma before the timestamp', 'cpu v=1, 5', 'missing field key');
rejects('a field without "="', 'cpu v', 'missing field value for "v"');
rejects('a field without "=" before the timestamp', 'cpu v 1000', 'missing field value for "v"');
rejects('a second field without "="', 'cpu v=1,w', 'missing field value for "w"');
rejects('an empty field value', 'cpu v=', 'missing field value for "v"');
rejects('an empty field value before a comma', 'cpu v=,w=1', 'missing field value for "v"');
rejects('an empty field value before the timestamp', 'cpu v= 1000', 'missing field value for "v"');

for (const bad of [
  'abc', '1.2.3', 'NaN', 'nan', 'Inf', 'inf', '-Inf', '+1', '1e', '1e+', '-', '.', '-.', '1x', '1.5i', '1e3i', '-5u',
  '1i2', '1u5', 'i', 'truee', 'tRUE', 'yes', "'single'", '0x10', '1_000', '--1', 'abc"',
]) rejectsValue(bad);
rejectsValue('1e400', 'float value "1e400" of field "v" is out of float64 range');
rejectsValue('-1e400', 'float value "-1e400" of field "v" is out of float64 range');
rejectsValue('9223372036854775808i', 'integer value "9223372036854775808i" of field "v" is out of int64 range');
rejectsValue('-9223372036854775809i', 'integer value "-9223372036854775809i" of field "v" is out of int64 range');
rejectsValue('99999999999999999999i', 'out of int64 range');
rejectsValue('9223372036854775808u', 'unsigned value "9223372036854775808u" of field "v" exceeds int64');
rejectsValue('18446744073709551615u', 'exceeds int64');
rejectsValue('18446744073709551616u', 'exceeds int64');
rejects('an unterminated string', 'cpu msg="abc', 'unterminated string in field "msg"');
rejects('an unterminated string ending in an escaped quote', 'cpu msg="abc\\"', 'unterminated string in field "msg"');
rejects('an unterminated string before a timestamp', 'cpu msg="abc 1000', 'unterminated string in field "msg"');
rejects('text after a closing quote', 'cpu msg="a"b', 'invalid field value for "msg": unexpected text after the closing quote');
rejects('two strings in one value', 'cpu msg="a""b"', 'unexpected text after the closing quote');

for (const [text, precision] of [['12.5', 'ns'], ['abc', 'ns'], ['-', 'ns'], ['1e9', 's'], ['+5', 'ms'], ['0x10', 'us'], ['1-2', 'ns']] as const) {
  rejects(`timestamp ${text} (${precision})`, `cpu v=1 ${text}`, `timestamp ${JSON.stringify(text)} is not an integer`, precision);
}
rejects('text after the timestamp', 'cpu v=1 123 456', 'unexpected text after timestamp: "456"');
for (const [text, precision] of [
  ['9007199254741000000', 'ns'], ['-9007199254741000000', 'ns'], ['-9007199254740991001', 'ns'],
  ['99999999999999999999999999', 'ns'], ['9007199255', 's'], ['-9007199255', 's'], ['2502000', 'h'],
  ['-9007199254741', 'ms'], ['9007199254740992', 'us'],
] as const) {
  rejects(`timestamp ${text} (${precision}) out of range`, `cpu v=1 ${text}`, `timestamp "${text}" (precision ${precision}) is out of range`, precision);
}

rejects('the measurement ".."', '.. v=1', 'measurement ".." is not allowed');
rejects('the measurement "."', '.,t=1 v=1', 'measurement "." is not allowed');
rejects('a measurement with "/"', 'a/b v=1', 'measurement "a/b" contains "/"');
rejects('a measurement of 201 characters', `${'m'.repeat(201)} v=1`, 'measurement longer than 200 characters');
rejects('the tag key "time"', 'cpu,time=x v=1', 'tag key "time" is reserved');
rejects('a tag key with NUL', 'cpu,a\u0000b=1 v=1', 'tag key contains a NUL character');
rejects('the field key "time"', 'cpu time=1', 'field key "time" is reserved');
rejects('the field key "time" after another field', 'cpu v=1,time=2i', 'field key "time" is reserved');
rejects('a field key of 201 characters', `cpu ${'f'.repeat(201)}=1`, 'field key longer than 200 characters');

// A rejected line must not poison the per-measurement key memory for the lines after it.
cases.push({
  name: 'rejects a reserved field key on every line that repeats it',
  body: 'm time=1\nm time=2\nm v=3',
  rows: [row('m', 3, NOW, {}, { 'v:float64': 3 })],
  errors: [{ line: 1, includes: 'field key "time"' }, { line: 2, includes: 'field key "time"' }],
});
cases.push({
  name: 'rejects duplicate tag keys after a valid line with the same first keys',
  body: 'm,a=1,b=2 v=1\nm,a=1,a=2 v=1\nm,b=1,b=2 v=1',
  rows: [row('m', 1, NOW, { a: '1', b: '2' }, { 'v:float64': 1 })],
  errors: [{ line: 2, includes: 'duplicate tag key "a"' }, { line: 3, includes: 'duplicate tag key "b"' }],
});
{
  const key = 'k'.repeat(195);
  cases.push({
    name: 'rejects a field whose _value rename is too long and keeps the next line clean',
    body: `m,${key}=a ${key}=1\nm v=1`,
    rows: [row('m', 2, NOW, {}, { 'v:float64': 1 })],
    errors: [{ line: 1, includes: 'field key longer than 200 characters' }],
  });
}
// Arc stores both as "x_value" (one value lost); Strata refuses the line instead.
cases.push({
  name: 'rejects a field named like a tag when its <key>_value name is another field of the line',
  body: 'm,x=a v=1\nm,x=a x=1i,x_value=2i\nm,x=a x_value=2i,x=1i\nm,x=b x=3i',
  rows: [
    row('m', 1, NOW, { x: 'a' }, { 'v:float64': 1, 'x_value:int64': null }),
    row('m', 4, NOW, { x: 'b' }, { 'v:float64': null, 'x_value:int64': 3n }),
  ],
  errors: [
    { line: 2, includes: 'field "x" has the name of a tag, so it would be stored as "x_value", but the field "x_value" is also given' },
    { line: 3, includes: 'field "x" has the name of a tag, so it would be stored as "x_value", but the field "x_value" is also given' },
  ],
});
cases.push({
  name: 'rejects a field named like a tag when its <key>_value name is another tag of the line',
  body: 'm v=1\nm,x=a,x_value=b x=1\nm v=2',
  rows: [row('m', 1, NOW, {}, { 'v:float64': 1 }), row('m', 3, NOW, {}, { 'v:float64': 2 })],
  errors: [{ line: 2, includes: 'field "x" has the name of a tag, so it would be stored as "x_value", but the tag "x_value" is also given' }],
});
cases.push({
  name: 'renames again after lines with the same keys that needed no rename',
  body: 'm,x=a y=1\nm,x=a y=2\nm,x=a x=3\nm,x=a y=4',
  rows: [
    row('m', 1, NOW, { x: 'a' }, { 'y:float64': 1, 'x_value:float64': null }),
    row('m', 2, NOW, { x: 'a' }, { 'y:float64': 2, 'x_value:float64': null }),
    row('m', 3, NOW, { x: 'a' }, { 'y:float64': null, 'x_value:float64': 3 }),
    row('m', 4, NOW, { x: 'a' }, { 'y:float64': 4, 'x_value:float64': null }),
  ],
});

for (const c of cases) {
  test(c.name, () => {
    const result = parseLineProtocol(c.body, c.precision ?? 'ns', NOW, c.firstLine);
    const expected = c.errors ?? [];
    assert.deepEqual(result.errors.first.map((e) => e.line), expected.map((e) => e.line), JSON.stringify(result.errors.first));
    expected.forEach((e, k) => {
      const message = result.errors.first[k].message;
      assert.ok(message.includes(e.includes), `message ${JSON.stringify(message)} lacks ${JSON.stringify(e.includes)}`);
      assert.doesNotMatch(message, /\bline\b/);
    });
    assert.deepStrictEqual(rowsOf(result), c.rows);
    assert.equal(result.accepted, c.rows.length);
    assertWellFormed(result);
  });
}

// The float fast path divides an exactly accumulated mantissa by an exact power of ten
// instead of calling Number(); it must give the very same double (sign of zero included)
// for every shape of decimal, and fall back where its digits would not be exact.
// A '\n' inside a quoted string field value is part of the value (InfluxDB's scanLine).
accepts('a string field value holding newlines (the next point is numbered by its physical line)',
  'logs,host=a msg="first line\nsecond line",n=1i 1\nlogs,host=a msg="ok",n=2i 2', [
    row('logs', 1, 0, { host: 'a' }, { 'msg:string': 'first line\nsecond line', 'n:int64': 1n }),
    row('logs', 3, 0, { host: 'a' }, { 'msg:string': 'ok', 'n:int64': 2n }),
  ]);
accepts('a multi-line string with escaped quotes, a tab and CRLF line ends',
  'logs msg="Traceback:\r\n  File \\"a.py\\"\n\tline 2" 5\r\nlogs msg="x" 6\r\n', [
    row('logs', 1, 0, {}, { 'msg:string': 'Traceback:\r\n  File "a.py"\n\tline 2' }),
    row('logs', 4, 0, {}, { 'msg:string': 'x' }),
  ], 'us');
accepts('quotes in tags, keys and comments do not open a string', '# say "hi\nm,t=a"b v=1 1\nm,t=c v=2 2', [
  row('m', 2, 0, { t: 'a"b' }, { 'v:float64': 1 }),
  row('m', 3, 0, { t: 'c' }, { 'v:float64': 2 }),
], 'us');
rejects('a bad line after a multi-line string, named by its physical line', 'm s="a\nb",x=nope', 'invalid field value for "x"');

test('an unterminated quote does not take the lines after it: each stands alone, and a run of them stays linear', () => {
  const result = parseLineProtocol('m s="a\nm v=1\nm s="b\nm v=2\n', 'ns', NOW);
  assert.deepEqual(result.errors.first.map((e) => e.line), [1, 3]);
  assert.equal(result.accepted, 2);
  // Each of these lines, read across '\n's, would run to the end of the text.
  const many = parseLineProtocol('m s="x\n'.repeat(20_000), 'ns', NOW);
  assert.equal(many.errors.count, 20_000);
  assert.ok(many.errors.first.every((e) => e.message.includes('unterminated string')));
});

test('a line without a timestamp gets the server time truncated to the precision, as InfluxDB stores it', () => {
  // 2026-01-01T01:02:03.456789Z
  const now = NOW + 3_723_456_789;
  const expected: [Precision, number][] = [
    ['ns', now], ['us', now], ['ms', NOW + 3_723_456_000], ['s', NOW + 3_723_000_000], ['m', NOW + 3_720_000_000], ['h', NOW + 3_600_000_000],
  ];
  for (const [precision, us] of expected) {
    assert.deepEqual(Array.from(parseLineProtocol('m v=1', precision, now).batches[0].time), [us], precision);
  }
});

test('parses random decimals to the same double as Number()', () => {
  let seed = 0x5eed;
  // mulberry32: deterministic, so a failure reproduces.
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const digits = (count: number): string => {
    let s = '';
    for (let k = 0; k < count; k++) s += String(Math.floor(random() * 10));
    return s;
  };
  const decimal = (): string => {
    const sign = random() < 0.3 ? '-' : '';
    const shape = random();
    if (shape < 0.05) return `${sign}.5`;
    if (shape < 0.1) return `${sign}${digits(1 + Math.floor(random() * 17))}.`;
    // Up to 22 digits on either side: across the 2^53 and 1e22 limits of the fast path.
    let int = random() < 0.15 ? '' : digits(1 + Math.floor(random() * 22));
    let frac = digits(Math.floor(random() * 23));
    if (random() < 0.2) int = `${'0'.repeat(1 + Math.floor(random() * 4))}${int}`;
    if (random() < 0.2) frac += '0'.repeat(1 + Math.floor(random() * 4));
    if (int === '' && frac === '') frac = '0';
    const exponent = random() < 0.05 ? `e${random() < 0.5 ? '-' : ''}${Math.floor(random() * 30)}` : '';
    return `${sign}${int}.${frac}${exponent}`;
  };
  const texts = Array.from({ length: 120_000 }, (_, k) => (k % 7 === 0 ? decimal().replace('.', '') || '0' : decimal()));
  const result = parseLineProtocol(texts.map((t) => `m v=${t}`).join('\n'), 'ns', NOW);
  assert.deepEqual(result.errors.first, []);
  const [batch] = result.batches;
  const values = batch.fields.find((f) => f.name === 'v')!.values as Float64Array;
  assert.equal(values.length, texts.length);
  for (let k = 0; k < texts.length; k++) {
    if (!Object.is(values[k], Number(texts[k]))) assert.fail(`${texts[k]}: parsed ${values[k]}, Number() gives ${Number(texts[k])}`);
  }
});

// A batch's columns are dense: one batch for lines that each bring a new key held
// rows × keys slots (10,000 such lines: 100 M slots, some 900 MB, before the buffer
// refused all but the first keys). The builder splits such lines into batches whose
// slots stay in proportion to the values they hold.
test('sparse lines (each with a field key of its own) cost slots in proportion to their values, not lines × keys', () => {
  const n = 5000;
  const body = Array.from({ length: n }, (_, k) => `m,host=h${k % 3} f${k}=${k}i ${k}`).join('\n');
  const result = parseLineProtocol(body, 'ns', NOW);
  assert.deepEqual(result.errors.first, []);
  assert.equal(result.accepted, n);
  assertWellFormed(result);
  let slots = 0;
  for (const b of result.batches) slots += b.rowCount * (b.tags.length + b.fields.length);
  assert.ok(slots <= 64 * n, `${slots} column slots for ${n} lines of two values each`);
  const rows = rowsOf(result);
  assert.equal(rows.length, n);
  rows.forEach((r, k) => {
    assert.equal(r.line, k + 1);
    assert.deepEqual(r.tags, { host: `h${k % 3}` });
    assert.equal(r.fields[`f${k}:int64`], BigInt(k));
    assert.equal(Object.values(r.fields).filter((v) => v !== null).length, 1);
  });
});

test('dense lines stay one batch', () => {
  const body = Array.from({ length: 3000 }, (_, k) => `m,host=h${k % 3},dc=d${k % 2} a=${k},b=${k}i,c=t ${k}`).join('\n');
  const result = parseLineProtocol(body, 'ns', NOW);
  assert.equal(result.batches.length, 1);
  assert.equal(result.batches[0].rowCount, 3000);
});

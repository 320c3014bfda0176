import assert from 'node:assert/strict';
import { constants } from 'node:buffer';
import { test } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import { CpuGenerator, FIELD_KEYS, TAG_KEYS } from '../../../bench/tsbs.js';
import { BadRequestError } from '../../errors.js';
import type { ColumnarBatch } from '../batch.js';
import { LineErrors } from '../line-errors.js';
import { parseMsgpack } from './parser.js';

const NOW = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in µs
const packr = { pack: (v: unknown): Buffer => Buffer.from(encode(v, { useBigInt64: true })) };
const pack = (v: unknown): Uint8Array => packr.pack(v);

// --- A minimal encoder for payloads that need exact wire types (@msgpack/msgpack sends 95.0 as an int). ---

/** Bytes to splice in as one value. */
class Wire {
  constructor(readonly bytes: number[]) {}
}
function beBytes(n: number, write: (v: DataView) => void): number[] {
  const v = new DataView(new ArrayBuffer(n));
  write(v);
  return [...new Uint8Array(v.buffer)];
}
const f64 = (x: number) => new Wire([0xcb, ...beBytes(8, (v) => v.setFloat64(0, x))]);
const f32 = (x: number) => new Wire([0xca, ...beBytes(4, (v) => v.setFloat32(0, x))]);
const i64 = (x: bigint) => new Wire([0xd3, ...beBytes(8, (v) => v.setBigInt64(0, x))]);
const u64 = (x: bigint) => new Wire([0xcf, ...beBytes(8, (v) => v.setBigUint64(0, x))]);
/** A str whose bytes are given as is (possibly invalid UTF-8). */
const rawStr = (bytes: number[]) => new Wire([0xd9, bytes.length, ...bytes]);

/** Encodes `value`; integers as the smallest int family, other numbers as float64, Map for non-string keys. */
function enc(value: unknown): Uint8Array {
  const out: number[] = [];
  const put = (x: unknown): void => {
    if (x instanceof Wire) for (const b of x.bytes) out.push(b);
    else if (x === null || x === undefined) out.push(0xc0);
    else if (typeof x === 'boolean') out.push(x ? 0xc3 : 0xc2);
    else if (typeof x === 'number' && Number.isInteger(x) && Math.abs(x) < 2 ** 31) {
      if (x >= 0 && x < 128) out.push(x);
      else if (x < 0 && x >= -32) out.push(x & 0xff);
      else out.push(0xd2, ...beBytes(4, (v) => v.setInt32(0, x)));
    } else if (typeof x === 'number') out.push(...f64(x).bytes);
    else if (typeof x === 'string') {
      const b = [...Buffer.from(x, 'utf8')];
      if (b.length < 32) out.push(0xa0 | b.length, ...b);
      else out.push(0xda, ...beBytes(2, (v) => v.setUint16(0, b.length)), ...b);
    } else if (x instanceof Uint8Array) out.push(0xc4, x.length, ...x);
    else if (Array.isArray(x)) {
      out.push(0xdc, ...beBytes(2, (v) => v.setUint16(0, x.length)));
      x.forEach(put);
    } else {
      const entries = x instanceof Map ? [...x.entries()] : Object.entries(x as object);
      out.push(0xde, ...beBytes(2, (v) => v.setUint16(0, entries.length)));
      for (const [k, v] of entries) {
        put(k);
        put(v);
      }
    }
  };
  put(value);
  return Uint8Array.from(out);
}

// --- Reading values back out of batches. ---

function batchOf(batches: ColumnarBatch[], measurement: string): ColumnarBatch {
  const found = batches.filter((b) => b.measurement === measurement);
  assert.equal(found.length, 1, `one batch for ${measurement}`);
  return found[0];
}
function tag(b: ColumnarBatch, name: string): (string | null)[] {
  const col = b.tags.find((t) => t.name === name);
  assert.ok(col, `tag column ${name}`);
  return Array.from(col.codes, (c) => (c === 0 ? null : col.dictionary[c - 1]));
}
function field(b: ColumnarBatch, name: string): { type: string; values: unknown[] } {
  const cols = b.fields.filter((f) => f.name === name);
  assert.equal(cols.length, 1, `one field column ${name}`);
  const col = cols[0];
  const values: unknown[] = [];
  for (let i = 0; i < b.rowCount; i++) values.push(col.valid[i] === 0 ? null : col.type === 'bool' ? col.values[i] === 1 : col.values[i]);
  return { type: col.type, values };
}
const tagNames = (b: ColumnarBatch) => b.tags.map((t) => t.name).sort();
const fieldNames = (b: ColumnarBatch) => b.fields.map((f) => f.name).sort();
const times = (b: ColumnarBatch) => Array.from(b.time);

function parse(body: Uint8Array) {
  return parseMsgpack(body, NOW);
}
function assertBadRequest(body: Uint8Array, pattern: RegExp): void {
  assert.throws(() => parse(body), (e: unknown) => {
    assert.ok(e instanceof BadRequestError, `BadRequestError, got ${String(e)}`);
    assert.match(e.message, /^Invalid MessagePack payload: /);
    assert.match(e.message, pattern);
    return true;
  });
}

// --- Shapes ---

test('single columnar item: string columns become tags, numbers fields, ms times', () => {
  const r = parse(pack({
    m: 'cpu',
    columns: { time: [1_767_225_600_000, 1_767_225_601_000, 1_767_225_602_000], host: ['a', 'b', 'a'], usage: [1.5, 2.25, -3.5], count: [1, -2, 300000] },
  }));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 3);
  assert.equal(r.batches.length, 1);
  const b = r.batches[0];
  assert.equal(b.measurement, 'cpu');
  assert.equal(b.rowCount, 3);
  assert.deepEqual(times(b), [NOW, NOW + 1_000_000, NOW + 2_000_000]);
  assert.deepEqual(tagNames(b), ['host']);
  assert.deepEqual(tag(b, 'host'), ['a', 'b', 'a']);
  assert.deepEqual(b.tags[0].dictionary, ['a', 'b']);
  assert.deepEqual(field(b, 'usage'), { type: 'float64', values: [1.5, 2.25, -3.5] });
  assert.deepEqual(field(b, 'count'), { type: 'int64', values: [1n, -2n, 300000n] });
  assert.deepEqual(Array.from(b.sourceLine), [0, 0, 0]);
});

test("a columnar item's tag list, as 'tags' or as current Arc clients' 'tag_keys': the strings it does not name are string fields", () => {
  for (const key of ['tags', 'tag_keys']) {
    const r = parse(pack({ m: 'logs', [key]: ['host'], columns: { time: [1_767_225_600_000], host: ['a'], msg: ['disk full'] } }));
    assert.deepEqual(r.errors.first, [], key);
    const b = r.batches[0];
    assert.deepEqual(tagNames(b), ['host'], key);
    assert.deepEqual(field(b, 'msg'), { type: 'string', values: ['disk full'] }, key);
  }
  // A nil list (a Go client's nil slice) is none, as Arc reads it; so is a row item's nil tags.
  const nil = parse(enc([
    { m: 'n', tag_keys: null, columns: { time: [1_767_225_600], host: ['h'] } },
    { m: 'n', tags: null, columns: { time: [1_767_225_601], host: ['i'] } },
    { m: 'nr', t: 1_767_225_600, tags: null, fields: { v: 1.5 } },
  ]));
  assert.deepEqual(nil.errors.first, []);
  assert.equal(nil.accepted, 3);
  // In a row item, whose tags are a map, 'tag_keys' means nothing and is ignored.
  const row = parse(pack({ m: 'logs', t: 1_767_225_600_000, tag_keys: ['x'], tags: { host: 'a' }, fields: { msg: 'ok' } }));
  assert.deepEqual(row.errors.first, []);
  assert.deepEqual(tagNames(row.batches[0]), ['host']);
});

test('single row item: tags, fields and a per-row time', () => {
  const r = parse(pack({ m: 'cpu', t: 1_767_225_600_000, h: 'srv1', tags: { region: 'eu' }, fields: { usage: 95.5, n: 3, ok: true, note: 'hi' } }));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 1);
  const b = batchOf(r.batches, 'cpu');
  assert.deepEqual(times(b), [NOW]);
  assert.deepEqual(tagNames(b), ['host', 'region']);
  assert.deepEqual(tag(b, 'host'), ['srv1']);
  assert.deepEqual(tag(b, 'region'), ['eu']);
  assert.deepEqual(field(b, 'usage'), { type: 'float64', values: [95.5] });
  assert.deepEqual(field(b, 'n'), { type: 'int64', values: [3n] });
  assert.deepEqual(field(b, 'ok'), { type: 'bool', values: [true] });
  assert.deepEqual(field(b, 'note'), { type: 'string', values: ['hi'] });
});

test('batch map: every item decoded, sourceLine is the item index', () => {
  const r = parse(pack({ batch: [
    { m: 'cpu', columns: { time: [1_767_225_600], v: [0.5] } },
    { m: 'mem', columns: { time: [1_767_225_601, 1_767_225_602], used: [10, 20] } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 3);
  const mem = batchOf(r.batches, 'mem');
  assert.deepEqual(times(mem), [NOW + 1_000_000, NOW + 2_000_000]);
  assert.deepEqual(field(mem, 'used'), { type: 'int64', values: [10n, 20n] });
  assert.deepEqual(Array.from(mem.sourceLine), [1, 1]);
  assert.deepEqual(field(batchOf(r.batches, 'cpu'), 'v').values, [0.5]);
});

test('top-level array of row items: one batch per measurement, rows in order', () => {
  const r = parse(pack([
    { m: 'cpu', t: 1_767_225_600, fields: { v: 1.5 } },
    { m: 'mem', t: 1_767_225_600, fields: { free: 7 } },
    { m: 'cpu', t: 1_767_225_601, tags: { host: 'b' }, fields: { v: 2.5 } },
  ]));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 3);
  assert.equal(r.batches.length, 2);
  const cpu = batchOf(r.batches, 'cpu');
  assert.deepEqual(times(cpu), [NOW, NOW + 1_000_000]);
  assert.deepEqual(field(cpu, 'v').values, [1.5, 2.5]);
  assert.deepEqual(tag(cpu, 'host'), [null, 'b']);
  assert.deepEqual(Array.from(cpu.sourceLine), [0, 2]);
  assert.deepEqual(field(batchOf(r.batches, 'mem'), 'free').values, [7n]);
});

test('batch mixing columnar and row items', () => {
  const r = parse(pack({ batch: [
    { m: 'cpu', tags: { host: 'r' }, fields: { v: 1.5 }, t: 1_767_225_600 },
    { m: 'cpu', columns: { time: [1_767_225_601, 1_767_225_602], host: ['c1', 'c2'], v: [2.5, 3.5] } },
    { m: 'cpu', tags: { host: 'r2' }, fields: { v: 4.5 }, t: 1_767_225_603 },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 4);
  assert.equal(r.batches.length, 2);
  const [columnar, rows] = r.batches;
  assert.deepEqual(tag(columnar, 'host'), ['c1', 'c2']);
  assert.deepEqual(field(columnar, 'v').values, [2.5, 3.5]);
  assert.deepEqual(Array.from(columnar.sourceLine), [1, 1]);
  assert.deepEqual(tag(rows, 'host'), ['r', 'r2']);
  assert.deepEqual(times(rows), [NOW, NOW + 3_000_000]);
  assert.deepEqual(Array.from(rows.sourceLine), [0, 2]);
});

test("'batch' wins over sibling keys, even invalid ones", () => {
  const r = parse(enc(new Map<unknown, unknown>([
    ['m', 3.5],
    [7, 'non-string key'],
    ['columns', { a: [1, 2], b: [1] }],
    ['batch', [{ m: 'cpu', fields: { v: 1.5 } }]],
    ['fields', 'ignored'],
  ])));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 1);
  assert.deepEqual(times(batchOf(r.batches, 'cpu')), [NOW]);
});

test('unknown keys are ignored; a nested batch key is just an unknown key', () => {
  const r = parse(pack([{ m: 'cpu', fields: { v: 1.5 }, extra: { deep: [1, 2] }, batch: [{ m: 'x' }] }]));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(r.batches.map((b) => b.measurement), ['cpu']);
});

test("integer 'm' becomes measurement_<n>", () => {
  const r = parse(pack([{ m: 5, fields: { v: 1.5 } }, { m: 6, columns: { v: [1.5] } }]));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(r.batches.map((b) => b.measurement).sort(), ['measurement_5', 'measurement_6']);
});

// --- Time ---

test('columnar time unit is guessed from the first value: s, ms, µs, ns', () => {
  const r = parse(enc({ batch: [
    { m: 's', columns: { time: [1_767_225_600, 1_767_225_601], v: [1, 2] } },
    { m: 'ms', columns: { time: [1_767_225_600_000, 1_767_225_600_001], v: [1, 2] } },
    { m: 'us', columns: { time: [u64(1_767_225_600_000_000n), u64(1_767_225_600_000_001n)], v: [1, 2] } },
    { m: 'ns', columns: { time: [i64(1_767_225_600_000_000_000n), i64(1_767_225_600_000_001_999n)], v: [1, 2] } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(batchOf(r.batches, 's')), [NOW, NOW + 1_000_000]);
  assert.deepEqual(times(batchOf(r.batches, 'ms')), [NOW, NOW + 1_000]);
  assert.deepEqual(times(batchOf(r.batches, 'us')), [NOW, NOW + 1]);
  assert.deepEqual(times(batchOf(r.batches, 'ns')), [NOW, NOW + 1]);
});

test('the first value decides the unit for the whole column', () => {
  // 1e12 reads as ms, so the later small value is taken as ms too (Arc's rule).
  const r = parse(enc({ m: 'cpu', columns: { time: [1_767_225_600_000, 5], v: [1, 2] } }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(r.batches[0]), [NOW, 5_000]);
});

test('float times: fractions are floored to whole µs', () => {
  const r = parse(enc({ batch: [
    { m: 'cpu', columns: { time: [1_767_225_600.25, f64(1_767_225_601)], v: [1, 2] } },
    { m: 'mem', t: 1_767_225_600_000.0015, fields: { v: 1 } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(batchOf(r.batches, 'cpu')), [NOW + 250_000, NOW + 1_000_000]);
  assert.deepEqual(times(batchOf(r.batches, 'mem')), [NOW + 1]);
});

test('negative (pre-1970) times', () => {
  const r = parse(enc({ batch: [
    { m: 'cols', columns: { time: [-86_400, -1.5], v: [1, 2] } },
    { m: 'rows', t: -86_400_000_000_000, fields: { v: 1 } },
    { m: 'rows', t: i64(-1_000_000_000_000_000_001n), fields: { v: 2 } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(batchOf(r.batches, 'cols')), [-86_400_000_000, -1_500_000]);
  // -86400e12 reads as µs; the ns value beyond 2^53 is floored exactly.
  assert.deepEqual(times(batchOf(r.batches, 'rows')), [-86_400_000_000_000, -1_000_000_000_000_001]);
});

test('row time unit is guessed per row', () => {
  const r = parse(enc([
    { m: 'cpu', t: 1_767_225_600, fields: { v: 1 } },
    { m: 'cpu', t: u64(1_767_225_600_000_000_000n), fields: { v: 2 } },
    { m: 'cpu', t: 1_767_225_600_000, fields: { v: 3 } },
  ]));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(r.batches[0]), [NOW, NOW, NOW]);
});

test('missing time → nowUs: no time column, an empty one, no t, nil t', () => {
  const r = parse(enc({ batch: [
    { m: 'a', columns: { v: [1, 2] } },
    { m: 'b', columns: { time: [], v: [1, 2] } },
    { m: 'c', fields: { v: 1 } },
    { m: 'c', t: null, fields: { v: 2 } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(batchOf(r.batches, 'a')), [NOW, NOW]);
  assert.deepEqual(times(batchOf(r.batches, 'b')), [NOW, NOW]);
  assert.deepEqual(times(batchOf(r.batches, 'c')), [NOW, NOW]);
});

test('ns int64/uint64 times beyond 2^53 convert to exact µs', () => {
  const r = parse(enc({ m: 'cpu', columns: {
    time: [i64(1_767_225_600_123_456_789n), u64(9_007_199_254_740_990_999n), i64(-9_007_199_254_740_990_001n)],
    v: [1, 2, 3],
  } }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(times(r.batches[0]), [1_767_225_600_123_456, 9_007_199_254_740_990, -9_007_199_254_740_991]);
});

// --- Value typing ---

test('a whole-number float64 (0xcb 95.0) stays a float64 column and field', () => {
  const r = parse(enc({ batch: [
    { m: 'cols', columns: { usage: [f64(95), f64(96), f64(-0)] } },
    { m: 'rows', fields: { usage: f64(95) } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(field(batchOf(r.batches, 'cols'), 'usage'), { type: 'float64', values: [95, 96, -0] });
  assert.deepEqual(field(batchOf(r.batches, 'rows'), 'usage'), { type: 'float64', values: [95] });
});

test('float32 values become float64', () => {
  const r = parse(enc({ batch: [
    { m: 'cols', columns: { v: [f32(0.5), f32(1.25), f32(3)] } },
    { m: 'rows', fields: { v: f32(-2.5), w: f32(0.1) } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(field(batchOf(r.batches, 'cols'), 'v'), { type: 'float64', values: [0.5, 1.25, 3] });
  const rows = batchOf(r.batches, 'rows');
  assert.deepEqual(field(rows, 'v'), { type: 'float64', values: [-2.5] });
  assert.deepEqual(field(rows, 'w'), { type: 'float64', values: [Math.fround(0.1)] });
});

test('int64 and uint64 beyond 2^53 stay exact (BigInt64Array)', () => {
  const big = 9_007_199_254_740_993n; // 2^53 + 1
  const r = parse(enc({ batch: [
    { m: 'cols', columns: { n: [i64(big), u64(9_223_372_036_854_775_807n), i64(-big), 2 ** 30, -5, u64(4_294_967_296n)] } },
    { m: 'rows', fields: { a: i64(-big), b: u64(big) } },
  ] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(field(batchOf(r.batches, 'cols'), 'n'), {
    type: 'int64', values: [big, 9_223_372_036_854_775_807n, -big, 1_073_741_824n, -5n, 4_294_967_296n],
  });
  const rows = batchOf(r.batches, 'rows');
  assert.deepEqual(field(rows, 'a'), { type: 'int64', values: [-big] });
  assert.deepEqual(field(rows, 'b'), { type: 'int64', values: [big] });
});

test('every integer width types int64, every float width float64', () => {
  const widths = [5, -5, new Wire([0xcc, 200]), new Wire([0xcd, 1, 0]), new Wire([0xce, 0, 1, 0, 0]), new Wire([0xd0, 0x80]),
    new Wire([0xd1, 0xff, 0]), new Wire([0xd2, 0xff, 0xff, 0xff, 0xff]), i64(7n), u64(8n)];
  const r = parse(enc({ m: 'cpu', columns: { n: widths, x: widths.map(() => f32(1)) } }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(field(r.batches[0], 'n'), { type: 'int64', values: [5n, -5n, 200n, 256n, 65536n, -128n, -256n, -1n, 7n, 8n] });
  assert.equal(field(r.batches[0], 'x').type, 'float64');
});

test('a column mixing ints and floats becomes float64 without truncation', () => {
  const r = parse(enc({ m: 'cpu', columns: { v: [1, 2.5, i64(3n), f64(4)] } }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(field(r.batches[0], 'v'), { type: 'float64', values: [1, 2.5, 3, 4] });
});

test('integer columns within ±2^53 are marked as maybe whole floats; larger ones, and every one when replaying an old log, are not', () => {
  const big = 9_007_199_254_740_993n; // 2^53 + 1
  const payload = enc([
    { m: 'rows', t: 1_767_225_600, fields: { v: 1, n: 7 } },
    { m: 'rows', t: 1_767_225_601, fields: { v: 2.5, n: i64(-(2n ** 53n)) } },
    { m: 'cols', columns: { time: [1_767_225_600, 1_767_225_601], v: [1, i64(big)], w: [3, 4] } },
  ]);
  const marks = (r: ReturnType<typeof parse>) => r.batches.flatMap((b) => b.fields.map((f) => `${b.measurement}.${f.name} ${f.type}${f.type === 'int64' && f.mayBeFloat === true ? ' maybe float' : ''}`)).sort();
  const r = parse(payload);
  assert.deepEqual(r.errors.first, []);
  // The buffer decides (`SchemaRegistry.widen`): the row items' `v` is still two columns here.
  assert.deepEqual(marks(r), ['cols.v int64', 'cols.w int64 maybe float', 'rows.n int64 maybe float', 'rows.v float64', 'rows.v int64 maybe float']);
  assert.deepEqual(marks(parseMsgpack(payload, NOW, { wholeFloats: false, nonFinite: false, guessedTags: false })), ['cols.v int64', 'cols.w int64', 'rows.n int64', 'rows.v float64', 'rows.v int64']);
});

test('nil → NULL in every column type; an all-nil column is skipped', () => {
  const r = parse(enc({ m: 'cpu', tags: ['host'], columns: {
    host: [null, 'a', null], f: [1.5, null, 2.5], i: [null, null, 3], b: [true, null, false], s: [null, 'x', null], none: [null, null, null],
  } }));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(tag(b, 'host'), [null, 'a', null]);
  assert.deepEqual(field(b, 'f'), { type: 'float64', values: [1.5, null, 2.5] });
  assert.deepEqual(field(b, 'i'), { type: 'int64', values: [null, null, 3n] });
  assert.deepEqual(field(b, 'b'), { type: 'bool', values: [true, null, false] });
  assert.deepEqual(field(b, 's'), { type: 'string', values: [null, 'x', null] });
  assert.deepEqual(fieldNames(b), ['b', 'f', 'i', 's']);
});

test('row fields: nil values are absent; the column is NULL in that row', () => {
  const r = parse(pack([{ m: 'cpu', fields: { a: 1.5, b: null } }, { m: 'cpu', fields: { a: null, b: 2.5 } }]));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(field(b, 'a').values, [1.5, null]);
  assert.deepEqual(field(b, 'b').values, [null, 2.5]);
});

test("explicit columnar 'tags' list: only those columns are tags, other strings are string fields", () => {
  const r = parse(pack({ m: 'log', tags: ['host', 'missing'], columns: { host: ['a', 'a', null], msg: ['x', 'y', 'x'], level: [1, 2, 3] } }));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(tagNames(b), ['host']);
  assert.deepEqual(tag(b, 'host'), ['a', 'a', null]);
  assert.deepEqual(field(b, 'msg'), { type: 'string', values: ['x', 'y', 'x'] });
  assert.deepEqual(field(b, 'level'), { type: 'int64', values: [1n, 2n, 3n] });
});

test('strings: UTF-8 decoded, long strings, BOMs and U+FFFD kept as sent', () => {
  const long = 'ü'.repeat(40);
  const r = parse(enc({ m: 'cpu', tags: ['t'], columns: {
    t: ['é', '日本', '😀', 'a\ufffd', long, long, rawStr([0xef, 0xbb, 0xbf, 0x62])],
    s: ['\ufffd(\ufffd', 'ok', long, 'x'.repeat(300), null, null, null],
  } }));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(tag(b, 't'), ['é', '日本', '😀', 'a\ufffd', long, long, '\ufeffb']);
  assert.deepEqual(field(b, 's').values, ['\ufffd(\ufffd', 'ok', long, 'x'.repeat(300), null, null, null]);
});

test('row strings: UTF-8 keys, tag values and string fields', () => {
  const r = parse(enc({ m: 'météo', tags: { 'città': 'Zürich' }, fields: { 'température': 21.5, note: '\ufffd' } }));
  assert.deepEqual(r.errors.first, []);
  const b = batchOf(r.batches, 'météo');
  assert.deepEqual(tag(b, 'città'), ['Zürich']);
  assert.deepEqual(field(b, 'température').values, [21.5]);
  assert.deepEqual(field(b, 'note').values, ['\ufffd']);
});

// Decoded with U+FFFD for the bad bytes, `a\xff` and `a\xc3` were one tag value, and two
// tag keys one column that kept one of their values.
test('a str that is not UTF-8 rejects its item, wherever it is; the other items are kept', () => {
  const bad = rawStr([0x61, 0xff]);
  const long = rawStr([...Buffer.from('x'.repeat(100)), 0xc3]);
  const items = [
    { m: 'cpu', tags: ['t'], columns: { t: ['ok', bad] } },
    { m: 'cpu', columns: { s: [long] } },
    { m: 'cpu', columns: new Map<unknown, unknown>([[bad, [1]]]) },
    { m: 'cpu', tags: new Map<unknown, unknown>([[rawStr([0x61, 0xfe]), 'x'], [bad, 'y']]), fields: { v: 1 } },
    { m: 'cpu', tags: { t: bad }, fields: { v: 1 } },
    { m: 'cpu', fields: new Map<unknown, unknown>([[bad, 1]]) },
    { m: 'cpu', fields: { s: long } },
    { m: bad, fields: { v: 1 } },
    { m: 'cpu', h: bad, fields: { v: 1 } },
    new Map<unknown, unknown>([['m', 'cpu'], [bad, 1], ['fields', { v: 1 }]]),
    { m: 'cpu', fields: { v: 2 } },
  ];
  const r = parse(enc(items));
  assert.deepEqual(r.errors.first.map((e) => e.line), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const e of r.errors.first) assert.match(e.message, /^string at byte \d+ is not valid UTF-8$/);
  assert.equal(r.accepted, 1);
  assert.deepEqual(field(batchOf(r.batches, 'cpu'), 'v').values, [2n]);
});

// V8 cannot hold a longer string: decoding it threw, and the write failed with a 500.
test('a str longer than the longest string rejects its item; the other items are kept', () => {
  const item = (s: string): Buffer => Buffer.from(encode({ m: 'cpu', fields: { s } }));
  // The last byte of the second item is its empty str (0xa0), replaced by a str32 header and data.
  const [first, second, third] = [item('a'), item(''), item('c')];
  const length = constants.MAX_STRING_LENGTH + 1;
  const body = Buffer.alloc(1 + first.length + second.length - 1 + 5 + length + third.length, 0x78);
  let at = body.writeUInt8(0x93, 0);
  at += first.copy(body, at);
  at += second.copy(body, at, 0, second.length - 1);
  at = body.writeUInt8(0xdb, at);
  at = body.writeUInt32BE(length, at);
  third.copy(body, at + length);
  const r = parse(body);
  assert.deepEqual(r.errors.first.map((e) => e.line), [1]);
  assert.match(r.errors.first[0].message, new RegExp(`^string at byte \\d+ is longer than ${constants.MAX_STRING_LENGTH} bytes$`));
  assert.deepEqual(field(batchOf(r.batches, 'cpu'), 's').values, ['a', 'c']);
});

test('bools: columns and row fields', () => {
  const r = parse(pack({ batch: [{ m: 'c', columns: { up: [true, false, true] } }, { m: 'r', fields: { up: false } }] }));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(field(batchOf(r.batches, 'c'), 'up'), { type: 'bool', values: [true, false, true] });
  assert.deepEqual(field(batchOf(r.batches, 'r'), 'up'), { type: 'bool', values: [false] });
});

test('row tag values: numbers and bools are stringified, nil tags are absent', () => {
  const r = parse(enc({ m: 'cpu', tags: { a: 7, b: 2.5, c: true, d: null, e: u64(18_446_744_073_709_551_615n) }, fields: { v: 1 } }));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(tagNames(b), ['a', 'b', 'c', 'e']);
  assert.deepEqual([tag(b, 'a'), tag(b, 'b'), tag(b, 'c'), tag(b, 'e')], [['7'], ['2.5'], ['true'], ['18446744073709551615']]);
});

test("'f' array: fields field_0, field_1, …", () => {
  const r = parse(enc({ m: 'cpu', f: [1.5, 2, 'x', null, true] }));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(fieldNames(b), ['field_0', 'field_1', 'field_2', 'field_4']);
  assert.deepEqual([field(b, 'field_0').values, field(b, 'field_1').values, field(b, 'field_2').values, field(b, 'field_4').values],
    [[1.5], [2n], ['x'], [true]]);
});

// --- Host ---

test("'h' present: string → host tag, integer → host_<n>", () => {
  const r = parse(pack([{ m: 'cpu', h: 'srv1', fields: { v: 1 } }, { m: 'cpu', h: 7, fields: { v: 2 } }]));
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(tag(r.batches[0], 'host'), ['srv1', 'host_7']);
});

test("'h' absent: no host tag is added (no 'unknown') and tags.host is kept", () => {
  const r = parse(pack([{ m: 'cpu', fields: { v: 1 } }, { m: 'cpu', tags: { host: 'mine' }, fields: { v: 2 } }, { m: 'cpu', h: null, fields: { v: 3 } }]));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(tag(b, 'host'), [null, 'mine', null]);
  assert.ok(!b.tags[0].dictionary.includes('unknown'));
});

test("'h' present wins over tags.host, as in Arc", () => {
  const r = parse(pack({ m: 'cpu', h: 'from-h', tags: { host: 'from-tags' }, fields: { v: 1 } }));
  assert.deepEqual(tag(r.batches[0], 'host'), ['from-h']);
});

test('a field named like a tag is stored as <name>_value', () => {
  const r = parse(pack({ m: 'cpu', h: 'srv', tags: { region: 'eu' }, fields: { region: 1.5, host: 'x', other: 2.5 } }));
  assert.deepEqual(r.errors.first, []);
  const b = r.batches[0];
  assert.deepEqual(fieldNames(b), ['host_value', 'other', 'region_value']);
  assert.deepEqual(field(b, 'region_value').values, [1.5]);
  assert.deepEqual(field(b, 'host_value').values, ['x']);
  assert.deepEqual(tag(b, 'region'), ['eu']);
});

test('a field key repeated in one item: the last value wins, as in line protocol (no second column, no type conflict)', () => {
  // Encoders cannot repeat a map key: the maps are spliced in by hand.
  const map = (...entries: unknown[]) => new Wire([0x80 | (entries.length / 2), ...entries.flatMap((e) => [...enc(e)])]);
  const r = parse(enc([
    { m: 'cpu', t: 1_767_225_600, fields: map('v', 1, 'v', 2.5) },
    { m: 'cpu', t: 1_767_225_601, fields: map('v', 'text', 'w', true, 'v', 3.5) },
    // Folded before the tag rule: one `host_value`, not a clash with itself.
    { m: 'cpu', t: 1_767_225_602, tags: { host: 'a' }, fields: map('host', 1, 'host', 4.5) },
  ]));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 3);
  const b = batchOf(r.batches, 'cpu');
  assert.deepEqual(fieldNames(b), ['host_value', 'v', 'w']);
  assert.deepEqual(field(b, 'v'), { type: 'float64', values: [2.5, 3.5, null] });
  assert.deepEqual(field(b, 'w').values, [null, true, null]);
  assert.deepEqual(field(b, 'host_value').values, [null, null, 4.5]);
});

// --- Item errors: the bad item (index 1) is rejected with its message, items 0 and 2 survive. ---

const GOOD_ROW = { m: 'ok', t: 1_767_225_600, fields: { v: 1.5 } };
const GOOD_COLUMNS = { m: 'ok', columns: { time: [1_767_225_601], v: [2.5] } };
const itemErrors: [string, unknown, string][] = [
  ['missing m', { fields: { v: 1 } }, "missing required field 'm' (measurement)"],
  ['missing m (columnar)', { columns: { v: [1] } }, "missing required field 'm' (measurement)"],
  ['m of another type', { m: 1.5, fields: { v: 1 } }, 'invalid measurement type: float'],
  ['bad measurement name', { m: 'a/b', fields: { v: 1 } }, 'measurement "a/b" contains "/"'],
  ['neither fields nor f', { m: 'cpu', tags: { a: 'b' } }, "missing required field 'fields' or 'f'"],
  ['fields not a map', { m: 'cpu', fields: [1] }, "'fields' must be a map (got array)"],
  ['f not an array', { m: 'cpu', f: 1 }, "'f' must be an array (got int)"],
  ['only nil fields', { m: 'cpu', fields: { v: null } }, 'item has no non-nil field'],
  ['field of unsupported type', { m: 'cpu', fields: { v: [1, 2] } }, "field 'v' has unsupported value type array"],
  ['bin field', { m: 'cpu', fields: { v: new Uint8Array([1]) } }, "field 'v' has unsupported value type bin"],
  ['uint64 field above int64', { m: 'cpu', fields: { v: u64(9_223_372_036_854_775_808n) } }, "field 'v': uint64 value 9223372036854775808 exceeds the int64 range"],
  ['field named time', { m: 'cpu', fields: { time: 1 } }, 'field key "time" is reserved for the timestamp'],
  ['tags not a map', { m: 'cpu', tags: 'x', fields: { v: 1 } }, "'tags' must be a map (got string)"],
  ['tag of unsupported type', { m: 'cpu', tags: { a: { b: 1 } }, fields: { v: 1 } }, "tag 'a' has unsupported value type map"],
  ['non-string field key', { m: 'cpu', fields: new Map([[1, 2]]) }, "'fields' has a key that is not a string (got int)"],
  ['non-string item key', new Map<unknown, unknown>([['m', 'cpu'], [true, 1], ['fields', { v: 1 }]]), 'item key is not a string (got bool)'],
  ['h of another type', { m: 'cpu', h: 1.5, fields: { v: 1 } }, "invalid 'h' (host) type: float (expected a string or an integer)"],
  ['t not a number', { m: 'cpu', t: '2024', fields: { v: 1 } }, "invalid timestamp 't': string (expected a number)"],
  ['t out of range', { m: 'cpu', t: 1e300, fields: { v: 1 } }, 'timestamp 1e+300 is out of range'],
  ['item not a map', 'just a string', 'item is not a map (got string)'],
  ['empty columns', { m: 'cpu', columns: {} }, "columnar format requires non-empty 'columns' dict"],
  ['columns not a map', { m: 'cpu', columns: [1] }, "'columns' must be a map (got array)"],
  ['column not an array', { m: 'cpu', columns: { v: 1 } }, "column 'v' is not an array (got int)"],
  ['length mismatch', { m: 'cpu', columns: { time: [1, 2, 3], v: [1, 2] } }, "columnar format: array length mismatch (expected 3, got 2 for 'v')"],
  ['nil time', { m: 'cpu', columns: { time: [1, null], v: [1, 2] } }, "invalid timestamp at row 1 of column 'time': nil (expected a number)"],
  ['string time', { m: 'cpu', columns: { time: ['2024'], v: [1] } }, "invalid timestamp at row 0 of column 'time': string (expected a number)"],
  ['time out of range', { m: 'cpu', columns: { time: [1_767_225_600, 1e30], v: [1, 2] } }, 'timestamp 1e+30 at row 1 is out of range'],
  ['string mixed with numbers', { m: 'cpu', columns: { v: [1.5, 'x'] } }, "column 'v' mixes number and string values (row 1)"],
  ['number mixed into strings', { m: 'cpu', columns: { v: [null, 'x', 2] } }, "column 'v' mixes string and int values (row 2)"],
  ['bool mixed with numbers', { m: 'cpu', columns: { v: [true, 1] } }, "column 'v' mixes bool and int values (row 1)"],
  ['bin values', { m: 'cpu', columns: { v: [new Uint8Array([1])] } }, "column 'v' has unsupported value type bin at row 0"],
  ['array values', { m: 'cpu', columns: { v: [1, [2]] } }, "column 'v' has unsupported value type array at row 1"],
  ['map values', { m: 'cpu', columns: { v: [null, { a: 1 }] } }, "column 'v' has unsupported value type map at row 1"],
  ['uint64 column value above int64', { m: 'cpu', columns: { v: [1, u64(18_446_744_073_709_551_615n)] } }, "column 'v' row 1: uint64 value 18446744073709551615 exceeds the int64 range"],
  // A NaN alone is no value, as a nil is (see 'NaN is a missing value' below).
  ['only NaN fields', { m: 'cpu', fields: { v: f64(NaN), w: f32(NaN) } }, 'item has no non-nil field'],
  ['only NaN columns', { m: 'cpu', columns: { v: [f32(NaN), f64(NaN)] } }, "columnar item has no non-nil column besides 'time'"],
  // The time refuses them as out of range already.
  ['NaN t', { m: 'cpu', t: f64(NaN), fields: { v: 1 } }, 'timestamp NaN is out of range'],
  ['+Infinity float32 t', { m: 'cpu', t: f32(Infinity), fields: { v: 1 } }, 'timestamp Infinity is out of range'],
  ['NaN time', { m: 'cpu', columns: { time: [1_767_225_600, f64(NaN)], v: [1, 2] } }, 'timestamp NaN at row 1 is out of range'],
  ['-Infinity float32 time', { m: 'cpu', columns: { time: [f32(-Infinity)], v: [1] } }, 'timestamp -Infinity at row 0 is out of range'],
  ['duplicate column', { m: 'cpu', columns: new Wire([0x82, 0xa1, 0x76, 0x91, 0x01, 0xa1, 0x76, 0x91, 0x02]) }, "duplicate column 'v'"],
  ['non-string column name', { m: 'cpu', columns: new Map([[3, [1]]]) }, 'column name is not a string (got int)'],
  ['only a time column', { m: 'cpu', columns: { time: [1_767_225_600] } }, "columnar item has no non-nil column besides 'time'"],
  ['only all-nil columns', { m: 'cpu', columns: { v: [null] } }, "columnar item has no non-nil column besides 'time'"],
  ['tags list not an array', { m: 'cpu', tags: { a: 'b' }, columns: { v: [1] } }, "'tags' of a columnar item must be an array of column names (got map)"],
  ['tags list with a non-string', { m: 'cpu', tags: [1], columns: { v: [1] } }, "'tags' must hold column names (got int)"],
  ['tag_keys list not an array', { m: 'cpu', tag_keys: 'host', columns: { v: [1] } }, "'tag_keys' of a columnar item must be an array of column names (got string)"],
  ['tags and tag_keys both given', { m: 'cpu', tags: ['host'], tag_keys: ['host'], columns: { host: ['a'], v: [1] } }, "a columnar item gives both 'tags' and 'tag_keys': send one list of tag columns"],
  ['tags list naming time', { m: 'cpu', tags: ['time'], columns: { v: [1] } }, 'tag key "time" is reserved for the timestamp'],
  ['listed tag column with numbers', { m: 'cpu', tags: ['v'], columns: { v: [1, 2] } }, "tag column 'v' must hold strings or nil (got number values)"],
  ['column named with NUL', { m: 'cpu', columns: { 'a\u0000b': [1] } }, 'field key contains a NUL character'],
  ['a field named like a tag whose <name>_value is another field', { m: 'cpu', tags: { x: 'a' }, fields: { x: 1, x_value: 2 } },
    'field "x" has the name of a tag, so it would be stored as "x_value", but the field "x_value" is also given: rename one of them'],
  ['the same, <name>_value sent first', { m: 'cpu', tags: { x: 'a' }, fields: { x_value: 2, x: 1 } },
    'field "x" has the name of a tag, so it would be stored as "x_value", but the field "x_value" is also given: rename one of them'],
  ['a field named like a tag whose <name>_value is another tag', { m: 'cpu', tags: { x: 'a', x_value: 'b' }, fields: { x: 1 } },
    'field "x" has the name of a tag, so it would be stored as "x_value", but the tag "x_value" is also given: rename one of them'],
  ["a field named like 'h' whose host_value is another field", { m: 'cpu', h: 'srv', fields: { host: 1, host_value: 2 } },
    'field "host" has the name of a tag, so it would be stored as "host_value", but the field "host_value" is also given: rename one of them'],
];
for (const [name, item, message] of itemErrors) {
  test(`item error: ${name}`, () => {
    const r = parse(enc([GOOD_ROW, item, GOOD_COLUMNS]));
    assert.deepEqual(r.errors.first, [{ line: 1, message }]);
    assert.equal(r.accepted, 2);
    const rows = r.batches.filter((b) => b.measurement === 'ok');
    assert.deepEqual(rows.map((b) => Array.from(b.sourceLine)).sort(), [[0], [2]]);
    assert.deepEqual(rows.map((b) => field(b, 'v').values[0]).sort(), [1.5, 2.5]);
  });
}

test('NaN is a missing value (NULL) and ±Infinity a value, float64 (fast path) and float32 alike, in rows, f arrays and columns', () => {
  const r = parse(enc([
    { m: 'rows', t: 1_767_225_600, fields: { a: f64(NaN), b: f32(Infinity), c: 1.5 } },
    // A signalling NaN payload is a NaN too.
    { m: 'rows', t: 1_767_225_601, fields: { a: 2.5, b: new Wire([0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 1]), c: f64(-Infinity) } },
    { m: 'arrays', t: 1_767_225_600, f: [1.5, f64(NaN), f32(-Infinity)] },
    { m: 'cols', columns: { time: [1_767_225_600, 1_767_225_601, 1_767_225_602], v: [f64(NaN), 1.5, f64(Infinity)], w: [1, f32(NaN), f32(-Infinity)], x: [f32(NaN), null, 2], y: [f64(NaN), f32(NaN), null] } },
  ]));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 6);
  const rows = batchOf(r.batches, 'rows');
  assert.deepEqual(field(rows, 'a'), { type: 'float64', values: [null, 2.5] });
  assert.deepEqual(field(rows, 'b'), { type: 'float64', values: [Infinity, null] });
  assert.deepEqual(field(rows, 'c'), { type: 'float64', values: [1.5, -Infinity] });
  const arrays = batchOf(r.batches, 'arrays');
  assert.deepEqual(fieldNames(arrays), ['field_0', 'field_2']);
  assert.deepEqual(field(arrays, 'field_2'), { type: 'float64', values: [-Infinity] });
  const cols = batchOf(r.batches, 'cols');
  assert.deepEqual(field(cols, 'v'), { type: 'float64', values: [null, 1.5, Infinity] });
  assert.deepEqual(field(cols, 'w'), { type: 'float64', values: [1, null, -Infinity] });
  // A NaN gives its column no type, as a nil does: integers stay int64.
  assert.deepEqual(field(cols, 'x'), { type: 'int64', values: [null, null, 2n] });
  // Only NaN and nil, as a column of nils: no type to give it.
  assert.deepEqual(fieldNames(cols), ['v', 'w', 'x']);
});

test('a NaN is a missing value in a string, tag or bool column too (pandas gives gaps of object columns as NaN), and in a row item\'s tags', () => {
  const r = parse(enc([
    { m: 'cols', tags: ['h'], columns: { time: [1_767_225_600, 1_767_225_601, 1_767_225_602], h: [f64(NaN), 'a', f32(NaN)], s: ['x', f64(NaN), null], b: [f32(NaN), true, f64(NaN)], v: [1.5, 2.5, 3.5] } },
    { m: 'rows', t: 1_767_225_600, tags: { h: f64(NaN), k: 'kept' }, fields: { v: 1.5 } },
  ]));
  assert.deepEqual(r.errors.first, []);
  const cols = batchOf(r.batches, 'cols');
  assert.deepEqual(tag(cols, 'h'), [null, 'a', null]);
  assert.deepEqual(field(cols, 's'), { type: 'string', values: ['x', null, null] });
  assert.deepEqual(field(cols, 'b'), { type: 'bool', values: [null, true, null] });
  assert.deepEqual(tagNames(batchOf(r.batches, 'rows')), ['k']);
  // Under the rules of earlier versions, as they answered: a NaN in a string column mixes types.
  const old = parseMsgpack(enc([{ m: 'cols', columns: { s: ['x', f64(NaN)] } }]), NOW, { wholeFloats: true, nonFinite: false, guessedTags: false });
  assert.deepEqual(old.errors.first, [{ line: 0, message: "column 's' mixes string and float values (row 1)" }]);
});

test('under the rules of earlier versions (write-ahead-log replay), tag_keys is ignored and every string column of a columnar item without tags is a tag, never one that may be a field', () => {
  const rules = { wholeFloats: true, nonFinite: false, guessedTags: false };
  const r = parseMsgpack(enc([
    { m: 'a', tag_keys: ['host'], columns: { time: [1_767_225_600], host: ['h'], status: ['up'], v: [1.5] } },
    { m: 'b', tags: ['host'], tag_keys: ['host', 'status'], columns: { time: [1_767_225_600], host: ['h'], status: ['up'] } },
    { m: 'c', tag_keys: 'not a list', columns: { time: [1_767_225_600], host: ['h'] } },
  ]), NOW, rules);
  assert.deepEqual(r.errors.first, []);
  assert.deepEqual(tagNames(batchOf(r.batches, 'a')), ['host', 'status']);
  assert.deepEqual(batchOf(r.batches, 'a').tags.map((t) => t.mayBeField), [undefined, undefined]);
  assert.deepEqual([tagNames(batchOf(r.batches, 'b')), fieldNames(batchOf(r.batches, 'b'))], [['host'], ['status']]);
  assert.deepEqual(tagNames(batchOf(r.batches, 'c')), ['host']);
});

test('under the rules of earlier versions (write-ahead-log replay), NaN and ±Infinity refuse their item, naming it', () => {
  const rules = { wholeFloats: true, nonFinite: false, guessedTags: false };
  const cases: [unknown, string][] = [
    [{ m: 'cpu', fields: { v: f64(NaN) } }, "field 'v': float value NaN is not a finite number"],
    [{ m: 'cpu', fields: { a: 1.5, v: f32(Infinity) } }, "field 'v': float value Infinity is not a finite number"],
    [{ m: 'cpu', f: [1.5, f64(-Infinity)] }, "field 'field_1': float value -Infinity is not a finite number"],
    [{ m: 'cpu', columns: { v: [1.5, f64(NaN)] } }, "column 'v' row 1: float value NaN is not a finite number"],
    [{ m: 'cpu', columns: { time: [1_767_225_600, 1_767_225_601], v: [1, f32(-Infinity)] } }, "column 'v' row 1: float value -Infinity is not a finite number"],
  ];
  for (const [item, message] of cases) {
    const r = parseMsgpack(enc([GOOD_ROW, item]), NOW, rules);
    assert.deepEqual(r.errors.first, [{ line: 1, message }]);
    assert.equal(r.accepted, 1);
  }
});

test('a single-item payload with an item error reports it at line 0', () => {
  const r = parse(pack({ m: 'cpu', columns: { a: [1, 2], b: [1] } }));
  assert.deepEqual(r.errors.first, [{ line: 0, message: "columnar format: array length mismatch (expected 2, got 1 for 'b')" }]);
  assert.deepEqual(r.batches, []);
  assert.equal(r.accepted, 0);
});

test('a bad row item leaves no trace in the batch of its measurement', () => {
  const r = parse(pack([{ m: 'cpu', fields: { v: 1.5 } }, { m: 'cpu', tags: { extra: 'x' }, fields: { w: 2, bad: [1] } }, { m: 'cpu', fields: { v: 3.5 } }]));
  assert.equal(r.errors.count, 1);
  const b = r.batches[0];
  assert.equal(b.rowCount, 2);
  assert.deepEqual(tagNames(b), []);
  assert.deepEqual(fieldNames(b), ['v']);
  assert.deepEqual(field(b, 'v').values, [1.5, 3.5]);
});

test('columnar items with zero rows add nothing and report nothing', () => {
  const r = parse(pack({ m: 'cpu', columns: { time: [], v: [] } }));
  assert.deepEqual(r, { batches: [], errors: new LineErrors(), accepted: 0 });
});

// --- Payload-level errors ---

test('an empty body is a bad request', () => {
  assertBadRequest(new Uint8Array(0), /empty body/);
});

test('top-level values other than a map or an array are bad requests', () => {
  assertBadRequest(pack('hello'), /unsupported top-level type string \(expected a map or an array\)/);
  assertBadRequest(pack(42), /unsupported top-level type int/);
  assertBadRequest(Uint8Array.of(0xc0), /unsupported top-level type nil/);
  assertBadRequest(Uint8Array.of(0xc1), /invalid type byte 0xc1 at byte 0/);
  assertBadRequest(Buffer.from('cpu,host=a v=1 1\n'), /.+/);
});

test('an invalid type byte inside an item is a bad request, not an item error', () => {
  const body = enc([GOOD_ROW, new Wire([0x81, 0xa1, 0x6d, 0xc1])]);
  assertBadRequest(body, /invalid type byte 0xc1 at byte \d+/);
});

test('a truncated payload is a bad request wherever it is cut', () => {
  const full = pack({ m: 'cpu', h: 'x', tags: ['host'], columns: { time: [1_767_225_600_000, 1_767_225_600_001], host: ['alpha', 'beta'], v: [1.5, 2.5], n: [1, 2 ** 40] } });
  for (let cut = 1; cut < full.length; cut++) assertBadRequest(full.subarray(0, cut), /unexpected end of data/);
  const rows = pack([GOOD_ROW, GOOD_ROW]);
  for (let cut = 1; cut < rows.length; cut++) assertBadRequest(rows.subarray(0, cut), /unexpected end of data/);
});

test('a count larger than the body is rejected before allocating', () => {
  assertBadRequest(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), /unexpected end of data/);
  assertBadRequest(enc({ m: 'cpu', columns: { v: new Wire([0xdd, 0x7f, 0xff, 0xff, 0xff, 0xcb]) } }), /unexpected end of data/);
});

test('bytes after the top-level value are a bad request', () => {
  const one = pack({ m: 'cpu', fields: { v: 1.5 } });
  assertBadRequest(Buffer.concat([one, one]), new RegExp(`${one.length} trailing bytes after the top-level value`));
  assertBadRequest(Buffer.concat([pack([GOOD_ROW]), Uint8Array.of(0xc0)]), /1 trailing bytes/);
  assertBadRequest(Buffer.concat([pack({ batch: [GOOD_ROW] }), Uint8Array.of(0xc0)]), /1 trailing bytes/);
});

test("a 'batch' that is not an array is a bad request", () => {
  assertBadRequest(pack({ batch: { m: 'cpu' } }), /'batch' must be an array of items/);
});

test('deeply nested values in ignored keys are skipped without recursion', () => {
  const depth = 200_000;
  const nested = new Uint8Array(depth + 1).fill(0x91);
  nested[depth] = 0xc0;
  const r = parse(enc({ m: 'cpu', fields: { v: 1.5 }, junk: new Wire([...nested]) }));
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 1);
});

test('ext values (e.g. the timestamp extension) are unsupported values', () => {
  const ts = new Wire([0xd6, 0xff, 0x69, 0x55, 0xb9, 0x80]);
  const r = parse(enc([{ m: 'cpu', columns: { v: [ts] } }, { m: 'cpu', fields: { v: ts }, ext8: new Wire([0xc7, 1, 5, 0]) }]));
  assert.deepEqual(r.errors.first, [
    { line: 0, message: "column 'v' has unsupported value type ext at row 0" },
    { line: 1, message: "field 'v' has unsupported value type ext" },
  ]);
});

// --- Against the TSBS body that @msgpack/msgpack encodes ---

test('TSBS columnar body: every value matches what @msgpack/msgpack decodes', () => {
  const body = new CpuGenerator({ hosts: 100 }).msgpackColumnar(1000);
  const expected = decode(body) as { m: string; columns: Record<string, (string | number)[]> };
  const r = parse(body);
  assert.deepEqual(r.errors.first, []);
  assert.equal(r.accepted, 1000);
  const b = r.batches[0];
  assert.equal(b.measurement, 'cpu');
  assert.deepEqual(tagNames(b), [...TAG_KEYS].sort());
  assert.deepEqual(fieldNames(b), [...FIELD_KEYS].sort());
  for (const k of TAG_KEYS) assert.deepEqual(tag(b, k), expected.columns[k]);
  for (const k of FIELD_KEYS) assert.deepEqual(field(b, k), { type: 'float64', values: expected.columns[k] });
  assert.deepEqual(times(b), expected.columns.time.map((t) => (t as number) * 1000));
  assert.equal(b.tags.find((t) => t.name === 'hostname')?.dictionary.length, 100);
});

/**
 * The WAL entry format: round trip, and a torn or corrupt tail cut at every byte, so
 * that replay never sees garbage; and the LSN range sets stored in Parquet metadata.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { parseDecodedWrite, type DecodedWrite } from '../parse/body.js';
import { decodeEntries, encodeEntry, ENTRY_HEADER_BYTES } from './entry.js';
import { LsnSet } from './lsn-set.js';

const writes: DecodedWrite[] = [
  { database: 'db', format: 'line-protocol', precision: 's', nowUs: 1_767_225_600_123_456, body: Buffer.from('cpu v=1 1767225600\n') },
  { database: 'Ünïcode db', format: 'msgpack', precision: 'ns', nowUs: 42, body: Buffer.from([0x81, 0xa1, 0x6d, 0xa3, 0x63, 0x70, 0x75]) },
  { database: 'db', format: 'line-protocol', precision: 'h', nowUs: 0, body: Buffer.alloc(0) },
];

function segment(firstLsn: number): Buffer {
  return Buffer.concat(writes.flatMap((w, i) => encodeEntry(firstLsn + i, w)));
}

test('entries decode to exactly what was encoded', () => {
  const decoded = decodeEntries(segment(7));
  assert.equal(decoded.cut, undefined);
  assert.equal(decoded.entries.length, 3);
  decoded.entries.forEach((e, i) => {
    assert.equal(e.lsn, 7 + i);
    assert.deepEqual({ ...e.write, body: Buffer.from(e.write.body) }, writes[i]);
  });
});

test('MessagePack logged by earlier versions (format 2) replays with its integers never floats, as it was answered', async () => {
  // [{m:'x', t:1, fields:{v:2}}, {m:'x', t:2, fields:{v:2.5}}]: live, such a write now stores both as float64.
  const body = Buffer.from(encode([{ m: 'x', t: 1, fields: { v: 2 } }, { m: 'x', t: 2, fields: { v: 2.5 } }]));
  const [head] = encodeEntry(1, { database: 'db', format: 'msgpack', precision: 'ns', nowUs: 0, body });
  assert.equal(head[ENTRY_HEADER_BYTES + 16], 6, 'MessagePack is written as format 6');
  const old = Buffer.concat(encodeEntry(1, { database: 'db', format: 'msgpack-int64', precision: 'ns', nowUs: 0, body, sharedRoles: true }));
  assert.equal(old[ENTRY_HEADER_BYTES + 16], 2);
  const [entry] = decodeEntries(old).entries;
  assert.equal(entry.write.format, 'msgpack-int64');
  const marked = async (format: DecodedWrite['format']): Promise<boolean[]> =>
    (await parseDecodedWrite({ ...entry.write, format })).batches.flatMap((b) => b.fields.filter((f) => f.type === 'int64').map((f) => f.type === 'int64' && f.mayBeFloat === true));
  assert.deepEqual(await marked('msgpack-int64'), [false]);
  assert.deepEqual(await marked('msgpack'), [true]);
});

test('entries of formats 1 to 3 (earlier versions) decode with sharedRoles, which encodes back to them; 4 to 6 without', () => {
  const cases = [['line-protocol', true, 1], ['msgpack-int64', true, 2], ['msgpack-finite', true, 3], ['line-protocol', false, 4], ['msgpack-finite', false, 5], ['msgpack', false, 6]] as const;
  for (const [format, shared, code] of cases) {
    const entry = Buffer.concat(encodeEntry(1, { database: 'db', format, precision: 'ns', nowUs: 0, body: Buffer.from('x'), ...(shared ? { sharedRoles: true } : {}) }));
    assert.equal(entry[ENTRY_HEADER_BYTES + 16], code);
    const { write } = decodeEntries(entry).entries[0];
    assert.deepEqual([write.format, write.sharedRoles], [format, shared ? true : undefined]);
  }
  // No version logged these together.
  assert.throws(() => encodeEntry(1, { database: 'db', format: 'msgpack', precision: 'ns', nowUs: 0, body: Buffer.from('x'), sharedRoles: true }), /no write-ahead-log format for msgpack with sharedRoles/);
  assert.throws(() => encodeEntry(1, { database: 'db', format: 'msgpack-int64', precision: 'ns', nowUs: 0, body: Buffer.from('x') }), /no write-ahead-log format for msgpack-int64$/);
});

test('MessagePack logged by earlier versions (formats 2, 3, 5) replays with NaN and ±Infinity refusing their item, as it was answered', async () => {
  const body = Buffer.from(encode([{ m: 'x', t: 1, fields: { v: 1.5 } }, { m: 'x', t: 2, fields: { v: NaN, w: 2.5 } }]));
  for (const format of ['msgpack-int64', 'msgpack-finite'] as const) {
    const parsed = await parseDecodedWrite({ database: 'db', format, precision: 'ns', nowUs: 0, body });
    assert.deepEqual([parsed.accepted, parsed.errors.first], [1, [{ line: 1, message: "field 'v': float value NaN is not a finite number" }]], format);
  }
  const live = await parseDecodedWrite({ database: 'db', format: 'msgpack', precision: 'ns', nowUs: 0, body });
  assert.deepEqual([live.accepted, live.errors.count], [2, 0]);
});

test('a file cut at any byte keeps exactly the entries wholly before the cut', () => {
  const data = segment(1);
  const ends = [0];
  for (const w of writes) ends.push(ends[ends.length - 1] + encodeEntry(1, w).reduce((n, b) => n + b.length, 0));
  for (let size = 0; size <= data.length; size++) {
    const decoded = decodeEntries(data.subarray(0, size));
    const whole = ends.filter((e) => e <= size).length - 1;
    assert.equal(decoded.entries.length, whole, `size ${size}`);
    assert.equal(decoded.validBytes, ends[whole], `size ${size}`);
    assert.equal(decoded.cut === undefined, size === ends[whole], `size ${size}`);
  }
});

test('a flipped bit anywhere in an entry cuts the log at that entry', () => {
  const data = segment(1);
  const first = encodeEntry(1, writes[0]).reduce((n, b) => n + b.length, 0);
  for (let at = first; at < data.length; at++) {
    const bad = Buffer.from(data);
    bad[at] ^= 0x10;
    const decoded = decodeEntries(bad);
    assert.ok(decoded.entries.length >= 1 && decoded.entries.length < 3, `byte ${at}`);
    assert.equal(decoded.entries[0].lsn, 1);
    assert.ok(decoded.cut !== undefined, `byte ${at}`);
  }
});

test('entries out of LSN sequence end the valid part', () => {
  const data = Buffer.concat([...encodeEntry(5, writes[0]), ...encodeEntry(5, writes[1])]);
  const decoded = decodeEntries(data);
  assert.equal(decoded.entries.length, 1);
  assert.match(decoded.cut ?? '', /LSN 5 after 5/);
  assert.equal(decodeEntries(segment(3), 3).entries.length, 0, 'nothing at or below afterLsn');
});

test('LSN sets: ranges, text form, membership and merge', () => {
  const set = LsnSet.of([5, 1, 2, 3, 9, 10, 2, 12]);
  assert.equal(set.toString(), '1-3,5,9-10,12');
  for (const lsn of [1, 2, 3, 5, 9, 10, 12]) assert.ok(set.has(lsn), String(lsn));
  for (const lsn of [0, 4, 6, 8, 11, 13]) assert.ok(!set.has(lsn), String(lsn));
  assert.equal(LsnSet.parse(set.toString()).toString(), set.toString());
  assert.equal(LsnSet.merge([set, LsnSet.parse('4,6-8,11')]).toString(), '1-12');
  assert.ok(LsnSet.parse('').empty);
  assert.throws(() => LsnSet.parse('3-1'), SyntaxError);
  assert.throws(() => LsnSet.parse('1,,2'), SyntaxError);
});

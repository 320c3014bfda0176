import assert from 'node:assert/strict';
import { test } from 'node:test';
import duckdb from '@duckdb/node-bindings';
import {
  ARRAY, BIGINT, BOOLEAN, DATE, DOUBLE, DuckDBDataChunk, DuckDBInstance, INTEGER, LIST, STRUCT, TIMESTAMPTZ, UTINYINT, VARCHAR, type DuckDBType,
} from '@duckdb/node-api';
import { MapRow, StructRow, tableFromIPC, Vector, type Data, type Field, type Table } from 'apache-arrow';
import { Message, type RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message';
import { ArrowStreamEncoder } from './arrow-result.js';
import { ChunkBudget } from './chunk-budget.js';
import { isValid, readColumn, type Column } from './chunk-columns.js';
import { cellText } from './json-result.js';

/** `sql`'s result through `ArrowStreamEncoder`, as the route streams it: the messages, and the chunks' columns they were made from. */
async function encoded(sql: string): Promise<{ messages: Buffer[]; chunks: { columns: Column[]; rowCount: number }[] }> {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const result = await conn.stream(sql);
    const encoder = new ArrowStreamEncoder(result.columnNames(), result.columnTypes());
    const messages = [encoder.start()];
    const chunks: { columns: Column[]; rowCount: number }[] = [];
    for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      const budget = new ChunkBudget(result.columnNames(), chunk.rowCount);
      const columns = result.columnTypes().map((t, i) => readColumn(chunk!, i, t, 'arrow', budget));
      chunks.push({ columns, rowCount: chunk.rowCount });
      messages.push(encoder.batch(columns, chunk.rowCount));
    }
    messages.push(encoder.end());
    return { messages, chunks };
  } finally {
    conn.closeSync();
  }
}

const ROWS = 5_003;

/** Every column layout the encoder writes, with NULLs at irregular rows, over three chunks (the last one's row count not a multiple of 8). */
const ALL_LAYOUTS = `SELECT
  CASE WHEN r % 7 = 0 THEN NULL ELSE r * 1.5 END::DOUBLE AS f64,
  CASE WHEN r % 11 = 0 THEN NULL ELSE r / 4 END::FLOAT AS f32,
  (r % 100 - 50)::TINYINT AS i8, (r - 2000)::SMALLINT AS i16, (r * -3)::INTEGER AS i32,
  CASE WHEN r % 3 = 0 THEN NULL ELSE r * 1000000007 END::BIGINT AS i64,
  (r % 250)::UTINYINT AS u8, r::USMALLINT AS u16, r::UINTEGER AS u32, (r * 4000000000)::UBIGINT AS u64,
  CASE WHEN r % 13 = 0 THEN NULL ELSE r % 3 = 0 END AS b,
  TIMESTAMP '2026-01-01' + INTERVAL (r) SECOND AS ts,
  CASE WHEN r % 5 = 0 THEN NULL ELSE (TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (r) MILLISECOND) END AS tstz,
  (TIMESTAMP '2026-01-01' + INTERVAL (r) MICROSECOND)::TIMESTAMP_NS AS tsns,
  DATE '2026-01-01' + r::INTEGER AS d,
  CASE r % 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'short' WHEN 3 THEN 'a string longer than twelve bytes ' || r ELSE 'ünïcødé ' || r END AS s,
  CASE WHEN r % 17 = 0 THEN NULL ELSE INTERVAL (r) SECOND END AS iv,
  (r / 8)::DECIMAL(10, 2) AS dec
FROM range(${ROWS}) t(r)`;

test('Arrow record batches decode (apache-arrow\'s reader) to the chunks they were made from: values, NULLs and NULL counts of every layout', async () => {
  const { messages, chunks } = await encoded(ALL_LAYOUTS);
  const table = tableFromIPC(Buffer.concat(messages));
  assert.equal(table.numRows, ROWS);
  assert.equal(table.batches.length, chunks.length);
  assert.ok(chunks.length >= 3);
  assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`), [
    'f64:Float64', 'f32:Float32', 'i8:Int8', 'i16:Int16', 'i32:Int32', 'i64:Int64', 'u8:Uint8', 'u16:Uint16', 'u32:Uint32', 'u64:Uint64',
    'b:Bool', 'ts:Timestamp<MICROSECOND>', 'tstz:Timestamp<MICROSECOND, UTC>', 'tsns:Timestamp<NANOSECOND>', 'd:Date32<DAY>',
    's:Utf8', 'iv:Utf8', 'dec:Float64',
  ]);
  let nulls = 0;
  chunks.forEach(({ columns, rowCount }, k) => {
    const batch = table.batches[k];
    assert.equal(batch.numRows, rowCount);
    columns.forEach((col, c) => {
      const data = batch.data.children[c];
      const vector = batch.getChildAt(c)!;
      let expectedNulls = 0;
      for (let r = 0; r < rowCount; r++) {
        const valid = col.kind === 'other' ? col.texts[r] !== null : isValid(col.valid, r);
        const where = `batch ${k}, column ${table.schema.fields[c].name}, row ${r}`;
        assert.equal(vector.isValid(r), valid, where);
        if (!valid) {
          expectedNulls++;
          continue;
        }
        if (col.kind === 'utf8') assert.equal(vector.get(r), Buffer.from(col.data.subarray(col.offsets[r], col.offsets[r + 1])).toString('utf8'), where);
        else if (col.kind === 'other') assert.equal(vector.get(r), cellText(col, r, 'csv'), where);
        else if (col.kind === 'bool') assert.equal(vector.get(r), col.values[r] !== 0, where);
        else if ('values' in col) assert.equal((data.values as ArrayLike<number | bigint>)[r], col.values[r], where);
        else assert.fail(`${where}: a ${col.kind} column`);
      }
      assert.equal(data.nullCount, expectedNulls, `batch ${k}, column ${c}`);
      nulls += expectedNulls;
    });
  });
  assert.ok(nulls > 0);
  // Spot checks against the SQL itself, so the chunk reading is not the only reference.
  assert.equal(table.getChild('s')!.get(3), 'a string longer than twelve bytes 3');
  assert.equal(table.getChild('s')!.get(4), 'ünïcødé 4');
  assert.equal(table.getChild('s')!.get(ROWS - 1), 'short');
  assert.equal(table.getChild('iv')!.get(1), '00:00:01');
  assert.equal(table.getChild('i64')!.get(1), 1000000007n);
});

/** Checks `messages`: 8-byte aligned, body buffers at 8-byte offsets, every padding byte zero. */
function checkLayout(messages: Buffer[]): void {
  for (const [i, m] of messages.entries()) {
    assert.equal(m.length % 8, 0, `message ${i}`);
    if (i === messages.length - 1) {
      assert.deepEqual([...m], [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
      continue;
    }
    assert.equal(m.readInt32LE(0), -1);
    const metadataEnd = 8 + m.readInt32LE(4);
    const decoded = Message.decode(m.subarray(8, metadataEnd));
    if (i === 0) {
      assert.ok(decoded.isSchema());
      assert.equal(metadataEnd, m.length);
      continue;
    }
    assert.ok(decoded.isRecordBatch());
    assert.equal(m.length, metadataEnd + Number(decoded.bodyLength));
    const header = decoded.header() as RecordBatchHeader;
    // Each buffer's padding runs to the next one's start (or the body's end).
    const regions = header.buffers;
    regions.forEach((region, b) => {
      assert.equal(region.offset % 8, 0);
      const end = b + 1 < regions.length ? regions[b + 1].offset : Number(decoded.bodyLength);
      const padding = m.subarray(metadataEnd + region.offset + region.length, metadataEnd + end);
      assert.ok(padding.every((x) => x === 0), `message ${i}, buffer ${b}: padding ${[...padding]}`);
    });
  }
}

test('Arrow messages: 8-byte aligned, body buffers at 8-byte offsets, and every padding byte zero', async () => {
  checkLayout((await encoded(`SELECT r::VARCHAR || 'x' AS s, (r % 100)::TINYINT AS t, CASE WHEN r % 3 = 0 THEN NULL ELSE r END AS n FROM range(3001) t(r)`)).messages);
});

test('Arrow padding is zeroed even in memory that held other bytes (no stale memory is sent)', async () => {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const result = await conn.stream(`SELECT r::VARCHAR || 'x' AS s, (r % 100)::TINYINT AS t, CASE WHEN r % 3 = 0 THEN NULL ELSE r END AS n FROM range(21) t(r)`);
    const encoder = new ArrowStreamEncoder(result.columnNames(), result.columnTypes());
    // A message under 4 KiB is cut from Node's shared Buffer pool, which is not cleared
    // between uses: what is left of the pool is dirtied just before each message is made.
    const dirtyPool = (): ArrayBuffer => {
      const free = Buffer.allocUnsafe(1);
      new Uint8Array(free.buffer, free.byteOffset).fill(0xaa);
      return free.buffer as ArrayBuffer;
    };
    let pool = dirtyPool();
    const messages = [encoder.start()];
    assert.equal(messages[0].buffer, pool, 'the schema message was cut from the dirtied pool');
    const chunk = (await result.fetchChunk())!;
    const columns = result.columnTypes().map((t, i) => readColumn(chunk, i, t, 'arrow', new ChunkBudget(result.columnNames(), chunk.rowCount)));
    pool = dirtyPool();
    messages.push(encoder.batch(columns, chunk.rowCount));
    assert.equal(messages[1].buffer, pool, 'the batch was cut from the dirtied pool');
    messages.push(encoder.end());
    checkLayout(messages);
    // The schema's own padding, after its flatbuffer (a record batch's flatbuffer, with int64
    // fields, always comes in whole 8-byte words and needs none).
    const schema = Message.encode(Message.decode(messages[0].subarray(8)));
    assert.ok(schema.length % 8 !== 0, 'the schema message has padding to check');
    assert.ok(messages[0].subarray(8 + schema.length).every((x) => x === 0), 'schema padding');
    assert.equal(tableFromIPC(Buffer.concat(messages)).getChild('s')!.get(20), '20x');
  } finally {
    conn.closeSync();
  }
});

test('an Arrow result without rows is the schema and the end-of-stream marker', async () => {
  const { messages } = await encoded('SELECT 1::INTEGER AS a, \'x\' AS b WHERE false');
  assert.equal(messages.length, 2);
  const table = tableFromIPC(Buffer.concat(messages));
  assert.equal(table.numRows, 0);
  assert.deepEqual(table.schema.fields.map((f) => f.name), ['a', 'b']);
});

test('a NULL row\'s value slot is zero in Arrow, whatever the column held there (DuckDB\'s vector memory keeps earlier values)', () => {
  const n = 1_001;
  // Row r is NULL when r % 4 = 1; every slot, NULL or not, holds a non-zero value.
  const valid = new Uint8Array(Math.ceil(n / 8));
  for (let r = 0; r < n; r++) if (r % 4 !== 1) valid[r >>> 3] |= 1 << (r & 7);
  const filled = <T extends { fill(v: never): T }>(array: T, v: number | bigint): T => array.fill(v as never);
  const columns: Column[] = [
    { kind: 'i64', values: filled(new BigInt64Array(n), 0x5345435245542d50n), valid },
    { kind: 'f64', values: filled(new Float64Array(n), 1.5), valid },
    { kind: 'i32', values: filled(new Int32Array(n), -7), valid },
    { kind: 'u8', values: filled(new Uint8Array(n), 200), valid },
    { kind: 'bool', values: filled(new Uint8Array(n), 1), valid },
    { kind: 'timestamp', values: filled(new BigInt64Array(n), 1_767_225_600_000_000n), valid, tz: true },
    { kind: 'date', values: filled(new Int32Array(n), 20_454), valid },
  ];
  const types: DuckDBType[] = [BIGINT, DOUBLE, INTEGER, UTINYINT, BOOLEAN, TIMESTAMPTZ, DATE];
  const encoder = new ArrowStreamEncoder(columns.map((_, i) => `c${i}`), types);
  const table = tableFromIPC(Buffer.concat([encoder.start(), encoder.batch(columns, n), encoder.end()]));
  const data = table.batches[0].data.children;
  for (const [c, field] of table.schema.fields.entries()) {
    const values = data[c].values as ArrayLike<number | bigint>;
    assert.equal(data[c].nullCount, Math.floor((n - 2) / 4) + 1, field.name);
    for (let r = 0; r < n; r++) {
      // Booleans are bits: row r's bit of the values bitmap.
      const slot = columns[c].kind === 'bool' ? (Number(values[r >>> 3]) >> (r & 7)) & 1 : Number(values[r]);
      if (r % 4 === 1) assert.equal(slot, 0, `${field.name}, NULL row ${r}`);
      else assert.notEqual(slot, 0, `${field.name}, row ${r}`);
    }
  }
  // The caller's columns are left as they were.
  assert.equal((columns[0] as { values: BigInt64Array }).values[1], 0x5345435245542d50n);
});

/** A value apache-arrow read, as plain JS: lists as arrays, structs and maps as objects, binary as hex. */
function plain(v: unknown): unknown {
  if (v instanceof Vector) return Array.from(v as Vector, plain);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (v instanceof StructRow || v instanceof MapRow) return Object.fromEntries(Object.entries(v.toJSON() as object).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Column `name` of every batch of `table`, each row as `plain` reads it. */
function plainColumn(table: Table, name: string): unknown[] {
  return Array.from(table.getChild(name)!, plain);
}

const NESTED = `SELECT
  CASE WHEN r % 7 = 0 THEN NULL WHEN r % 7 = 1 THEN [] ELSE [r, NULL, r * 2] END::INTEGER[] AS ints,
  CASE WHEN r % 5 = 0 THEN NULL ELSE [r / 4, NULL] END::DOUBLE[] AS doubles,
  CASE WHEN r % 3 = 0 THEN NULL ELSE ['v' || r, NULL, '', 'a string longer than twelve bytes ' || r] END AS strs,
  CASE WHEN r % 11 = 0 THEN NULL ELSE [TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (r) MICROSECOND, NULL] END AS tss,
  [(TIMESTAMP '2026-01-01' + INTERVAL (r) MICROSECOND)::TIMESTAMP_NS] AS tsns,
  CASE WHEN r % 4 = 0 THEN NULL ELSE {'i': CASE WHEN r % 8 = 1 THEN NULL ELSE r END, 's': CASE WHEN r % 8 = 2 THEN NULL ELSE 'x' || r END} END AS st,
  CASE WHEN r % 6 = 0 THEN NULL ELSE MAP {'a': r, 'b': NULL} END AS m,
  [{'q': r, 'w': 'w' || r}, NULL] AS ls,
  {'l': CASE WHEN r % 2 = 0 THEN NULL ELSE [r, r + 1] END, 'd': [DATE '2026-01-01' + r::INTEGER]} AS sl,
  (CASE WHEN r % 9 = 0 THEN NULL ELSE [r, NULL, r] END)::INTEGER[3] AS arr,
  CASE WHEN r % 10 = 0 THEN NULL ELSE '\\x00\\xff'::BLOB || (r::VARCHAR)::BLOB END AS b,
  [(r * 0.25)::DECIMAL(10, 2)] AS decs, [r::DECIMAL(10, 0)] AS decs0, [INTERVAL (r) SECOND] AS ivs
FROM range(${ROWS}) t(r)`;

test('nested columns and BLOB are native Arrow types: lists (NULL, empty, NULL elements), structs, maps, fixed-size arrays, their nestings, over several batches', async () => {
  const { messages, chunks } = await encoded(NESTED);
  checkLayout(messages);
  const table = tableFromIPC(Buffer.concat(messages));
  assert.equal(table.numRows, ROWS);
  assert.ok(chunks.length >= 3);
  assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`), [
    'ints:List<Int32>', 'doubles:List<Float64>', 'strs:List<Utf8>', 'tss:List<Timestamp<MICROSECOND, UTC>>', 'tsns:List<Timestamp<NANOSECOND>>',
    'st:Struct<{i:Int64, s:Utf8}>', 'm:Map<{key:Utf8, value:Int64}>', 'ls:List<Struct<{q:Int64, w:Utf8}>>', 'sl:Struct<{l:List<Int64>, d:List<Date32<DAY>>}>',
    'arr:FixedSizeList[3]<Int32>', 'b:Binary', 'decs:List<Float64>', 'decs0:List<Int64>', 'ivs:List<Utf8>',
  ]);
  const map = table.schema.fields[6].type.children[0];
  assert.equal(map.name, 'entries');
  assert.deepEqual(map.type.children.map((f: Field) => [f.name, f.nullable]), [['key', false], ['value', true]]);
  const rows = Array.from({ length: ROWS }, (_, r) => r);
  const n = BigInt;
  assert.deepEqual(plainColumn(table, 'ints'), rows.map((r) => (r % 7 === 0 ? null : r % 7 === 1 ? [] : [r, null, r * 2])));
  assert.deepEqual(plainColumn(table, 'doubles'), rows.map((r) => (r % 5 === 0 ? null : [r / 4, null])));
  assert.deepEqual(plainColumn(table, 'strs'), rows.map((r) => (r % 3 === 0 ? null : [`v${r}`, null, '', `a string longer than twelve bytes ${r}`])));
  assert.deepEqual(plainColumn(table, 'st'), rows.map((r) => (r % 4 === 0 ? null : { i: r % 8 === 1 ? null : n(r), s: r % 8 === 2 ? null : `x${r}` })));
  assert.deepEqual(plainColumn(table, 'm'), rows.map((r) => (r % 6 === 0 ? null : { a: n(r), b: null })));
  assert.deepEqual(plainColumn(table, 'ls'), rows.map((r) => [{ q: n(r), w: `w${r}` }, null]));
  const day = Date.UTC(2026, 0, 1);
  assert.deepEqual(plainColumn(table, 'sl'), rows.map((r) => ({ l: r % 2 === 0 ? null : [n(r), n(r + 1)], d: [day + r * 86_400_000] })));
  assert.deepEqual(plainColumn(table, 'arr'), rows.map((r) => (r % 9 === 0 ? null : [r, null, r])));
  assert.deepEqual(plainColumn(table, 'b'), rows.map((r) => (r % 10 === 0 ? null : `00ff${Buffer.from(String(r)).toString('hex')}`)));
  assert.deepEqual(plainColumn(table, 'decs'), rows.map((r) => [r / 4]));
  assert.deepEqual(plainColumn(table, 'decs0'), rows.map((r) => [n(r)]));
  assert.deepEqual(plainColumn(table, 'ivs').slice(0, 3), [['00:00:00'], ['00:00:01'], ['00:00:02']]);
  // Timestamps by their int64 (apache-arrow's `get` gives milliseconds as a double).
  const rawChild = (name: string): { values: bigint[]; valid: boolean[] } => {
    const data = table.getChild(name)!.data.map((d) => d.children[0]);
    return { values: data.flatMap((d) => Array.from(d.values as BigInt64Array)), valid: data.flatMap((d) => Array.from({ length: d.length }, (_, k) => d.getValid(k))) };
  };
  const start = 1_767_225_600_000_000n;
  const tss = rawChild('tss');
  const withTss = rows.filter((r) => r % 11 !== 0);
  assert.deepEqual(tss.values, withTss.flatMap((r) => [start + n(r), 0n]));
  assert.deepEqual(tss.valid, withTss.flatMap(() => [true, false]));
  assert.deepEqual(rawChild('tsns').values, rows.map((r) => (start + n(r)) * 1000n));
});

test('a NULL list, struct or array sends no bytes of what DuckDB held under it, and a NULL element or field none of its slot', async () => {
  const { messages } = await encoded(NESTED);
  const table = tableFromIPC(Buffer.concat(messages));
  for (const batch of table.batches) {
    const column = (name: string): Data => batch.data.children[table.schema.fields.findIndex((f) => f.name === name)];
    const [ints, st, arr] = [column('ints'), column('st'), column('arr')];
    const [i, s] = st.children;
    for (let r = 0; r < batch.numRows; r++) {
      if (!ints.getValid(r)) assert.equal(ints.valueOffsets[r + 1], ints.valueOffsets[r], `list row ${r}`);
      if (!st.getValid(r)) {
        assert.ok(!i.getValid(r) && !s.getValid(r), `struct row ${r}: its fields NULL too`);
        assert.equal((i.values as BigInt64Array)[r], 0n);
        assert.equal(s.valueOffsets[r + 1], s.valueOffsets[r]);
      }
      for (let k = 0; k < 3; k++) {
        const e = r * 3 + k;
        if (!arr.getValid(r)) assert.ok(!arr.children[0].getValid(e), `array row ${r}: its elements NULL too`);
        if (!arr.children[0].getValid(e)) assert.equal((arr.children[0].values as Int32Array)[e], 0, `array element ${e}`);
      }
    }
  }
});

test('a nested column all NULL in the first chunk, then not', async () => {
  const { messages, chunks } = await encoded(`SELECT CASE WHEN r < 2048 THEN NULL ELSE [r] END AS l, CASE WHEN r < 2048 THEN NULL ELSE {'a': r} END AS s,
    CASE WHEN r < 2048 THEN NULL ELSE MAP {r: 'x'} END AS m, CASE WHEN r < 2048 THEN NULL ELSE [r, r]::BIGINT[2] END AS a FROM range(3000) t(r)`);
  assert.equal(chunks[0].rowCount, 2048);
  const table = tableFromIPC(Buffer.concat(messages));
  assert.ok(table.batches[0].data.children.every((d) => d.nullCount === 2048));
  const rows = Array.from({ length: 3000 }, (_, r) => r);
  assert.deepEqual(plainColumn(table, 'l'), rows.map((r) => (r < 2048 ? null : [BigInt(r)])));
  assert.deepEqual(plainColumn(table, 's'), rows.map((r) => (r < 2048 ? null : { a: BigInt(r) })));
  assert.deepEqual(plainColumn(table, 'm'), rows.map((r) => (r < 2048 ? null : { [r]: 'x' })));
  assert.deepEqual(plainColumn(table, 'a'), rows.map((r) => (r < 2048 ? null : [BigInt(r), BigInt(r)])));
});

test('list elements out of row order, shared, or under a NULL row, and values under a NULL struct or array, are gathered into Arrow\'s layout', () => {
  const types = [LIST(INTEGER), LIST(VARCHAR), STRUCT({ a: INTEGER, s: VARCHAR }), ARRAY(INTEGER, 2)];
  const chunk = DuckDBDataChunk.create(types, 4);
  const vectors = types.map((_, c) => duckdb.data_chunk_get_vector(chunk.chunk, c));
  const copy = (vector: duckdb.Vector, values: Int32Array | BigUint64Array): void => duckdb.copy_data_to_vector(vector, 0, values.buffer as ArrayBuffer, 0, values.byteLength);
  const nullRows = (vector: duckdb.Vector, mask: bigint): void => {
    duckdb.vector_ensure_validity_writable(vector);
    duckdb.copy_data_to_vector_validity(vector, 0, BigUint64Array.of(mask).buffer, 0, 8);
  };
  // Rows: elements 2–3, then 0–1 (before the first's), NULL over elements 0–4, then 1–3 (shared).
  const words = ['zero', 'one', 'two: a string longer than twelve bytes', 'three', 'four'];
  for (const [c, vector] of vectors.slice(0, 2).entries()) {
    duckdb.list_vector_reserve(vector, 5);
    duckdb.list_vector_set_size(vector, 5);
    const child = duckdb.list_vector_get_child(vector);
    if (c === 0) copy(child, Int32Array.of(10, 11, 12, 13, 14));
    else words.forEach((w, k) => duckdb.vector_assign_string_element(child, k, w));
    copy(vector, BigUint64Array.of(2n, 2n, 0n, 2n, 0n, 5n, 1n, 3n));
    nullRows(vector, 0b1011n);
  }
  // Struct row 2 and array row 1 NULL over fields and elements DuckDB left valid.
  const [a, s] = [0, 1].map((k) => duckdb.struct_vector_get_child(vectors[2], k));
  copy(a, Int32Array.of(1, 2, 3, 4));
  words.slice(1).forEach((w, k) => duckdb.vector_assign_string_element(s, k, w));
  nullRows(vectors[2], 0b1011n);
  copy(duckdb.array_vector_get_child(vectors[3]), Int32Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  nullRows(vectors[3], 0b1101n);

  const names = ['ints', 'strs', 'st', 'arr'];
  const encoder = new ArrowStreamEncoder(names, types);
  const budget = new ChunkBudget(names, chunk.rowCount);
  const messages = [encoder.start(), encoder.batch(types.map((t, c) => readColumn(chunk, c, t, 'arrow', budget)), chunk.rowCount), encoder.end()];
  checkLayout(messages);
  const table = tableFromIPC(Buffer.concat(messages));
  assert.deepEqual(plainColumn(table, 'ints'), [[12, 13], [10, 11], null, [11, 12, 13]]);
  assert.deepEqual(plainColumn(table, 'strs'), [[words[2], words[3]], [words[0], words[1]], null, [words[1], words[2], words[3]]]);
  assert.deepEqual(plainColumn(table, 'st'), [{ a: 1, s: 'one' }, { a: 2, s: words[2] }, null, { a: 4, s: 'four' }]);
  assert.deepEqual(plainColumn(table, 'arr'), [[1, 2], null, [5, 6], [7, 8]]);
  const [st, arr] = [table.batches[0].data.children[2], table.batches[0].data.children[3]];
  assert.equal((st.children[0].values as Int32Array)[2], 0);
  assert.equal(st.children[1].valueOffsets[3], st.children[1].valueOffsets[2]);
  assert.deepEqual(Array.from(arr.children[0].values as Int32Array).slice(2, 4), [0, 0]);
});

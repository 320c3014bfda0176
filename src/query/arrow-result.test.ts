import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BIGINT, BOOLEAN, DATE, DOUBLE, DuckDBInstance, INTEGER, TIMESTAMPTZ, UTINYINT, type DuckDBType } from '@duckdb/node-api';
import { tableFromIPC } from 'apache-arrow';
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
  CASE WHEN r % 17 = 0 THEN NULL ELSE [r, r + 1] END AS list,
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
    's:Utf8', 'list:Utf8', 'dec:Float64',
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
        else assert.equal((data.values as ArrayLike<number | bigint>)[r], col.values[r], where);
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
  assert.equal(table.getChild('list')!.get(1), '[1, 2]');
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

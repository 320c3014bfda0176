/**
 * Which MessagePack integers may be whole floats.
 *
 * MessagePack has integer and float families, but JavaScript encoders (msgpackr,
 * @msgpack/msgpack) write every whole number, 95.0 included, as an integer; only Python,
 * Go and the like send 0xcb for it. So the buffer stores a field's integers as floats
 * where the field is float64, stored or in the same request (`SchemaRegistry.widen`), as
 * Arc converts later integers of a float column (../shared/notes/arc-wire-contract.md
 * §2.2). Integers beyond 2^53 in magnitude are not: no JavaScript encoder writes one as
 * an integer (a double that large goes out as float64), so they were meant as integers,
 * and a double would round them.
 */
import type { ColumnarBatch, Int64FieldColumn } from '../batch.js';

/** 2^21: an int64 is in [−2^53, 2^53), which doubles hold exactly, when its high 32-bit half is in [−2^21, 2^21). */
const HIGH_BOUND = 0x200000;

/**
 * `batches` with each int64 field column whose values all lie in [−2^53, 2^53) marked
 * `mayBeFloat`; batches without such columns are returned as they are.
 */
export function markWholeFloats(batches: ColumnarBatch[]): ColumnarBatch[] {
  const whole = (f: Int64FieldColumn): boolean => {
    // The high halves (little-endian) as 32-bit words: reading the BigInt64Array would make a BigInt per value.
    const words = new Int32Array(f.values.buffer, f.values.byteOffset, f.values.length * 2);
    for (let i = 0; i < f.values.length; i++) {
      const high = words[2 * i + 1];
      if (f.valid[i] === 1 && (high < -HIGH_BOUND || high >= HIGH_BOUND)) return false;
    }
    return true;
  };
  return batches.map((batch) => {
    let marked = false;
    const fields = batch.fields.map((f) => {
      if (f.type !== 'int64' || !whole(f)) return f;
      marked = true;
      return { ...f, mayBeFloat: true as const };
    });
    return marked ? { ...batch, fields } : batch;
  });
}

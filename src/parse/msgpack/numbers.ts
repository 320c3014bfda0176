/**
 * One numeric type per field across a MessagePack request.
 *
 * MessagePack has integer and float families, but JavaScript encoders (msgpackr,
 * @msgpack/msgpack) write every whole number, 95.0 included, as an integer; only Python,
 * Go and the like send 0xcb for it. So a field's integers and floats in one request are
 * one float64 field, whatever the items' shapes and order: within one columnar array the
 * parser already does this, and Arc converts later integers of a float column too
 * (../shared/notes/arc-wire-contract.md §2.2). Across requests, integers meet the
 * measurement's stored float64 field in the buffer (`Int64FieldColumn.mayBeFloat`).
 */
import { asFloat64, type ColumnarBatch, type FieldColumn, type Float64FieldColumn } from '../batch.js';

/**
 * `batches` (one request's) with every int64 field column turned into float64 where any
 * batch of the request holds a float64 column of that measurement and field name, two
 * float64 columns of one name in a batch (the row items' integers and floats) merged
 * into one, and the int64 columns left marked `mayBeFloat`. Batches without int64
 * columns are returned as they are.
 */
export function settleNumbers(batches: ColumnarBatch[]): ColumnarBatch[] {
  const floatFields = new Map<string, Set<string>>();
  for (const batch of batches) {
    for (const f of batch.fields) {
      if (f.type !== 'float64') continue;
      let names = floatFields.get(batch.measurement);
      if (names === undefined) floatFields.set(batch.measurement, names = new Set());
      names.add(f.name);
    }
  }
  return batches.map((batch) => {
    if (!batch.fields.some((f) => f.type === 'int64')) return batch;
    const floats = floatFields.get(batch.measurement);
    const fields: FieldColumn[] = [];
    const floatAt = new Map<string, number>();
    for (const f of batch.fields) {
      let col = f;
      if (f.type === 'int64') col = floats?.has(f.name) === true ? asFloat64(f) : { ...f, mayBeFloat: true };
      if (col.type === 'float64') {
        const at = floatAt.get(col.name);
        if (at !== undefined) {
          fields[at] = mergeFloats(fields[at] as Float64FieldColumn, col);
          continue;
        }
        floatAt.set(col.name, fields.length);
      }
      fields.push(col);
    }
    return { ...batch, fields };
  });
}

/** One column of the values of `a` and `b`, whose rows are disjoint (an item naming a field twice keeps one value: `RowStage`). */
function mergeFloats(a: Float64FieldColumn, b: Float64FieldColumn): Float64FieldColumn {
  const valid = a.valid.slice();
  const values = a.values.slice();
  for (let i = 0; i < valid.length; i++) {
    if (b.valid[i] !== 1) continue;
    valid[i] = 1;
    values[i] = b.values[i];
  }
  return { name: a.name, type: 'float64', valid, values };
}

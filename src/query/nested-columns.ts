/**
 * Reads LIST, ARRAY, MAP and STRUCT vectors of DuckDB result chunks as `Column` trees laid
 * out as Arrow lays nested arrays out (Arrow's "Columnar Format": "Variable-size List
 * Layout", "Fixed-Size List Layout", "Struct Layout"; a Map is a list of key-value structs),
 * for Arrow results only (`readColumn` in `arrow` mode). Their scalars, at any depth, are
 * read by `readVector` as a column of their own type is.
 *
 * DuckDB's layout: a LIST's (and a MAP's) rows are `list_entry_t`s (offset and length, u64
 * each) into one child vector, a MAP's child a STRUCT(key, value); an ARRAY's row i holds
 * child rows [i·size, (i+1)·size); a STRUCT's fields are child vectors of as many rows.
 * Arrow wants a list's elements one after another in row order, none for a NULL row. A
 * streamed chunk is a copy of its rows that holds each element they reference once, in row
 * order (`chunk-budget.ts` relies on it too), so its child is taken as it is; any other
 * layout (elements out of order, shared, or under a NULL row) is gathered into row order.
 *
 * NULLs: a value under a NULL (a struct's fields and an array's elements where the struct
 * or array is NULL) is made NULL too, whatever DuckDB left in its slot, so that the
 * encoder zeroes its bytes and sends no string of it: no stale memory is sent.
 */
import duckdb from '@duckdb/node-bindings';
import { DuckDBTypeId, type DuckDBArrayType, type DuckDBListType, type DuckDBMapType, type DuckDBStructType, type DuckDBType } from '@duckdb/node-api';
import { isValid, readValidity, readVector, type Column, type Validity } from './chunk-columns.js';

/**
 * The first `n` rows of the flat `vector`, of a LIST, ARRAY, MAP or STRUCT type `type`, as a
 * `list`, `fixed_list` (ARRAY) or `struct` column; `index` is the result column's, for the
 * errors of its scalars. Counts nothing in a budget: the caller has counted the vector whole.
 * @throws ResultValueError as `readVector` for a 128-bit value outside int64 within it.
 */
export function readNested(vector: duckdb.Vector, n: number, type: DuckDBType, index: number): Column {
  return readRows(vector, n, type, null, n, null, index);
}

/**
 * `count` rows of `vector` (which has `size`), of type `type`: row j is the vector's row
 * `rows[j]` (row j itself when `rows` is null), NULL where the vector's is or where `mask`
 * (over the `count` rows; null: none) says so.
 */
function readRows(vector: duckdb.Vector, size: number, type: DuckDBType, rows: Int32Array | null, count: number, mask: Validity, index: number): Column {
  switch (type.typeId) {
    case DuckDBTypeId.LIST: case DuckDBTypeId.MAP:
      return readList(vector, size, type as DuckDBListType | DuckDBMapType, rows, count, rowValidity(readValidity(vector, size), rows, count, mask), index);
    case DuckDBTypeId.ARRAY:
      return readArray(vector, size, type as DuckDBArrayType, rows, count, rowValidity(readValidity(vector, size), rows, count, mask), index);
    case DuckDBTypeId.STRUCT: {
      const { entryTypes } = type as DuckDBStructType;
      return readStruct(vector, size, entryTypes, rows, count, rowValidity(readValidity(vector, size), rows, count, mask), index);
    }
    default: {
      const col = readVector(vector, size, type, 'arrow', null, index);
      return rows === null && mask === null ? col : picked(col, rows, count, mask);
    }
  }
}

/** The validity of rows `rows` (null: 0 … count − 1) of a vector whose own is `source`, ANDed with `mask`; null when all are valid. */
function rowValidity(source: Validity, rows: Int32Array | null, count: number, mask: Validity): Validity {
  if (rows === null && mask === null) return source;
  const out = new Uint8Array(Math.ceil(count / 8));
  let all = true;
  for (let j = 0; j < count; j++) {
    if (isValid(mask, j) && isValid(source, rows === null ? j : rows[j])) out[j >>> 3] |= 1 << (j & 7);
    else all = false;
  }
  return all ? null : out;
}

function readList(vector: duckdb.Vector, size: number, type: DuckDBListType | DuckDBMapType, rows: Int32Array | null, count: number,
  valid: Validity, index: number): Column {
  // A Buffer of its own at offset 0 (`vector_get_data` copies), so 8-byte aligned.
  const raw = duckdb.vector_get_data(vector, size * 16);
  const entries = new BigUint64Array(raw.buffer, raw.byteOffset, size * 2);
  const offsets = new Int32Array(count + 1);
  let total = 0;
  let inPlace = true;
  for (let j = 0; j < count; j++) {
    if (isValid(valid, j)) {
      const r = rows === null ? j : rows[j];
      inPlace &&= Number(entries[2 * r]) === total;
      total += Number(entries[2 * r + 1]);
    }
    offsets[j + 1] = total;
  }
  let elements: Int32Array | null = null;
  if (!inPlace) {
    elements = new Int32Array(total);
    for (let j = 0, at = 0; j < count; j++) {
      if (!isValid(valid, j)) continue;
      const r = rows === null ? j : rows[j];
      const from = Number(entries[2 * r]);
      for (let k = 0; k < offsets[j + 1] - offsets[j]; k++) elements[at++] = from + k;
    }
  }
  const child = duckdb.list_vector_get_child(vector);
  const childSize = duckdb.list_vector_get_size(vector);
  if (type.typeId === DuckDBTypeId.LIST) return { kind: 'list', offsets, child: readRows(child, childSize, type.valueType, elements, total, null, index), valid };
  // Arrow's Map entries: a struct of key and value, itself never NULL.
  const pairs = readStruct(child, childSize, [type.keyType, type.valueType], elements, total, null, index);
  return { kind: 'list', offsets, child: pairs, valid };
}

function readArray(vector: duckdb.Vector, size: number, type: DuckDBArrayType, rows: Int32Array | null, count: number, valid: Validity, index: number): Column {
  const { length } = type;
  // Element k belongs to row ⌊k / length⌋.
  const parents = rows === null && valid === null ? null : Int32Array.from({ length: count * length }, (_, k) => Math.floor(k / length));
  const elements = rows === null ? null : parents!.map((p, k) => rows[p] * length + (k % length));
  const mask = valid === null ? null : rowValidity(valid, parents, count * length, null);
  const child = readRows(duckdb.array_vector_get_child(vector), size * length, type.valueType, elements, count * length, mask, index);
  return { kind: 'fixed_list', size: length, child, valid };
}

function readStruct(vector: duckdb.Vector, size: number, fieldTypes: readonly DuckDBType[], rows: Int32Array | null, count: number,
  valid: Validity, index: number): Column {
  const children = fieldTypes.map((t, k) => readRows(duckdb.struct_vector_get_child(vector, k), size, t, rows, count, valid, index));
  return { kind: 'struct', children, valid };
}

/**
 * Rows `rows` (null: 0 … count − 1) of the scalar column `col`, NULL where it is or where
 * `mask` says so: a NULL row's string has no bytes (its fixed-width slot is zeroed by the
 * encoder).
 */
function picked(col: Column, rows: Int32Array | null, count: number, mask: Validity): Column {
  const row = (j: number): number => (rows === null ? j : rows[j]);
  switch (col.kind) {
    case 'other': {
      const texts = Array.from({ length: count }, (_, j) => (isValid(mask, j) ? col.texts[row(j)] : null));
      if (col.plain === undefined) return { kind: 'other', texts };
      const plain = col.plain;
      return { kind: 'other', texts, plain: Array.from({ length: count }, (_, j) => (texts[j] === null ? null : plain[row(j)])) };
    }
    case 'utf8': case 'binary': {
      const valid = rowValidity(col.valid, rows, count, mask);
      const offsets = new Int32Array(count + 1);
      for (let j = 0; j < count; j++) offsets[j + 1] = offsets[j] + (isValid(valid, j) ? col.offsets[row(j) + 1] - col.offsets[row(j)] : 0);
      const data = new Uint8Array(offsets[count]);
      for (let j = 0; j < count; j++) if (offsets[j + 1] > offsets[j]) data.set(col.data.subarray(col.offsets[row(j)], col.offsets[row(j) + 1]), offsets[j]);
      return { ...col, offsets, data, valid };
    }
    case 'list': case 'fixed_list': case 'struct':
      throw new TypeError(`picked takes scalar columns, not ${col.kind}`);
    default: {
      const valid = rowValidity(col.valid, rows, count, mask);
      if (rows === null) return { ...col, valid };
      const from = col.values;
      // A typed array of the column's own type, filled element by element.
      const values = new (from.constructor as new (n: number) => typeof from)(count);
      for (let j = 0; j < count; j++) values[j] = from[rows[j]];
      return { ...col, values, valid } as Column;
    }
  }
}

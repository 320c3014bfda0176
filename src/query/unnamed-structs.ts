/**
 * Columns holding, at any depth, a STRUCT whose fields node-api's values cannot keep, read
 * by position from DuckDB's vectors. node-api keys a STRUCT's fields by name in a plain
 * object, where fields without names (`row(1, 'x')`, a tuple `(a, b)`) collide (every name
 * is `""`) and all but one are lost, and a field named `__proto__` sets the object's
 * prototype instead of a key (its value is lost, or read as `[object Object]`); so these
 * columns are walked level by level through the C API's child vectors (STRUCT children,
 * LIST and MAP entries, ARRAY slots, UNION members), and only their scalars are read
 * through node-api. An unnamed STRUCT is a JSON array (`[1,"x"]`) and DuckDB's `(1, x)` in
 * text; everything else as `jsonValue` and `nested-text.ts` print it.
 */
import duckdb from '@duckdb/node-bindings';
import {
  DuckDBTypeId, DuckDBVector, type DuckDBArrayType, type DuckDBListType, type DuckDBMapType, type DuckDBStructType, type DuckDBType,
  type DuckDBUnionType,
} from '@duckdb/node-api';
import { isValid, readValidity, type Validity } from './chunk-columns.js';
import { jsonValue } from './json-result.js';
import { innerText, isUnnamed, mapText, nestedText, structText } from './nested-text.js';

/** Item `i` of a vector (`valid(i)` first): as JSON, as DuckDB's text, and as that text inside a container. */
export interface PositionalItems {
  valid(i: number): boolean;
  json(i: number): string;
  text(i: number): string;
  inner(i: number): string;
}

/** Whether `type` is or holds a STRUCT without field names or with a field named `__proto__`. */
export function readByPosition(type: DuckDBType): boolean {
  switch (type.typeId) {
    case DuckDBTypeId.STRUCT: {
      const struct = type as DuckDBStructType;
      return isUnnamed(struct) || struct.entryNames.includes('__proto__') || struct.entryTypes.some(readByPosition);
    }
    case DuckDBTypeId.LIST: return readByPosition((type as DuckDBListType).valueType);
    case DuckDBTypeId.ARRAY: return readByPosition((type as DuckDBArrayType).valueType);
    case DuckDBTypeId.MAP: return readByPosition((type as DuckDBMapType).keyType) || readByPosition((type as DuckDBMapType).valueType);
    case DuckDBTypeId.UNION: return (type as DuckDBUnionType).memberTypes.some(readByPosition);
    default: return false;
  }
}

/** The `count` items of the flat vector `vector`, of type `type`, read by position (see the module comment). */
export function positionalItems(vector: duckdb.Vector, count: number, type: DuckDBType): PositionalItems {
  switch (type.typeId) {
    case DuckDBTypeId.STRUCT: return structItems(vector, count, type as DuckDBStructType);
    case DuckDBTypeId.LIST: case DuckDBTypeId.MAP: return listItems(vector, count, type as DuckDBListType | DuckDBMapType);
    case DuckDBTypeId.ARRAY: return arrayItems(vector, count, type as DuckDBArrayType);
    case DuckDBTypeId.UNION: return unionItems(vector, count, type as DuckDBUnionType);
    default: return scalarItems(vector, count, type);
  }
}

function structItems(vector: duckdb.Vector, count: number, type: DuckDBStructType): PositionalItems {
  const valid = readValidity(vector, count);
  const fields = type.entryTypes.map((t, k) => positionalItems(duckdb.struct_vector_get_child(vector, k), count, t));
  const unnamed = isUnnamed(type);
  const text = (i: number): string => structText(type, fields.map((f) => (f.valid(i) ? f.inner(i) : 'NULL')));
  return {
    valid: (i) => isValid(valid, i),
    json: (i) => {
      const parts = fields.map((f) => (f.valid(i) ? f.json(i) : 'null'));
      return unnamed ? `[${parts.join(',')}]` : `{${parts.map((p, k) => `${JSON.stringify(type.entryNames[k])}:${p}`).join(',')}}`;
    },
    text,
    inner: text,
  };
}

/** A LIST, or a MAP (a LIST of STRUCT(key, value) in DuckDB's vectors). */
function listItems(vector: duckdb.Vector, count: number, type: DuckDBListType | DuckDBMapType): PositionalItems {
  const valid = readValidity(vector, count);
  // list_entry_t: offset and length, both u64.
  const raw = duckdb.vector_get_data(vector, count * 16);
  const entries = new BigUint64Array(raw.buffer, raw.byteOffset, count * 2);
  const child = duckdb.list_vector_get_child(vector);
  const size = duckdb.list_vector_get_size(vector);
  const range = (i: number): number[] => Array.from({ length: Number(entries[2 * i + 1]) }, (_, k) => Number(entries[2 * i]) + k);
  if (type.typeId === DuckDBTypeId.MAP) {
    const { keyType, valueType } = type;
    const keys = positionalItems(duckdb.struct_vector_get_child(child, 0), size, keyType);
    const values = positionalItems(duckdb.struct_vector_get_child(child, 1), size, valueType);
    const text = (i: number): string => mapText(range(i).map((k) => [keys.inner(k), values.valid(k) ? values.inner(k) : 'NULL']));
    return {
      valid: (i) => isValid(valid, i),
      // Keyed by DuckDB's text of each key, as `jsonValue` keys a MAP.
      json: (i) => `{${range(i).map((k) => `${JSON.stringify(keys.text(k))}:${values.valid(k) ? values.json(k) : 'null'}`).join(',')}}`,
      text,
      inner: text,
    };
  }
  const items = positionalItems(child, size, type.valueType);
  return sequence(valid, range, items);
}

function arrayItems(vector: duckdb.Vector, count: number, type: DuckDBArrayType): PositionalItems {
  const { length } = type;
  const items = positionalItems(duckdb.array_vector_get_child(vector), count * length, type.valueType);
  return sequence(readValidity(vector, count), (i) => Array.from({ length }, (_, k) => i * length + k), items);
}

/** A LIST or ARRAY: item `i` holds the child items `range(i)`. */
function sequence(valid: Validity, range: (i: number) => number[], items: PositionalItems): PositionalItems {
  const text = (i: number): string => `[${range(i).map((k) => (items.valid(k) ? items.inner(k) : 'NULL')).join(', ')}]`;
  return {
    valid: (i) => isValid(valid, i),
    json: (i) => `[${range(i).map((k) => (items.valid(k) ? items.json(k) : 'null')).join(',')}]`,
    text,
    inner: text,
  };
}

/** A UNION: a STRUCT of its tag (u8) and one child per member; item `i` is its tagged member's. */
function unionItems(vector: duckdb.Vector, count: number, type: DuckDBUnionType): PositionalItems {
  const valid = readValidity(vector, count);
  const tags = duckdb.vector_get_data(duckdb.struct_vector_get_child(vector, 0), count);
  const members = type.memberTypes.map((t, k) => positionalItems(duckdb.struct_vector_get_child(vector, k + 1), count, t));
  const member = (i: number): PositionalItems => members[tags[i]];
  // A member's text is never quoted inside a container, as DuckDB prints a UNION.
  const text = (i: number): string => (member(i).valid(i) ? member(i).text(i) : 'NULL');
  return {
    valid: (i) => isValid(valid, i),
    json: (i) => (member(i).valid(i) ? member(i).json(i) : 'null'),
    text,
    inner: text,
  };
}

function scalarItems(vector: duckdb.Vector, count: number, type: DuckDBType): PositionalItems {
  const values = DuckDBVector.create(vector, count, type);
  return {
    valid: (i) => values.getItem(i) !== null,
    json: (i) => jsonValue(values.getItem(i)!, type),
    text: (i) => nestedText(values.getItem(i)!, type),
    inner: (i) => innerText(values.getItem(i), type),
  };
}

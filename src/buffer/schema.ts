/**
 * Per-measurement schema: the name and type of every column that is buffered or stored.
 *
 * A field whose type conflicts with the measurement's schema is rejected per line
 * (InfluxDB's "field type conflict"), never coerced and never a 500, except integers
 * that may be whole floats (`widen`: MessagePack's) into a float64 field. So is a tag
 * with the key of a field, or a field with the key of a tag, on other lines (on one line,
 * the field is renamed `<key>_value` by the parsers): InfluxDB keeps the two apart. So is a tag or
 * field key that differs only in ASCII case from a column of the measurement (`usage`
 * beside `Usage`): InfluxDB keys are case-sensitive, but DuckDB, which writes and reads
 * the Parquet files, takes both for one column and refuses to write a table with both.
 * So is a tag or field that would add a column past the measurement's column limit
 * (time, tags and fields together; InfluxDB 3 allows 500 per table): every column is
 * stored and queried densely (DuckDB's flush table, Parquet), so a measurement whose
 * lines each bring a new key would cost rows × keys. The schema of a measurement seen
 * for the first time since start-up is loaded from its stored Parquet files, so
 * conflicts with data written before a restart are caught too, and stored columns
 * count toward the limit (files that already have more stay readable and writable;
 * only new columns are refused).
 */
import { asFloat64, asStringField, type ColumnarBatch, type FieldColumn, type Float64FieldColumn, type Int64FieldColumn, type TagColumn } from '../parse/batch.js';
import type { LineErrors } from '../parse/line-errors.js';
import { asciiLower } from '../parse/names.js';
import type { ColumnKind } from './measurement-buffer.js';

/** A column of a measurement: its name as written, and its kind. */
export interface SchemaColumn {
  readonly name: string;
  readonly kind: ColumnKind;
  /**
   * Set on a `string` column of stored files that do not say whether it is a tag (not
   * written by Strata): the first tag or string field of its name to be accepted fixes it.
   */
  readonly roleUnknown?: true;
}

/** `asciiLower(name)` → column, so that one entry covers every spelling DuckDB takes for the same column; `time` is implicit. */
export type MeasurementSchema = Map<string, SchemaColumn>;

/** Loads the schema of a measurement's stored files (empty map when it has none). */
export type StoredSchemaLoader = (database: string, measurement: string) => Promise<MeasurementSchema>;

/** The outcome of checking one batch against its measurement's schema. */
export interface SchemaCheck {
  /** Per row 1 = rejected; null when every row passes. */
  readonly rejected: Uint8Array | null;
  /** Batch columns that are not the schema's column of their name and type (they lost a clash, or all their rows were rejected); none of their values may be buffered. */
  readonly skip: ReadonlySet<TagColumn | FieldColumn>;
}

/** Caches one schema per (database, measurement); loads each at most once. */
export class SchemaRegistry {
  private readonly schemas = new Map<string, Promise<MeasurementSchema>>();
  /** Keys of the schemas loaded (their promises resolved). */
  private readonly ready = new Set<string>();
  private readonly load: StoredSchemaLoader;

  constructor(load: StoredSchemaLoader) {
    this.load = load;
  }

  /** The live schema object of a measurement (mutated as new columns arrive). */
  get(database: string, measurement: string): Promise<MeasurementSchema> {
    const key = `${database}\u0000${measurement}`;
    let schema = this.schemas.get(key);
    if (schema === undefined) {
      schema = this.load(database, measurement);
      this.schemas.set(key, schema);
      // A failed load is retried by the next write instead of being cached.
      schema.then(() => this.ready.add(key), () => this.schemas.delete(key));
    }
    return schema;
  }

  /** Whether `get` would answer at once: the measurement's schema is loaded. */
  loaded(database: string, measurement: string): boolean {
    return this.ready.has(`${database}\u0000${measurement}`);
  }

  /**
   * One request's `batches` (with `schemas[i]`, the schema of `batches[i]`'s measurement,
   * as it is before the request) with each integer column that may hold whole floats
   * (`mayBeFloat`: MessagePack's) turned into float64 where its field is float64: stored
   * or buffered under the same name, or, for a new field, given floats anywhere in the
   * request, whatever the items' shapes and order, or a NaN among its integers (`sawNaN`). A field stored as int64 keeps its
   * integers (the request's floats for it are then refused), and a new one given only
   * integers becomes int64. Two float64 columns of one name in a batch (a row item's
   * integers beside another's floats) become one. Batches without such columns are
   * returned as they are.
   */
  static widen(schemas: readonly MeasurementSchema[], batches: readonly ColumnarBatch[]): readonly ColumnarBatch[] {
    // Every write passes here; only MessagePack integers need the rest.
    if (!batches.some((b) => b.fields.some((f) => f.type === 'int64' && f.mayBeFloat === true))) return batches;
    // A NaN among integers is a float column's gap (`sawNaN`): evidence of floats, as a float is.
    const floats = fieldNamesWhere(schemas, batches, (f) => f.type === 'float64' || (f.type === 'int64' && f.sawNaN === true));
    return batches.map((batch, i) => {
      const schema = schemas[i];
      const widened = (f: FieldColumn): f is Int64FieldColumn => {
        if (f.type !== 'int64' || f.mayBeFloat !== true) return false;
        const known = schema.get(asciiLower(f.name));
        if (known !== undefined) return known.name === f.name && known.kind === 'float64';
        return floats.get(schema)?.has(f.name) === true;
      };
      if (!batch.fields.some(widened)) return batch;
      const fields: FieldColumn[] = [];
      const floatAt = new Map<string, number>();
      for (const f of batch.fields) {
        const col = widened(f) ? asFloat64(f) : f;
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

  /**
   * One request's `batches` (with `schemas[i]` as in `widen`) with each tag column whose
   * role was guessed (`mayBeField`: a MessagePack columnar string column given no tag list)
   * turned into a string field where its field is a string: stored or buffered under the
   * same name, or a string field of another item of the request. Arc's columnar form has no
   * tags, so Telegraf's Arc output sends string fields as it sends tags: taken for tags, they
   * would conflict with the string fields line protocol stored. Batches without such columns
   * are returned as they are.
   */
  static untag(schemas: readonly MeasurementSchema[], batches: readonly ColumnarBatch[]): readonly ColumnarBatch[] {
    if (!batches.some((b) => b.tags.some((t) => t.mayBeField === true))) return batches;
    const strings = fieldNamesWhere(schemas, batches, (f) => f.type === 'string');
    return batches.map((batch, i) => {
      const schema = schemas[i];
      const isField = (t: TagColumn): boolean => {
        if (t.mayBeField !== true) return false;
        const known = schema.get(asciiLower(t.name));
        if (known !== undefined) return known.name === t.name && known.kind === 'string' && known.roleUnknown !== true;
        return strings.get(schema)?.has(t.name) === true;
      };
      if (!batch.tags.some(isField)) return batch;
      // A columnar item is a batch of its own: its fields have other names than its tags.
      return { ...batch, tags: batch.tags.filter((t) => !isField(t)), fields: [...batch.fields, ...batch.tags.filter(isField).map(asStringField)] };
    });
  }

  /**
   * Checks `batch` against `schema`, adding its new columns to `schema`. Columns the
   * schema knows are checked first; new columns are then resolved a row at a time, so
   * within one request the first row that is accepted fixes a new column's name and
   * type, and rows carrying another type or another spelling are rejected. A row is
   * accepted only when all its columns agree with the schema and with each other (a
   * tag `Host` and a field `host` on one line reject it), and only an accepted row
   * adds columns, so a rejected line never fixes a column's name or type, nor takes
   * a place under the limit.
   * @param maxColumns most columns the measurement may have, `time` included: a row
   *   whose new columns would bring the schema past it is rejected.
   * @param errors gets each rejected row, by its source line, in row order.
   * @param sharedRoles a tag and a string field of one key may share a column, as versions
   *   that logged the write-ahead-log entry being replayed let them.
   */
  static check(schema: MeasurementSchema, batch: ColumnarBatch, maxColumns: number, errors: LineErrors, sharedRoles = false): SchemaCheck {
    let rejected: Uint8Array | null = null;
    const messages: (string | undefined)[] = [];
    interface Candidate { col: TagColumn | FieldColumn; kind: ColumnKind; key: string; present: (row: number) => boolean }
    const candidates: Candidate[] = [
      ...batch.tags.map((t): Candidate => ({ col: t, kind: 'tag', key: asciiLower(t.name), present: (row) => t.codes[row] !== 0 })),
      ...batch.fields.map((f): Candidate => ({ col: f, kind: f.type, key: asciiLower(f.name), present: (row) => f.valid[row] === 1 })),
    ];
    const reject = (row: number, message: string): void => {
      rejected ??= new Uint8Array(batch.rowCount);
      if (rejected[row] === 1) return;
      rejected[row] = 1;
      messages[row] = message;
    };
    /** Why `c` cannot be stored in column `known` (of the same key), or undefined when it can. */
    const conflict = (c: Candidate, known: SchemaColumn): string | undefined => {
      const name = c.col.name;
      if (known.name !== name) {
        return `${c.kind === 'tag' ? 'tag' : 'field'} "${name}" clashes with column "${known.name}" of measurement "${batch.measurement}" (column names are case-insensitive)`;
      }
      // A tag and a string field are both Parquet strings, but InfluxDB keeps tag and field
      // keys apart: one column holding both would mix their values and role file by file.
      if (known.kind === c.kind || (sharedRoles && isText(c.kind) && isText(known.kind))) return undefined;
      return c.kind === 'tag'
        ? `tag "${name}" conflicts with field "${name}" of type ${known.kind} in measurement "${batch.measurement}"`
        : `field "${name}" is ${c.kind} but measurement "${batch.measurement}" stores it as ${known.kind === 'tag' ? 'a tag (string)' : known.kind}`;
    };
    /** Whether `c` may fix the role of `known`, a column of stored files that do not say it, to its own (an accepted row does). */
    const fixesRole = (c: Candidate, known: SchemaColumn): boolean => known.roleUnknown === true && isText(c.kind) && known.name === c.col.name;
    let fresh: Candidate[] = [];
    for (const c of candidates) {
      const known = schema.get(c.key);
      if (known === undefined || fixesRole(c, known)) {
        fresh.push(c);
        continue;
      }
      const message = conflict(c, known);
      if (message === undefined) continue;
      for (let row = 0; row < batch.rowCount; row++) if (c.present(row)) reject(row, message);
    }
    for (let row = 0; row < batch.rowCount && fresh.length > 0; row++) {
      if (rejected !== null && rejected[row] === 1) continue;
      // Columns this row added or whose role it fixed, with what they were: undone if it is rejected.
      const added: [string, SchemaColumn | undefined][] = [];
      let message: string | undefined;
      for (const c of fresh) {
        if (!c.present(row)) continue;
        const known = schema.get(c.key);
        if (known === undefined || fixesRole(c, known)) {
          // + 1: `time` is a column the schema leaves implicit.
          if (known === undefined && schema.size + 1 >= maxColumns) {
            message = `${c.kind === 'tag' ? 'tag' : 'field'} "${c.col.name}" would add a column to measurement "${batch.measurement}" past its limit of ${maxColumns} columns (time, tags and fields)`;
            break;
          }
          schema.set(c.key, { name: c.col.name, kind: c.kind });
          added.push([c.key, known]);
        } else if ((message = conflict(c, known)) !== undefined) {
          break;
        }
      }
      if (message !== undefined) {
        reject(row, message);
        for (const [key, before] of added) {
          if (before === undefined) schema.delete(key);
          else schema.set(key, before);
        }
      } else if (added.length > 0) {
        // Columns now agreeing with the schema pass in every later row.
        fresh = fresh.filter((c) => { const known = schema.get(c.key); return known === undefined || fixesRole(c, known) || conflict(c, known) !== undefined; });
      }
    }
    const skip = new Set<TagColumn | FieldColumn>();
    for (const c of candidates) {
      const known = schema.get(c.key);
      if (known === undefined || conflict(c, known) !== undefined) skip.add(c.col);
    }
    if (rejected !== null) {
      for (let row = 0; row < batch.rowCount; row++) {
        const message = messages[row];
        if (message !== undefined) errors.add(batch.sourceLine[row], message);
      }
    }
    return { rejected, skip };
  }
}

/**
 * One column of the values of `a` and `b`, whose rows are disjoint: they are a row
 * builder's columns of one name and two types, and a row gives a field one value (an
 * item naming it twice keeps one: `RowStage`).
 */
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

/** Whether `kind` is stored as Parquet text: a tag or a string field. */
function isText(kind: ColumnKind): boolean {
  return kind === 'tag' || kind === 'string';
}

/** The names of the fields `wanted` in a request's `batches`, per measurement (by `schemas[i]`, the schema of `batches[i]`). */
function fieldNamesWhere(schemas: readonly MeasurementSchema[], batches: readonly ColumnarBatch[], wanted: (f: FieldColumn) => boolean): Map<MeasurementSchema, Set<string>> {
  const out = new Map<MeasurementSchema, Set<string>>();
  batches.forEach((batch, i) => {
    for (const f of batch.fields) {
      if (!wanted(f)) continue;
      let names = out.get(schemas[i]);
      if (names === undefined) out.set(schemas[i], names = new Set());
      names.add(f.name);
    }
  });
  return out;
}

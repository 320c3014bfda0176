/**
 * Per-measurement schema: the type of every column that is buffered or stored.
 *
 * A field whose type conflicts with the measurement's schema is rejected per line
 * (InfluxDB's "field type conflict"), never coerced and never a 500. The schema of
 * a measurement seen for the first time since start-up is loaded from its stored
 * Parquet files, so conflicts with data written before a restart are caught too.
 */
import type { ColumnarBatch, FieldColumn, TagColumn } from '../parse/batch.js';
import type { LineError } from '../errors.js';
import { storedType, type ColumnKind } from './measurement-buffer.js';

/** Column name → kind; `time` is implicit. */
export type MeasurementSchema = Map<string, ColumnKind>;

/** Loads the schema of a measurement's stored files (empty map when it has none). */
export type StoredSchemaLoader = (database: string, measurement: string) => Promise<MeasurementSchema>;

/** The outcome of checking one batch against its measurement's schema. */
export interface SchemaCheck {
  /** Per row 1 = rejected; null when every row passes. */
  readonly rejected: Uint8Array | null;
  /** One entry per rejected row, in row order. */
  readonly errors: LineError[];
  /** Batch columns that lost a type clash; none of their values may be buffered. */
  readonly skip: ReadonlySet<TagColumn | FieldColumn>;
}

/** Caches one schema per (database, measurement); loads each at most once. */
export class SchemaRegistry {
  private readonly schemas = new Map<string, Promise<MeasurementSchema>>();
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
      schema.catch(() => this.schemas.delete(key));
    }
    return schema;
  }

  /**
   * Checks `batch` against `schema`, adding its new columns to `schema`. Columns the
   * schema knows are checked first; new columns are then resolved in batch order, so
   * within one request the first type seen for a new column wins and rows carrying
   * another type are rejected. A new column is registered only when at least one row
   * carrying it is accepted, so a rejected line never fixes a column's type.
   */
  static check(schema: MeasurementSchema, batch: ColumnarBatch): SchemaCheck {
    let rejected: Uint8Array | null = null;
    const messages: (string | undefined)[] = [];
    const skip = new Set<TagColumn | FieldColumn>();
    interface Candidate { col: TagColumn | FieldColumn; kind: ColumnKind; present: (row: number) => boolean }
    const candidates: Candidate[] = [
      ...batch.tags.map((t): Candidate => ({ col: t, kind: 'tag', present: (row) => t.codes[row] !== 0 })),
      ...batch.fields.map((f): Candidate => ({ col: f, kind: f.type, present: (row) => f.valid[row] === 1 })),
    ];
    const conflicts = (c: Candidate, known: ColumnKind): boolean => {
      if (storedType(known) === storedType(c.kind)) return false;
      skip.add(c.col);
      rejected ??= new Uint8Array(batch.rowCount);
      const name = c.col.name;
      const message = c.kind === 'tag'
        ? `tag "${name}" conflicts with field "${name}" of type ${known} in measurement "${batch.measurement}"`
        : `field "${name}" is ${c.kind} but measurement "${batch.measurement}" stores it as ${known === 'tag' ? 'a tag (string)' : known}`;
      for (let row = 0; row < batch.rowCount; row++) {
        if (!c.present(row) || rejected[row] === 1) continue;
        rejected[row] = 1;
        messages[row] = message;
      }
      return true;
    };
    const fresh: Candidate[] = [];
    for (const c of candidates) {
      const known = schema.get(c.col.name);
      if (known === undefined) fresh.push(c);
      else conflicts(c, known);
    }
    for (const c of fresh) {
      const known = schema.get(c.col.name);
      if (known !== undefined) {
        conflicts(c, known);
        continue;
      }
      let accepted = false;
      for (let row = 0; row < batch.rowCount && !accepted; row++) accepted = c.present(row) && (rejected === null || rejected[row] === 0);
      if (accepted) schema.set(c.col.name, c.kind);
      else skip.add(c.col);
    }
    const errors: LineError[] = [];
    if (rejected !== null) {
      for (let row = 0; row < batch.rowCount; row++) {
        const message = messages[row];
        if (message !== undefined) errors.push({ line: batch.sourceLine[row], message });
      }
    }
    return { rejected, errors, skip };
  }
}

/**
 * One record's tags and fields, staged between scanning and `BatchBuilder`.
 *
 * Row-oriented parsers (line protocol, MessagePack row items) scan a whole record
 * before any of it may reach the builder: a fault late in the record rejects all of
 * it, and the builder wants the timestamp first, which line protocol sends last.
 * The stage is reused from record to record (no object per record) and holds the
 * one implementation of Arc's naming rule for fields that share a tag's name.
 */
import type { BatchBuilder } from './batch.js';
import { nameError } from './names.js';

// Kinds of a staged field value.
const FLOAT = 0;
const INT = 1; // safe integer held as a number
const BIGINT = 2; // int64 beyond ±2^53, held as a bigint
const BOOL = 3;
const STRING = 4;

/** Suffix Arc appends to a field key that is also a tag key of its record. */
const TAG_CLASH_SUFFIX = '_value';

/** A name for an error message: JSON-quoted, cut short so that a huge key cannot make a huge message. */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/**
 * Tags and fields of the record being parsed, in the order given. Use: `clear()`,
 * `addTag`/`addFloat`/... while scanning, `resolveFieldNames()` once the record is
 * complete, then `emit()` when it is accepted. Keys are not validated here except
 * the names `resolveFieldNames` makes.
 */
export class RowStage {
  /** Tags staged for the current record; only that many leading entries of `tagKeys`/`tagValues` are its. */
  tagCount = 0;
  /** Tag keys in the order given (reused arrays: entries past `tagCount` are stale). */
  readonly tagKeys: string[] = [];
  /** Tag values, parallel to `tagKeys`. */
  readonly tagValues: string[] = [];
  /** Fields staged for the current record; only that many leading entries of `fieldKeys` are its. */
  fieldCount = 0;
  /** Field keys in the order given, renamed by `resolveFieldNames` (entries past `fieldCount` are stale). */
  readonly fieldKeys: string[] = [];
  /** Fields the last `resolveFieldNames()` renamed. */
  renamed = 0;
  private readonly kinds: number[] = [];
  private readonly numbers: number[] = [];
  private readonly bigints: bigint[] = [];
  private readonly strings: string[] = [];

  /** Empties the stage for the next record. */
  clear(): void {
    this.tagCount = 0;
    this.fieldCount = 0;
  }

  /** Stages tag `key` = `value`. */
  addTag(key: string, value: string): void {
    const t = this.tagCount++;
    this.tagKeys[t] = key;
    this.tagValues[t] = value;
  }

  /** Stages float64 field `key`. */
  addFloat(key: string, value: number): void {
    this.numbers[this.addField(key, FLOAT)] = value;
  }

  /** Stages int64 field `key` held as a number; `value` must be a safe integer. */
  addInt(key: string, value: number): void {
    this.numbers[this.addField(key, INT)] = value;
  }

  /** Stages int64 field `key` held as a bigint; `value` must be within INT64_MIN..INT64_MAX. */
  addBigInt(key: string, value: bigint): void {
    this.bigints[this.addField(key, BIGINT)] = value;
  }

  /** Stages boolean field `key`. */
  addBool(key: string, value: boolean): void {
    this.numbers[this.addField(key, BOOL)] = value ? 1 : 0;
  }

  /** Stages string field `key`. */
  addString(key: string, value: string): void {
    this.strings[this.addField(key, STRING)] = value;
  }

  /**
   * Folds fields staged twice under one key into one: the last value wins, at the
   * first one's position (InfluxDB line protocol: a duplicate field key overwrites).
   */
  foldDuplicateFields(): void {
    const keys = this.fieldKeys;
    const n = this.fieldCount;
    let unique = 0;
    for (let a = 0; a < n; a++) {
      let b = 0;
      while (b < unique && keys[b] !== keys[a]) b++;
      if (b === unique) unique++;
      if (b !== a) {
        keys[b] = keys[a];
        this.kinds[b] = this.kinds[a];
        this.numbers[b] = this.numbers[a];
        this.bigints[b] = this.bigints[a];
        this.strings[b] = this.strings[a];
      }
    }
    this.fieldCount = unique;
  }

  /**
   * Applies Arc's rule for a field key that is also a tag key of the record: the field
   * is stored as `<key>_value`, so that the tag and the field both keep their values.
   * Sets `renamed` to the number of fields renamed.
   *
   * Where that name is taken too, by another field or a tag of the record, Arc lets one
   * value overwrite the other; here the record is refused instead, since storing it
   * would drop a value the client sent.
   * @returns why the record is refused (the stored name clashes, or breaks `nameError`'s
   *   field key rules), or undefined; the keys are unchanged when it is refused.
   */
  resolveFieldNames(): string | undefined {
    this.renamed = 0;
    const tagCount = this.tagCount;
    if (tagCount === 0) return undefined;
    const keys = this.fieldKeys;
    const n = this.fieldCount;
    let clashes = 0;
    // Checked against the keys as sent before any is renamed, so that a key staged
    // twice (the last value wins) is not taken for a clash with its own rename.
    for (let f = 0; f < n; f++) {
      const key = keys[f];
      if (!this.isTag(key)) continue;
      const stored = key + TAG_CLASH_SUFFIX;
      const fault = nameError('field key', stored) ?? this.takenBy(key, stored);
      if (fault !== undefined) return fault;
      clashes++;
    }
    if (clashes === 0) return undefined;
    for (let f = 0; f < n; f++) if (this.isTag(keys[f])) keys[f] += TAG_CLASH_SUFFIX;
    this.renamed = clashes;
    return undefined;
  }

  /**
   * Appends the staged record to `builder` as a row at `timeUs` (integral µs since the
   * epoch) from source line or item `source`. Call `resolveFieldNames()` first.
   */
  emit(builder: BatchBuilder, timeUs: number, source: number): void {
    builder.addRow(timeUs, source);
    const tagCount = this.tagCount;
    for (let t = 0; t < tagCount; t++) builder.setTag(this.tagKeys[t], this.tagValues[t]);
    const fieldCount = this.fieldCount;
    for (let f = 0; f < fieldCount; f++) {
      const key = this.fieldKeys[f];
      switch (this.kinds[f]) {
        case FLOAT: builder.setFloat(key, this.numbers[f]); break;
        case INT: builder.setInt(key, this.numbers[f]); break;
        case BIGINT: builder.setInt(key, this.bigints[f]); break;
        case BOOL: builder.setBool(key, this.numbers[f] === 1); break;
        default: builder.setString(key, this.strings[f]);
      }
    }
  }

  private addField(key: string, kind: number): number {
    const f = this.fieldCount++;
    this.fieldKeys[f] = key;
    this.kinds[f] = kind;
    return f;
  }

  private isTag(key: string): boolean {
    for (let t = 0; t < this.tagCount; t++) if (this.tagKeys[t] === key) return true;
    return false;
  }

  /** Why field `key` cannot be stored as `stored`, when a tag or another field of the record has that name. */
  private takenBy(key: string, stored: string): string | undefined {
    const what = this.isTag(stored) ? 'tag' : this.fieldKeys.lastIndexOf(stored, this.fieldCount - 1) >= 0 ? 'field' : undefined;
    if (what === undefined) return undefined;
    return `field ${quote(key)} has the name of a tag, so it would be stored as ${quote(stored)}, ` +
      `but the ${what} ${quote(stored)} is also given: rename one of them`;
  }
}

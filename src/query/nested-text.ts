/**
 * DuckDB's text of nested values (LIST, ARRAY, STRUCT, MAP, UNION, VARIANT), as `CAST(v AS VARCHAR)`
 * prints them: what CSV fields and Arrow `Utf8` columns carry for these types
 * (`chunk-columns.ts`, the `plain` texts of an `other` column).
 *
 * The form, checked against DuckDB's own cast in `nested-text.test.ts`:
 * - `[a, b]` for a LIST or ARRAY, `{'name': v}` for a STRUCT (names always quoted),
 *   `(v, w)` for a STRUCT without field names (`row(…)`, a tuple), `{k=v}` for a MAP, the
 *   member's text for a UNION; `NULL` for a NULL inside any of them.
 * - A scalar inside is its own text (`scalarText`: doubles as `1.0`, `1e-05`, `nan`; dates
 *   and timestamps with `(BC)` and `infinity`; TIMESTAMPTZ in the UTC session zone, `+00`),
 *   quoted as `'…'` (with `\'` and `\\`) when it could be misread: empty, `NULL` in any
 *   case, ASCII space at either end, or holding one of `"'(),:=[]{}`. Nested values, UNION
 *   members and JSON are never quoted.
 *
 * node-api's own `toString` of these values differs (its strings always quoted, doubles as
 * JavaScript prints them, infinite dates as far-off years); a STRUCT without field names, or
 * with one named `__proto__`, cannot even be read through its values, whose fields are keyed
 * by name in a plain object: such a column is read by position from its vectors
 * (`unnamed-structs.ts`).
 */
import {
  DuckDBArrayValue, DuckDBBlobValue, DuckDBDateValue, DuckDBGeometryValue, DuckDBListValue, DuckDBMapValue, DuckDBStructValue,
  DuckDBTimestampMillisecondsValue, DuckDBTimestampNanosecondsValue, DuckDBTimestampSecondsValue, DuckDBTimestampTZValue,
  DuckDBTimestampValue, DuckDBTypeId, DuckDBUnionValue, DuckDBVariantValue, type DuckDBArrayType, type DuckDBListType, type DuckDBMapType,
  type DuckDBStructType, type DuckDBType, type DuckDBUnionType, type DuckDBValue,
} from '@duckdb/node-api';
import { civilFromDays, float32Text, INFINITE_DAYS, INFINITE_TIMESTAMP, TWO_DIGITS } from './json-result.js';
import { wkt } from './wkt.js';

const NESTED = new Set([DuckDBTypeId.LIST, DuckDBTypeId.ARRAY, DuckDBTypeId.STRUCT, DuckDBTypeId.MAP, DuckDBTypeId.UNION, DuckDBTypeId.VARIANT]);

/** Whether `type` is a STRUCT without field names (every name empty). */
export function isUnnamed(type: DuckDBStructType): boolean {
  return type.entryNames.every((name) => name === '');
}

/** DuckDB's text of `v`, a non-NULL value of the nested type `type` (LIST, ARRAY, STRUCT, MAP, UNION, VARIANT). */
export function nestedText(v: DuckDBValue, type: DuckDBType): string {
  if (v instanceof DuckDBVariantValue) {
    // DuckDB casts a VARIANT to VARCHAR as it casts the value it holds (whose type node-api recovers).
    if (v.value === null) return 'NULL';
    if (v.type === undefined) return String(v.value);
    return NESTED.has(v.type.typeId) ? nestedText(v.value, v.type) : scalarText(v.value, v.type);
  }
  if (v instanceof DuckDBListValue || v instanceof DuckDBArrayValue) {
    const item = (type as DuckDBListType | DuckDBArrayType).valueType;
    return `[${v.items.map((x) => innerText(x, item)).join(', ')}]`;
  }
  if (v instanceof DuckDBStructValue) {
    const struct = type as DuckDBStructType;
    return structText(struct, struct.entryTypes.map((t, k) => innerText(v.entries[struct.entryNames[k]] ?? null, t)));
  }
  if (v instanceof DuckDBMapValue) {
    const { keyType, valueType } = type as DuckDBMapType;
    return mapText(v.entries.map(({ key, value }) => [innerText(key, keyType), innerText(value, valueType)]));
  }
  if (v instanceof DuckDBUnionValue) {
    const { memberTypes, tagMemberIndexes } = type as DuckDBUnionType;
    const member = memberTypes[tagMemberIndexes[v.tag]];
    return v.value === null ? 'NULL' : NESTED.has(member.typeId) ? nestedText(v.value, member) : scalarText(v.value, member);
  }
  return scalarText(v, type);
}

/** A STRUCT's text from its fields' inner texts: `(a, b)` without field names, else `{'name': a, …}`. */
export function structText(struct: DuckDBStructType, fields: string[]): string {
  return isUnnamed(struct) ? `(${fields.join(', ')})` : `{${fields.map((f, k) => `${quoted(struct.entryNames[k])}: ${f}`).join(', ')}}`;
}

/** A MAP's text from its entries' inner texts: `{k=v, …}`. */
export function mapText(entries: [string, string][]): string {
  return `{${entries.map(([key, value]) => `${key}=${value}`).join(', ')}}`;
}

/** The text of `v` inside a nested value: NULL, nested values and JSON bare, other scalars quoted where they could be misread. */
export function innerText(v: DuckDBValue, type: DuckDBType): string {
  if (v === null) return 'NULL';
  if (NESTED.has(type.typeId)) return nestedText(v, type);
  const text = scalarText(v, type);
  return type.alias === 'JSON' || !needsQuotes(text) ? text : quoted(text);
}

/** ASCII whitespace, as DuckDB trims it. */
const SPACE = /^[ \t\n\v\f\r]|[ \t\n\v\f\r]$/;
const SPECIAL = /["'(),:=[\]{}]/;

function needsQuotes(text: string): boolean {
  return text === '' || SPACE.test(text) || SPECIAL.test(text) || text.toUpperCase() === 'NULL';
}

/** `text` in DuckDB's single quotes, `\` and `'` escaped with a backslash. */
function quoted(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * A BLOB as DuckDB casts it to VARCHAR: printable ASCII as itself, every other byte as
 * `\xHH` (upper-case hex), and so `\`, `'` and `"` (node-api's `toString` leaves `\`
 * as it is, so that the four bytes `\x41` read as the one byte `A`).
 */
export function blobText(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x5c && b !== 0x27 && b !== 0x22 ? String.fromCharCode(b) : `\\x${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

const HEX = '0123456789ABCDEF';

/** DuckDB's VARCHAR text of the scalar `v` (non-NULL) of type `type`. */
export function scalarText(v: DuckDBValue, type: DuckDBType): string {
  if (typeof v === 'number') {
    if (type.typeId === DuckDBTypeId.DOUBLE) return doubleText(v, v);
    if (type.typeId === DuckDBTypeId.FLOAT) return doubleText(v, Number.isFinite(v) ? Number(float32Text(v)) : v);
    return String(v);
  }
  if (v instanceof DuckDBDateValue) return dateText(v.days);
  if (v instanceof DuckDBTimestampTZValue) return timestampText(v.micros, 1_000_000n, 6, '+00');
  if (v instanceof DuckDBTimestampValue) return timestampText(v.micros, 1_000_000n, 6, '');
  if (v instanceof DuckDBTimestampMillisecondsValue) return timestampText(v.millis, 1000n, 3, '');
  if (v instanceof DuckDBTimestampSecondsValue) return timestampText(v.seconds, 1n, 0, '');
  if (v instanceof DuckDBTimestampNanosecondsValue) return timestampText(v.nanos, 1_000_000_000n, 9, '');
  if (v instanceof DuckDBBlobValue) return blobText(v.bytes);
  if (v instanceof DuckDBGeometryValue) return geometryText(v);
  return String(v);
}

/** DuckDB's text of a GEOMETRY: its WKT (`wkt.ts`), or its bytes as a BLOB's should they not read as WKB. */
export function geometryText(v: DuckDBGeometryValue): string {
  return wkt(v.bytes, (d) => doubleText(d, d)) ?? blobText(v.bytes);
}

/**
 * A double as DuckDB prints it (the shortest digits of `digitsOf`, which for a FLOAT are
 * the float32's): fixed notation from 1e-4 to below 1e16 with at least one decimal
 * (`1.0`), exponent notation outside (`1e-05`, `1.5e+16`), `nan`, `inf`, `-inf`, `-0.0`.
 */
function doubleText(v: number, digitsOf: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mantissa, exponent] = digitsOf.toExponential().split('e');
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace(/^-/, '').replace('.', '');
  const exp = Number(exponent);
  if (exp < -4 || exp >= 16) {
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  return `${sign}${digits.slice(0, exp + 1).padEnd(exp + 1, '0')}.${digits.slice(exp + 1) || '0'}`;
}

/**
 * `value` (`perSecond` units since the epoch) as DuckDB prints a timestamp: its date (with
 * `(BC)`), `HH:MM:SS`, the fraction of `digits` digits without trailing zeros, then `zone`;
 * `infinity` and `-infinity`.
 */
function timestampText(value: bigint, perSecond: bigint, digits: number, zone: string): string {
  if (value === INFINITE_TIMESTAMP) return 'infinity';
  if (value === -INFINITE_TIMESTAMP) return '-infinity';
  const perDay = 86_400n * perSecond;
  let days = value / perDay;
  let rest = value % perDay;
  if (rest < 0n) {
    rest += perDay;
    days -= 1n;
  }
  const seconds = Number(rest / perSecond);
  const fraction = digits === 0 ? '' : String(rest % perSecond).padStart(digits, '0').replace(/0+$/, '');
  const time = `${TWO_DIGITS[Math.floor(seconds / 3600)]}:${TWO_DIGITS[Math.floor(seconds / 60) % 60]}:${TWO_DIGITS[seconds % 60]}`;
  return `${dateText(Number(days))} ${time}${fraction === '' ? '' : `.${fraction}`}${zone}`;
}

/** `days` since 1970-01-01 as DuckDB prints a DATE: `YYYY-MM-DD`, years before 1 as `0001-12-31 (BC)`; `infinity`, `-infinity`. */
function dateText(days: number): string {
  if (days === INFINITE_DAYS) return 'infinity';
  if (days === -INFINITE_DAYS) return '-infinity';
  const [year, month, day] = civilFromDays(days);
  const bc = year <= 0;
  return `${String(bc ? 1 - year : year).padStart(4, '0')}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}${bc ? ' (BC)' : ''}`;
}

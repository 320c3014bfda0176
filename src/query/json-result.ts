/**
 * Encodes DuckDB results as Arc's JSON query response:
 * `{"success":true,"columns":[…],"data":[[…]],"row_count":N,"execution_time_ms":T,"timestamp":"…"}`,
 * and their rows as CSV with the same texts of values, bare (RFC 4180 quoting only where a
 * field needs it).
 *
 * Values (as Arc, ../shared/notes/arc-wire-contract.md §5.3): integers of any width as
 * exact JSON numbers (no rounding of BIGINT/HUGEINT through doubles), DECIMAL as a
 * number (Arc's JSON path emits a string — a quirk not kept), FLOAT as the shortest
 * decimal that reads back as the same float32 (`1.1`, as DuckDB prints it; Arc writes the
 * digits of the double it widens to, `1.100000023841858`), NaN/±Inf as null (CSV: `NaN`,
 * `Infinity`, `-Infinity`),
 * timestamps as RFC 3339 UTC with the fraction trimmed (`…T00:00:10.5Z`; up to 9 digits
 * for TIMESTAMP_NS, as DuckDB prints it, so nanoseconds round-trip), dates as
 * `YYYY-MM-DD`, LIST/ARRAY/STRUCT/MAP as JSON arrays and objects (`jsonValue`; a STRUCT
 * without field names as an array, `unnamed-structs.ts`; in CSV DuckDB's text of them, `nested-text.ts`), anything
 * else as its DuckDB string form.
 */
import {
  DuckDBArrayValue, DuckDBBlobValue, DuckDBDateValue, DuckDBDecimalValue, DuckDBGeometryValue, DuckDBListValue, DuckDBMapValue, DuckDBStructValue, DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue, DuckDBTimestampSecondsValue, DuckDBTimestampTZValue, DuckDBTimestampValue, DuckDBTypeId, DuckDBUnionValue, DuckDBVariantValue,
  type DuckDBArrayType, type DuckDBListType, type DuckDBMapType, type DuckDBStructType, type DuckDBType, type DuckDBUnionType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { ResultTooLargeError } from '../errors.js';
import type { Column, ColumnKind } from './chunk-columns.js';
import { blobText, geometryText, nestedText } from './nested-text.js';
import { writeShortest } from './shortest-double.js';

/** DuckDB's ±infinity timestamps: ±(2^63 − 1) in every unit. */
export const INFINITE_TIMESTAMP = 9223372036854775807n;
/** DuckDB's ±infinity dates: ±(2^31 − 1) days. */
export const INFINITE_DAYS = 2147483647;

/** `00`…`99`: hours, minutes and seconds of the time of day by table lookup instead of padStart per value. */
export const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

/**
 * `YYYY-MM-DD` of `days` since the epoch (proleptic Gregorian, integer math: Hinnant's
 * civil_from_days). Not `Date`, whose range (±100,000,000 days) is narrower than DuckDB's
 * DATE and TIMESTAMP ranges. Years outside 0000–9999 as `toISOString` writes them: a sign
 * and at least six digits.
 */
function dayText(days: number): string {
  const [year, month, day] = civilFromDays(days);
  const yearText = year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(6, '0');
  return `${yearText}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}`;
}

/** The proleptic Gregorian [year (0 is 1 BC), month 1–12, day 1–31] of `days` since 1970-01-01 (Hinnant's civil_from_days). */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shifted = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shifted + 2) / 5) + 1;
  const month = shifted < 10 ? shifted + 3 : shifted - 9;
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** Leading zeros of a trimmed fraction: `ZEROS[k]` is k zeros. */
const ZEROS = ['', '0', '00', '000', '0000', '00000', '000000', '0000000', '00000000'];

/**
 * The last day `splitMicros` met and its `YYYY-MM-DDT` text: results are mostly in time
 * order, so one `Date` per day replaces one per value.
 */
let cachedDay = NaN;
let cachedDayText = '';
/** `cachedDayText` as ASCII bytes, for the byte writer, and their count. */
const cachedDayBytes = new Uint8Array(16);
let cachedDayLength = 0;
/**
 * What `splitMicros` and `splitNanos` return besides the day text (module state, so no
 * object per value): µs (or ns) into the second, seconds into the day.
 */
let splitFraction = 0;
let splitTime = 0;

/**
 * Splits `micros` since the epoch (a safe integer) into `cachedDayText`, `splitTime`
 * and `splitFraction`. Integer math only (`%` and exact divisions), so no rounding of
 * large values through floating-point division.
 */
function splitMicros(micros: number): void {
  // Floor of a division, not `%`: V8's `%` on values past int32 is a call to fmod.
  // `Math.floor(a / b)` is exact for |a| < 2^53: the quotient is at least 1/b from the
  // next integer, more than half its ulp.
  const seconds = Math.floor(micros / 1_000_000);
  splitSeconds(seconds, micros - seconds * 1_000_000);
}

/** As `splitMicros`, for whole `seconds` since the epoch and `fraction` µs (0–999,999) or ns (0–999,999,999) into the second. */
function splitSeconds(seconds: number, fraction: number): void {
  const day = Math.floor(seconds / 86_400);
  const time = seconds - day * 86_400;
  if (day !== cachedDay) {
    cachedDayText = dayText(day) + 'T';
    cachedDay = day;
    cachedDayLength = cachedDayText.length;
    for (let i = 0; i < cachedDayLength; i++) cachedDayBytes[i] = cachedDayText.charCodeAt(i);
  }
  splitFraction = fraction;
  splitTime = time;
}

/** 2^32: the weight of an int64's high 32-bit half. */
const TWO_32 = 4294967296;

/**
 * As `splitMicros`, for ns since the epoch given as an int64's little-endian 32-bit halves
 * (`low` signed or unsigned, `high` signed), not ±infinity. Every TIMESTAMP_NS past
 * 1970-04-15 is beyond 2^53 ns, so no BigInt and no rounded double: the double nearest
 * the value is within 2^10 ns of it, so its whole seconds are right or one off; the ns left
 * over, in [−1e9, 2e9) either way, is exact in 32-bit arithmetic (int64 subtraction
 * modulo 2^32), and moves the seconds by one when out of [0, 1e9).
 */
function splitNanos(low: number, high: number): void {
  let seconds = Math.floor((high * TWO_32 + (low >>> 0)) / 1e9);
  let fraction = (low - Math.imul(seconds, 1e9)) | 0;
  if (fraction < 0) {
    fraction += 1e9;
    seconds--;
  } else if (fraction >= 1e9) {
    fraction -= 1e9;
    seconds++;
  }
  splitSeconds(seconds, fraction);
}

/** RFC 3339 UTC text of `micros` since the epoch, a safe integer, fraction trimmed of trailing zeros. */
function timestampText(micros: number): string {
  splitMicros(micros);
  return splitText(6);
}

/**
 * RFC 3339 UTC text of what `splitMicros`, `splitNanos` or `splitSeconds` last split, its
 * fraction of `digits` digits (6: µs, 9: ns) trimmed of trailing zeros.
 */
function splitText(digits: number): string {
  const time = splitTime;
  const minutes = (time - (time % 60)) / 60;
  const text = cachedDayText + TWO_DIGITS[(minutes - (minutes % 60)) / 60] + ':' + TWO_DIGITS[minutes % 60] + ':' + TWO_DIGITS[time % 60];
  let fraction = splitFraction;
  if (fraction === 0) return text + 'Z';
  while (fraction % 10 === 0) {
    fraction /= 10;
    digits--;
  }
  const f = String(fraction);
  return text + '.' + ZEROS[digits - f.length] + f + 'Z';
}

/**
 * Formats integral µs since the epoch as RFC 3339 UTC with the fraction trimmed of
 * trailing zeros; DuckDB's infinite timestamps as `infinity` / `-infinity`.
 */
export function rfc3339FromMicros(micros: bigint): string {
  const n = Number(micros);
  if (Number.isSafeInteger(n)) return timestampText(n);
  if (micros === INFINITE_TIMESTAMP) return 'infinity';
  if (micros === -INFINITE_TIMESTAMP) return '-infinity';
  // Beyond ±2^53 µs (years before 1685 or after 2255) a double cannot hold the value exactly;
  // its whole seconds (below 2^44) can.
  let fraction = micros % 1_000_000n;
  if (fraction < 0n) fraction += 1_000_000n;
  splitSeconds(Number((micros - fraction) / 1_000_000n), Number(fraction));
  return splitText(6);
}

/**
 * Formats integral ns since the epoch (a TIMESTAMP_NS) as RFC 3339 UTC with up to nine
 * fractional digits, trimmed of trailing zeros as `rfc3339FromMicros`; DuckDB's infinite
 * timestamps as `infinity` / `-infinity`.
 */
export function rfc3339FromNanos(nanos: bigint): string {
  if (nanos === INFINITE_TIMESTAMP) return 'infinity';
  if (nanos === -INFINITE_TIMESTAMP) return '-infinity';
  splitNanos(Number(BigInt.asIntN(32, nanos)), Number(nanos >> 32n));
  return splitText(9);
}

/** `YYYY-MM-DD` of `days` since the epoch; DuckDB's infinite dates as `infinity` / `-infinity`. */
export function dateFromDays(days: number): string {
  if (days === INFINITE_DAYS) return 'infinity';
  if (days === -INFINITE_DAYS) return '-infinity';
  return dayText(days);
}

/**
 * For a finite non-negative double `a` below 1e9: the fewest decimals k (1–6) of the
 * shortest text that reads back as `a`, or 0 when `a` is an integer or needs more than six
 * decimals; the k decimals themselves go to `shortFraction`. Since 10^-6 exceeds the double
 * spacing below 1e9, at most one value with six decimals, m/10^6, reads back as `a`; any
 * shorter one is that m without its trailing zeros. So one multiplication decides, and k is
 * 6 minus m's trailing zeros: the digits `String(a)` picks. The decimals are cut from m in
 * 32-bit integers: `%` on a larger double is a call to fmod.
 */
function shortDecimals(a: number): number {
  const m = Math.round(a * 1e6);
  if (m / 1e6 !== a) return 0;
  // Exact (integers below 2^53), and in [0, 1e6): m/1e6 = a lies between ⌊a⌋ and ⌊a⌋ + 1.
  let f = (m - Math.floor(a) * 1e6) | 0;
  if (f === 0) return 0;
  let k = 6;
  while (f % 10 === 0) {
    f = (f / 10) | 0;
    k--;
  }
  shortFraction = f;
  return k;
}

/** The decimals `shortDecimals` found, as an integer of k digits (leading zeros implied). */
let shortFraction = 0;

/**
 * `String(v)` of a finite double `v`, through `JSON.stringify`: ECMAScript defines both as
 * Number::toString, and V8's JSON.stringify skips the number-to-string cache `String`
 * looks up and fills, which a column of distinct values only ever misses. A third less
 * time per long double in the encoder (`json-result.bench.ts`, bench/README.md).
 */
function shortestDigits(v: number): string {
  return JSON.stringify(v);
}

/**
 * `String(v)` of a finite double (but -0 as `-0`), faster for the common values with at most six
 * decimals and a magnitude below 1e9 (V8's shortest-digits search costs ~100–200 ns a
 * value). The byte writer (`writeNumber`) also prints longer ones itself (`writeShortest`).
 */
export function numberText(v: number): string {
  // -0 keeps its sign, as Arc's encoder (Go's strconv) writes it; `String` drops it.
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const a = v < 0 ? -v : v;
  const k = a < 1e9 ? shortDecimals(a) : 0;
  if (k === 0) return shortestDigits(v);
  const fraction = String(shortFraction);
  return (v < 0 ? '-' : '') + Math.floor(a) + '.' + ZEROS[k - fraction.length] + fraction;
}

/** Scratch for reading the bits of a float32. */
const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

/**
 * The shortest decimal that reads back as the float32 `v` (finite), in `String`'s form:
 * a FLOAT as DuckDB prints it (`1.1`), not as the double it widens to
 * (`1.100000023841858`), so a reader parsing a double and narrowing it to a float gets
 * `v` back. Slower than `numberText` (a `toExponential` per length tried), which FLOAT
 * results, rare in time series, can afford.
 */
export function float32Text(v: number): string {
  if (v === 0) return numberText(v);
  F32[0] = v;
  // At a power of two the float below is twice as close as the one above, so the p-digit
  // decimal nearest `v` may fall short of it while the next one away from zero reads back.
  const powerOfTwo = (F32_BITS[0] & 0x7fffff) === 0;
  for (let digits = 1; digits < 9; digits++) {
    const text = v.toExponential(digits - 1);
    const nearest = Number(text);
    if (Math.fround(nearest) === v) return numberText(nearest);
    if (powerOfTwo && Math.abs(nearest) < Math.abs(v)) {
      const e = text.indexOf('e');
      const mantissa = Number(text.slice(0, e).replace('.', ''));
      const above = Number(`${mantissa < 0 ? mantissa - 1 : mantissa + 1}e${Number(text.slice(e + 1)) - digits + 1}`);
      if (Math.fround(above) === v) return numberText(above);
    }
  }
  // Nine significant digits always read back as the same float.
  return numberText(Number(v.toPrecision(9)));
}

/**
 * µs since the epoch of a TIMESTAMP_S or _MS value `v` counted in `unit` (exact: DuckDB
 * keeps both within the µs TIMESTAMP range). DuckDB's ±infinity is ±(2^63 − 1) in every
 * unit: it stays so (±infinity in µs as well) instead of being scaled, which would overflow int64.
 */
export function microsFromUnit(v: bigint, unit: 's' | 'ms'): bigint {
  if (v === INFINITE_TIMESTAMP || v === -INFINITE_TIMESTAMP) return v;
  return unit === 's' ? v * 1_000_000n : v * 1000n;
}

/**
 * One value of SQL type `type` as JSON text. Nested values are JSON too, as Arc answers them
 * (its Go encoder marshals the driver's slices and maps): LIST and ARRAY as arrays, STRUCT as
 * an object of its fields, MAP as an object keyed by its keys' text, UNION as its member's
 * value; their items as a column of the item's type prints (a FLOAT in its fewest digits, a
 * time in RFC 3339, NaN as null).
 */
export function jsonValue(v: DuckDBValue, type: DuckDBType): string {
  if (v instanceof DuckDBListValue || v instanceof DuckDBArrayValue) {
    const item = (type as DuckDBListType | DuckDBArrayType).valueType;
    return `[${v.items.map((x) => jsonValue(x, item)).join(',')}]`;
  }
  if (v instanceof DuckDBStructValue) {
    const { entryNames, entryTypes } = type as DuckDBStructType;
    return `{${entryNames.map((name, i) => `${JSON.stringify(name)}:${jsonValue(v.entries[name], entryTypes[i])}`).join(',')}}`;
  }
  if (v instanceof DuckDBMapValue) {
    const { keyType, valueType } = type as DuckDBMapType;
    // Keyed by DuckDB's text of each key (`infinity`, not node-api's far-off year for an infinite date).
    return `{${v.entries.map(({ key, value }) => `${JSON.stringify(nestedText(key, keyType))}:${jsonValue(value, valueType)}`).join(',')}}`;
  }
  if (v instanceof DuckDBUnionValue) {
    const { memberTypes, tagMemberIndexes } = type as DuckDBUnionType;
    return jsonValue(v.value, memberTypes[tagMemberIndexes[v.tag]]);
  }
  // The value a VARIANT holds, as a column of its type would give it (node-api's text quotes strings).
  if (v instanceof DuckDBVariantValue) return v.value === null ? 'null' : v.type === undefined ? JSON.stringify(String(v.value)) : jsonValue(v.value, v.type);
  switch (typeof v) {
    case 'number': return !Number.isFinite(v) ? 'null' : type.typeId === DuckDBTypeId.FLOAT ? float32Text(v) : numberText(v);
    case 'bigint': return v.toString();
    case 'boolean': return v ? 'true' : 'false';
    case 'string': return JSON.stringify(v);
  }
  if (v === null) return 'null';
  if (v instanceof DuckDBTimestampTZValue || v instanceof DuckDBTimestampValue) return `"${rfc3339FromMicros(v.micros)}"`;
  if (v instanceof DuckDBTimestampMillisecondsValue) return `"${rfc3339FromMicros(microsFromUnit(v.millis, 'ms'))}"`;
  if (v instanceof DuckDBTimestampSecondsValue) return `"${rfc3339FromMicros(microsFromUnit(v.seconds, 's'))}"`;
  if (v instanceof DuckDBTimestampNanosecondsValue) return `"${rfc3339FromNanos(v.nanos)}"`;
  if (v instanceof DuckDBDateValue) return `"${dateFromDays(v.days)}"`;
  if (v instanceof DuckDBDecimalValue) return v.toString();
  if (v instanceof DuckDBBlobValue) return JSON.stringify(blobText(v.bytes));
  if (v instanceof DuckDBGeometryValue) return JSON.stringify(geometryText(v));
  return JSON.stringify(String(v));
}

/**
 * The text of row `i` of `col` in JSON (`json`: strings quoted and escaped, NULL as
 * `null`) or CSV (`csv`: strings raw, NULL as the empty string; RFC 4180 quoting is
 * the caller's). Numbers, booleans and times are the same in both.
 */
export function cellText(col: Column, i: number, mode: 'json' | 'csv'): string {
  if (col.kind === 'other') {
    const text = col.texts[i];
    if (mode === 'json') return text ?? 'null';
    if (text === null) return '';
    if (col.plain !== undefined) return col.plain[i]!;
    return text.startsWith('"') ? (JSON.parse(text) as string) : text;
  }
  if (col.valid !== null && (col.valid[i >>> 3] & (1 << (i & 7))) === 0) return mode === 'json' ? 'null' : '';
  switch (col.kind) {
    case 'f64': case 'f32': {
      const v = col.values[i];
      if (!Number.isFinite(v)) return mode === 'json' ? 'null' : String(v);
      return col.kind === 'f32' ? float32Text(v) : numberText(v);
    }
    case 'bool': return col.values[i] === 0 ? 'false' : 'true';
    case 'timestamp': return mode === 'json' ? `"${rfc3339FromMicros(col.values[i])}"` : rfc3339FromMicros(col.values[i]);
    case 'timestamp_ns': return mode === 'json' ? `"${rfc3339FromNanos(col.values[i])}"` : rfc3339FromNanos(col.values[i]);
    case 'date': return mode === 'json' ? `"${dateFromDays(col.values[i])}"` : dateFromDays(col.values[i]);
    case 'utf8': {
      const text = utf8(col.data, col.offsets[i], col.offsets[i + 1]);
      return mode === 'json' ? JSON.stringify(text) : text;
    }
    case 'binary': case 'list': case 'fixed_list': case 'struct': return arrowOnly(col.kind);
    default: return String(col.values[i]);
  }
}

/** Decodes `data[start, end)` as UTF-8 (Buffer's decoder: faster than TextDecoder for short strings). */
function utf8(data: Uint8Array, start: number, end: number): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8', start, end);
}

/*
 * The JSON row writer: cells are written as bytes into one Buffer per chunk, so the
 * ~60 bytes a row cost no intermediate strings, no string concatenation and no UTF-8
 * encoding pass (together about half the time of the string-building encoder it replaced).
 * The buffer and write position are module state: a chunk is written synchronously.
 */
let out = Buffer.allocUnsafe(0);
let pos = 0;
/** Bytes per row of the last chunk written: the next chunk's first allocation. */
let lastRowBytes = 64;
/**
 * Most the first allocation for a chunk may be, bytes. The last chunk may be another
 * query's, with one huge value (10 MB × 1,000 rows asked Buffer for 10 GB, past its
 * limit, and failed every JSON query of many rows until a small one ran); beyond the
 * cap `ensure` grows the buffer as the rows need. A usual 2,048-row chunk is ~120 KB.
 */
const FIRST_ALLOCATION_MAX = 1 << 20;

/** Makes room for `bytes` more bytes at `pos`. */
function ensure(bytes: number): void {
  if (pos + bytes <= out.length) return;
  const grown = Buffer.allocUnsafe(Math.max(out.length * 2, pos + bytes));
  out.copy(grown, 0, 0, pos);
  out = grown;
}

/** Writes an ASCII string (byte by byte when short: cheaper than a native write call). */
function writeAscii(s: string): void {
  const n = s.length;
  ensure(n);
  if (n > 24) {
    pos += out.write(s, pos, 'latin1');
    return;
  }
  for (let i = 0; i < n; i++) out[pos + i] = s.charCodeAt(i);
  pos += n;
}

/** Writes any string as UTF-8. */
function writeUtf8(s: string): void {
  ensure(s.length * 3);
  pos += out.write(s, pos, 'utf8');
}

/** 10^k for k = 0…15: digit counts of `writeDigits`. */
const POW10_15 = Array.from({ length: 16 }, (_, k) => 10 ** k);

/** Writes the decimal digits of a non-negative integer below 2^53. */
function writeDigits(n: number): void {
  let len = 1;
  while (len < 16 && n >= POW10_15[len]) len++;
  ensure(len);
  let p = pos + len;
  while (n >= 2147483648) {
    const q = Math.floor(n / 10);
    out[--p] = 48 + (n - q * 10);
    n = q;
  }
  // Below 2^31: 32-bit integer division.
  let m = n | 0;
  while (m >= 10) {
    const q = (m / 10) | 0;
    out[--p] = 48 + (m - q * 10);
    m = q;
  }
  out[--p] = 48 + m;
  pos += len;
}

/** Writes exactly `k` digits of the integer `f` (< 10^k ≤ 10^9), zero-padded on the left. */
function writePadded(f: number, k: number): void {
  for (let p = pos + k - 1; p >= pos; p--) {
    const q = (f / 10) | 0;
    out[p] = 48 + (f - q * 10);
    f = q;
  }
  pos += k;
}

/** Writes a double as `numberText` prints it (non-finite values as `null`). */
function writeNumber(v: number): void {
  if (v !== v || v === Infinity || v === -Infinity) {
    writeAscii('null');
    return;
  }
  ensure(25);
  let a = v;
  // -0 too (`numberText`), which `v < 0` misses.
  if (v < 0 || Object.is(v, -0)) {
    out[pos++] = 45;
    a = -v;
  }
  if (a < 9007199254740992 && Number.isInteger(a)) {
    // Integers below 2^53 print all their digits.
    writeDigits(a);
    return;
  }
  const k = a < 1e9 ? shortDecimals(a) : 0;
  if (k === 0) {
    const end = writeShortest(a, out, pos);
    if (end >= 0) pos = end;
    else writeAscii(shortestDigits(a));
    return;
  }
  writeDigits(Math.floor(a));
  out[pos++] = 46;
  writePadded(shortFraction, k);
}

/** Writes an int64 given as its little-endian 32-bit halves; within ±2^53 without a BigInt. */
function writeInt64(low: number, high: number, value: bigint): void {
  if (high >= -0x200000 && high < 0x200000) {
    const n = high * 4294967296 + (low >>> 0);
    if (n < 0) {
      ensure(1);
      out[pos++] = 45;
    }
    writeDigits(n < 0 ? -n : n);
  } else writeAscii(value.toString());
}

/**
 * Whether times and dates are written as JSON strings (quoted) or CSV fields (bare): set
 * by `rowsBytes` for the chunk it writes.
 */
let quoteTimes = true;

/** Writes `s` (ASCII) as a time or date: quoted when `quoteTimes`. */
function writeTimeText(s: string): void {
  writeAscii(quoteTimes ? `"${s}"` : s);
}

/**
 * Where in `out` the last timestamp `writeTimestamp` wrote starts, and its length: time-series
 * rows often share a time, and copying those bytes is cheaper than printing them again.
 * Valid within one chunk (`rowsBytes` forgets it at each start).
 */
let lastStart = 0;
let lastLength = 0;
/** The µs of that timestamp, NaN for none; in a Float64Array, since a double kept in a module variable is boxed at every store. */
const LAST_MICROS = new Float64Array([NaN]);

/** Writes `"<RFC 3339>"` (bare for CSV) of `micros` since the epoch, a safe integer (as `timestampText`). */
function writeTimestamp(micros: number): void {
  ensure(48);
  if (micros === LAST_MICROS[0]) {
    const from = lastStart;
    const n = lastLength;
    for (let i = 0; i < n; i++) out[pos + i] = out[from + i];
    pos += n;
    return;
  }
  lastStart = pos;
  splitMicros(micros);
  writeSplit(6);
  LAST_MICROS[0] = micros;
  lastLength = pos - lastStart;
}

/** Writes `"<RFC 3339>"` (bare for CSV) of ns since the epoch, an int64 given as its little-endian 32-bit halves (as `rfc3339FromNanos`). */
function writeTimestampNanos(low: number, high: number): void {
  // DuckDB's ±infinity, ±(2^63 − 1).
  if (high === 0x7fffffff && low === -1) writeTimeText('infinity');
  else if (high === -0x80000000 && low === 1) writeTimeText('-infinity');
  else {
    ensure(48);
    splitNanos(low, high);
    writeSplit(9);
  }
}

/**
 * Writes `"<RFC 3339>"` (bare for CSV) of what `splitMicros` or `splitNanos` last split, its fraction of
 * `digits` digits trimmed of trailing zeros (as `splitText`), into room already ensured.
 */
function writeSplit(digits: number): void {
  // A local position, stored back once: `pos` is module state, written to memory at every
  // step (with `pos` here, a distinct timestamp took about a sixth longer).
  let p = pos;
  if (quoteTimes) out[p++] = 34;
  const dayLength = cachedDayLength;
  for (let i = 0; i < dayLength; i++) out[p + i] = cachedDayBytes[i];
  p += dayLength;
  const time = splitTime;
  const hours = (time / 3600) | 0;
  const rest = time - hours * 3600;
  const minutes = (rest / 60) | 0;
  p = writePair(hours, p);
  out[p++] = 58;
  p = writePair(minutes, p);
  out[p++] = 58;
  p = writePair(rest - minutes * 60, p);
  let fraction = splitFraction;
  if (fraction !== 0) {
    out[p++] = 46;
    for (let i = p + digits - 1; i >= p; i--) {
      const q = (fraction / 10) | 0;
      out[i] = 48 + (fraction - q * 10);
      fraction = q;
    }
    p += digits;
    // Not zero, so some digit stops the trimming.
    while (out[p - 1] === 48) p--;
  }
  out[p++] = 90;
  if (quoteTimes) out[p++] = 34;
  pos = p;
}

/** Writes the two digits of `n` (0–99) at `p`; returns the position after them. */
function writePair(n: number, p: number): number {
  const tens = (n / 10) | 0;
  out[p] = 48 + tens;
  out[p + 1] = 48 + (n - tens * 10);
  return p + 2;
}

/** Whether `data[start, end)` holds a byte JSON must escape (quote, backslash, control character); other UTF-8 is copied as is. */
function needsEscape(data: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = data[i];
    if (b < 0x20 || b === 0x22 || b === 0x5c) return true;
  }
  return false;
}

/** Whether `data[start, end)` holds a byte that makes a CSV field quoted (RFC 4180: comma, quote, CR, LF). */
function needsCsvQuotes(data: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = data[i];
    if (b === 0x2c || b === 0x22 || b === 0x0d || b === 0x0a) return true;
  }
  return false;
}

/**
 * `text` as an RFC 4180 field: quoted when it holds a comma, quote, CR or LF (quotes
 * doubled), or is empty (`""`, as DuckDB's COPY writes it: a bare empty field is NULL).
 */
export function csvField(text: string): string {
  return text === '' ? '""' : /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Writes `data[start, end)`, a UTF-8 string, as a CSV field (`clean`: no byte of the column needs quoting). */
function writeCsvString(data: Uint8Array, start: number, end: number, clean: boolean): void {
  if (start === end || (!clean && needsCsvQuotes(data, start, end))) {
    writeUtf8(escaped(csvField, data, start, end));
    return;
  }
  ensure(end - start);
  writeBytes(data, start, end);
}

/** Copies `data[start, end)` into room already ensured (byte by byte when short: cheaper than a subarray). */
function writeBytes(data: Uint8Array, start: number, end: number): void {
  const len = end - start;
  if (len > 16) out.set(data.subarray(start, end), pos);
  else for (let i = 0; i < len; i++) out[pos + i] = data[start + i];
  pos += len;
}

/**
 * `escape` of the UTF-8 string `data[start, end)`.
 * @throws ResultTooLargeError when the escaped text is longer than V8's longest string
 *   (2^29 − 24 characters): a value within the 128 MiB bound on text may still escape to
 *   six characters a byte (control characters as `\u0001`).
 */
function escaped(escape: (text: string) => string, data: Uint8Array, start: number, end: number): string {
  try {
    return escape(utf8(data, start, end));
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new ResultTooLargeError(`a text value of ${end - start} bytes is too long once escaped for JSON or CSV (control characters take six characters each): select a part of it (left(value, n)) or ask for Arrow`);
  }
}

/** Writes `data[start, end)`, a UTF-8 string, as a JSON string. */
function writeString(data: Uint8Array, start: number, end: number, clean: boolean): void {
  if (!clean && needsEscape(data, start, end)) {
    writeUtf8(escaped(JSON.stringify, data, start, end));
    return;
  }
  ensure(end - start + 2);
  out[pos++] = 34;
  writeBytes(data, start, end);
  out[pos++] = 34;
}

/**
 * Fails for a column of `kind`, one read for Arrow results only (`binary`, `list`,
 * `fixed_list`, `struct`: `DecimalMode` `arrow`), which JSON and CSV never are.
 * @throws TypeError always.
 */
function arrowOnly(kind: ColumnKind): never {
  throw new TypeError(`a ${kind} column is read for Arrow results only`);
}

/** How `jsonRowsBytes` writes a column (a switch on small integers, not on kind strings). */
const enum Cell { F64, F32, Int, I64, U64, Bool, Timestamp, TimestampNanos, Date, Utf8, Other }

function cellOf(kind: ColumnKind): Cell {
  switch (kind) {
    case 'f64': return Cell.F64;
    case 'f32': return Cell.F32;
    case 'i8': case 'i16': case 'i32': case 'u8': case 'u16': case 'u32': return Cell.Int;
    case 'i64': return Cell.I64;
    case 'u64': return Cell.U64;
    case 'bool': return Cell.Bool;
    case 'timestamp': return Cell.Timestamp;
    case 'timestamp_ns': return Cell.TimestampNanos;
    case 'date': return Cell.Date;
    case 'utf8': return Cell.Utf8;
    case 'other': return Cell.Other;
    case 'binary': case 'list': case 'fixed_list': case 'struct': return arrowOnly(kind);
  }
}

/**
 * Row-major JSON of `rowCount` rows of `columns` (one chunk) as UTF-8 bytes: `[v,…],[v,…]`
 * without the enclosing brackets, preceded by a comma when `continued` (not the first
 * chunk), so chunks can be streamed one after another. Values as `cellText(…, 'json')`.
 * Returns a fresh Buffer the caller may keep.
 */
export function jsonRowsBytes(columns: readonly Column[], rowCount: number, continued: boolean): Buffer {
  return rowsBytes(columns, rowCount, 'json', continued);
}

/** The text formats of query results that `rowsBytes` writes. */
export type TextFormat = 'json' | 'csv';

/**
 * `rowCount` rows of `columns` (one chunk) as UTF-8 bytes in `format`: for `json` as
 * `jsonRowsBytes`; for `csv` as CSV lines (RFC 4180), each ending in CRLF, values as
 * `cellText(…, 'csv')` in `csvField`'s quoting (an empty string as `""`), NULL as an empty
 * field, and a line that would be blank (one column, NULL) as `""` too, which pandas and
 * Python's csv read as a row of one empty value rather than skip (`continued` is for JSON only). One loop
 * for both: the formats differ in a few places. Returns a fresh Buffer the caller may keep.
 */
export function rowsBytes(columns: readonly Column[], rowCount: number, format: TextFormat, continued: boolean): Buffer {
  const csv = format === 'csv';
  const width = columns.length;
  const cells = columns.map((col) => cellOf(col.kind));
  // Each column's arrays in a per-kind list, so every read site sees one typed-array type.
  const numbers: (ArrayLike<number> | null)[] = [];
  const words: (Int32Array | null)[] = [];
  const bigints: (BigInt64Array | BigUint64Array | null)[] = [];
  const valids: (Uint8Array | null)[] = [];
  const clean: boolean[] = [];
  for (const col of columns) {
    const int64 = col.kind === 'i64' || col.kind === 'timestamp' || col.kind === 'timestamp_ns';
    numbers.push(int64 || col.kind === 'u64' || !('values' in col) ? null : col.values);
    bigints.push(int64 || col.kind === 'u64' ? col.values : null);
    words.push(int64 ? new Int32Array(col.values.buffer, col.values.byteOffset, rowCount * 2) : null);
    valids.push(col.kind === 'other' ? null : col.valid);
    clean.push(col.kind === 'utf8' && !(csv ? needsCsvQuotes : needsEscape)(col.data, 0, col.data.length));
  }
  quoteTimes = !csv;
  // The last timestamp's bytes were in the previous chunk's buffer.
  LAST_MICROS[0] = NaN;
  out = Buffer.allocUnsafe(Math.min(rowCount * lastRowBytes, FIRST_ALLOCATION_MAX) + 64);
  pos = 0;
  for (let r = 0; r < rowCount; r++) {
    const rowStart = pos;
    if (!csv) {
      ensure(2);
      if (r > 0 || continued) out[pos++] = 44;
      out[pos++] = 91;
    }
    for (let c = 0; c < width; c++) {
      if (c > 0) {
        ensure(1);
        out[pos++] = 44;
      }
      const valid = valids[c];
      if (valid !== null && (valid[r >>> 3] & (1 << (r & 7))) === 0) {
        if (!csv) writeAscii('null');
        continue;
      }
      switch (cells[c]) {
        case Cell.F64: {
          const v = numbers[c]![r];
          // JSON has no NaN or infinity: null there; CSV readers take `NaN`, `Infinity`.
          if (csv && !Number.isFinite(v)) writeAscii(String(v));
          else writeNumber(v);
          break;
        }
        case Cell.F32: {
          const v = numbers[c]![r];
          writeAscii(Number.isFinite(v) ? float32Text(v) : csv ? String(v) : 'null');
          break;
        }
        case Cell.Int: {
          const n = numbers[c]![r];
          if (n < 0) {
            ensure(1);
            out[pos++] = 45;
          }
          writeDigits(n < 0 ? -n : n);
          break;
        }
        case Cell.I64: writeInt64(words[c]![2 * r], words[c]![2 * r + 1], bigints[c]![r]); break;
        case Cell.U64: writeAscii(bigints[c]![r].toString()); break;
        case Cell.Bool: writeAscii(numbers[c]![r] === 0 ? 'false' : 'true'); break;
        case Cell.Timestamp: {
          const high = words[c]![2 * r + 1];
          if (high >= -0x200000 && high < 0x200000) writeTimestamp(high * 4294967296 + (words[c]![2 * r] >>> 0));
          else writeTimeText(rfc3339FromMicros(bigints[c]![r] as bigint));
          break;
        }
        case Cell.TimestampNanos: writeTimestampNanos(words[c]![2 * r], words[c]![2 * r + 1]); break;
        case Cell.Date: writeTimeText(dateFromDays(numbers[c]![r])); break;
        case Cell.Utf8: {
          const col = columns[c] as Extract<Column, { kind: 'utf8' }>;
          if (csv) writeCsvString(col.data, col.offsets[r], col.offsets[r + 1], clean[c]);
          else writeString(col.data, col.offsets[r], col.offsets[r + 1], clean[c]);
          break;
        }
        case Cell.Other: {
          const col = columns[c] as Extract<Column, { kind: 'other' }>;
          if (!csv) writeUtf8(col.texts[r] ?? 'null');
          else if (col.texts[r] !== null) writeUtf8(csvField(cellText(col, r, 'csv')));
          break;
        }
      }
    }
    if (csv) {
      ensure(4);
      if (pos === rowStart) {
        out[pos++] = 34;
        out[pos++] = 34;
      }
      out[pos++] = 13;
      out[pos++] = 10;
    } else {
      ensure(1);
      out[pos++] = 93;
    }
  }
  if (rowCount > 0) lastRowBytes = Math.ceil(pos / rowCount) + 8;
  const bytes = out.subarray(0, pos);
  out = Buffer.allocUnsafe(0);
  return bytes;
}

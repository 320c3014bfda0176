/**
 * Arc MessagePack write payloads → `ColumnarBatch`es, with a MessagePack reader of our own.
 *
 * Bytes follow the MessagePack spec (https://github.com/msgpack/msgpack/blob/master/spec.md);
 * payload shapes and item fields follow Arc's `POST /api/v1/write/msgpack` contract
 * (../shared/notes/arc-wire-contract.md §2), keeping what clients see and fixing Arc's
 * quirks: no silent drops (every rejected item is reported), no `host="unknown"`
 * overwrite, a float field's integers stored as floats instead of floats truncated (`./numbers.ts`).
 *
 * Why not msgpackr or @msgpack/msgpack: both hand back a float64 whose value is whole
 * (95.0, which Python and Go clients send as 0xcb) as the JS number 95, so the wire type
 * is lost and such a column would be typed int64. Reading the bytes ourselves keeps the
 * wire type, lets float arrays go straight into a Float64Array, and lets repeated tag
 * values be interned by their bytes without building a string per value.
 *
 * `PayloadDecoder` walks one payload item by item; `parseMsgpack` runs it in one go and
 * `./stream.ts` runs it in slices that yield to the event loop.
 */
import { constants, isUtf8 } from 'node:buffer';
import { BadRequestError } from '../../errors.js';
import { LineErrors } from '../line-errors.js';
import { asStringField, BatchBuilder, INT64_MAX, type ColumnarBatch, type FieldColumn, type TagColumn } from '../batch.js';
import { nameError } from '../names.js';
import { markWholeFloats } from './numbers.js';
import { RowStage } from '../row-stage.js';
import { guessTimeUnit, inTimeRange, toMicros, type TimeUnit } from '../time.js';

import type { ParseResult } from '../batch.js';
export type { ParseResult };

// Families of MessagePack values (spec "Type system"); integers and floats are kept apart.
const NIL = 0;
const BOOL = 1;
const INT = 2;
const FLOAT = 3;
const STR = 4;
const BIN = 5;
const ARRAY = 6;
const MAP = 7;
const EXT = 8;
const KIND_NAMES = ['nil', 'bool', 'int', 'float', 'string', 'bin', 'array', 'map', 'ext'];

/** Bytes that follow type bytes 0xc0..0xdf before the value's data (lengths, scalars, ext type). */
const HEADER_BYTES = [
  0, 0, 0, 0, 1, 2, 4, 2, 3, 5, 4, 8, 1, 2, 4, 8, // c0..cf
  1, 2, 4, 8, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4, // d0..df
];

const TWO_32 = 4294967296;
// Strings up to this many bytes (keys, tag values) are interned by content; longer ones
// are mostly unique (log lines) and not worth remembering.
const MAX_CACHED_STRING = 64;
// Distinct strings interned per payload; later new ones are decoded each time. Payloads
// repeat a few keys, names and tag values; a table of every distinct string would cost
// ~80 bytes each for the whole payload, even for the strings of rejected items (a
// million items each naming a new measurement).
const MAX_INTERNED_STRINGS = 65536;

// BOMs are data here, not encoding marks, so they are kept.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

function bad(reason: string): BadRequestError {
  return new BadRequestError(`Invalid MessagePack payload: ${reason}`);
}

/**
 * Rejects one item of the payload. Not an `Error`: capturing a stack trace costs
 * microseconds, payloads may hold many bad items, and it never leaves this module.
 */
class ItemError {
  constructor(readonly message: string) {}
}

/**
 * The UTF-8 string in `buf[start, start + len)`.
 * @throws ItemError when the bytes are not UTF-8 (the spec's str is UTF-8): decoded with
 *   U+FFFD for the bad bytes, different names and values would become one. Or when they
 *   are more than V8's longest string, whose decoding would fail the whole payload.
 */
function decodeUtf8(buf: Uint8Array, start: number, len: number): string {
  if (len > constants.MAX_STRING_LENGTH) throw new ItemError(`string at byte ${start} is longer than ${constants.MAX_STRING_LENGTH} bytes`);
  const bytes = buf.subarray(start, start + len);
  const s = utf8.decode(bytes);
  // U+FFFD may also be sent as such: only then are the bytes checked.
  if (s.includes('\ufffd') && !isUtf8(bytes)) throw new ItemError(`string at byte ${start} is not valid UTF-8`);
  return s;
}

// Seeded per process so that a crafted payload cannot aim for colliding hashes (long
// probe chains would make interning quadratic).
const HASH_SEED = (Math.random() * TWO_32) | 0;

/** Multiplicative hash of `buf[start, end)`, four bytes per step. */
function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = HASH_SEED ^ (end - start);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(h ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)), 0x9e3779b1);
    h ^= h >>> 15;
  }
  for (; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h ^ (h >>> 16);
}

/**
 * Open-addressing hash table from byte ranges of one body to integers, so that a value
 * seen before is found by comparing bytes, without decoding it into a string again.
 */
class ByteTable {
  private slots = new Int32Array(64); // entry index + 1; 0 = empty
  private readonly starts: number[] = [];
  private readonly lengths: number[] = [];
  private readonly hashes: number[] = [];
  private readonly values: number[] = [];
  private hole = 0;

  constructor(private readonly buf: Uint8Array) {}

  /** Value stored for the bytes `buf[start, start + length)`, or -1 (then `add` may follow). */
  get(start: number, length: number, hash: number): number {
    const buf = this.buf;
    const mask = this.slots.length - 1;
    for (let s = hash & mask; ; s = (s + 1) & mask) {
      const e = this.slots[s] - 1;
      if (e < 0) {
        this.hole = s;
        return -1;
      }
      if (this.hashes[e] !== hash || this.lengths[e] !== length) continue;
      const other = this.starts[e];
      let i = 0;
      while (i < length && buf[other + i] === buf[start + i]) i++;
      if (i === length) return this.values[e];
    }
  }

  /** Stores `value` for bytes that the previous `get` did not find. */
  add(start: number, length: number, hash: number, value: number): void {
    this.starts.push(start);
    this.lengths.push(length);
    this.hashes.push(hash);
    this.values.push(value);
    this.slots[this.hole] = this.starts.length;
    if (this.starts.length * 2 > this.slots.length) this.rehash();
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.hashes.length; e++) {
      let s = this.hashes[e] & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = e + 1;
    }
    this.slots = slots;
  }
}

/**
 * Cursor over one MessagePack body. `readValue()` reads one value's header and leaves its
 * family and scalar in the public fields (no object per value); container contents are
 * left for the caller, string and bin bodies are stepped over.
 */
class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  readonly end: number;
  pos = 0;
  /** Integer, float or bool (1/0) value of the last scalar read. */
  num = 0;
  /** Exact value of an int64/uint64 outside ±2^53 (then `num` is its rounding); else undefined. */
  big: bigint | undefined = undefined;
  /** Byte length of the last string, or element count of the last array/map. */
  len = 0;
  /** Offset of the last string's bytes. */
  strStart = 0;
  private readonly strings: ByteTable;
  private readonly stringValues: string[] = [];

  constructor(body: Uint8Array) {
    this.buf = body;
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.end = body.byteLength;
    this.strings = new ByteTable(body);
  }

  /** Throws the payload-level error for data that ends before a value does. */
  truncated(at: number): never {
    throw bad(`unexpected end of data at byte ${at} of ${this.end}`);
  }

  /** Reads one value's header (and a scalar's body); returns its family. */
  readValue(): number {
    const buf = this.buf;
    let p = this.pos;
    if (p >= this.end) this.truncated(p);
    const m = buf[p++];
    this.big = undefined;
    let kind: number;
    let skip = 0; // bytes of string, bin or ext data after the header
    if (m <= 0x7f) {
      this.num = m;
      kind = INT;
    } else if (m >= 0xe0) {
      this.num = m - 0x100;
      kind = INT;
    } else if (m <= 0x8f) {
      this.len = m & 0x0f;
      kind = MAP;
    } else if (m <= 0x9f) {
      this.len = m & 0x0f;
      kind = ARRAY;
    } else if (m <= 0xbf) {
      this.len = skip = m & 0x1f;
      kind = STR;
    } else {
      if (p + HEADER_BYTES[m - 0xc0] > this.end) this.truncated(this.end);
      const v = this.view;
      switch (m) {
        case 0xc0: kind = NIL; break;
        case 0xc2: case 0xc3: this.num = m - 0xc2; kind = BOOL; break;
        case 0xc4: skip = buf[p]; p += 1; kind = BIN; break;
        case 0xc5: skip = v.getUint16(p); p += 2; kind = BIN; break;
        case 0xc6: skip = v.getUint32(p); p += 4; kind = BIN; break;
        case 0xc7: skip = buf[p] + 1; p += 1; kind = EXT; break; // + type byte
        case 0xc8: skip = v.getUint16(p) + 1; p += 2; kind = EXT; break;
        case 0xc9: skip = v.getUint32(p) + 1; p += 4; kind = EXT; break;
        case 0xca: this.num = v.getFloat32(p); p += 4; kind = FLOAT; break;
        case 0xcb: this.num = v.getFloat64(p); p += 8; kind = FLOAT; break;
        case 0xcc: this.num = buf[p]; p += 1; kind = INT; break;
        case 0xcd: this.num = v.getUint16(p); p += 2; kind = INT; break;
        case 0xce: this.num = v.getUint32(p); p += 4; kind = INT; break;
        case 0xcf: {
          const hi = v.getUint32(p);
          if (hi < 0x200000) this.num = hi * TWO_32 + v.getUint32(p + 4);
          else this.num = Number((this.big = v.getBigUint64(p)));
          p += 8;
          kind = INT;
          break;
        }
        case 0xd0: this.num = v.getInt8(p); p += 1; kind = INT; break;
        case 0xd1: this.num = v.getInt16(p); p += 2; kind = INT; break;
        case 0xd2: this.num = v.getInt32(p); p += 4; kind = INT; break;
        case 0xd3: {
          const hi = v.getInt32(p);
          if (hi >= -0x200000 && hi < 0x200000) this.num = hi * TWO_32 + v.getUint32(p + 4);
          else this.num = Number((this.big = v.getBigInt64(p)));
          p += 8;
          kind = INT;
          break;
        }
        case 0xd4: skip = 2; kind = EXT; break; // fixext 1/2/4/8/16, + type byte
        case 0xd5: skip = 3; kind = EXT; break;
        case 0xd6: skip = 5; kind = EXT; break;
        case 0xd7: skip = 9; kind = EXT; break;
        case 0xd8: skip = 17; kind = EXT; break;
        case 0xd9: this.len = skip = buf[p]; p += 1; kind = STR; break;
        case 0xda: this.len = skip = v.getUint16(p); p += 2; kind = STR; break;
        case 0xdb: this.len = skip = v.getUint32(p); p += 4; kind = STR; break;
        case 0xdc: this.len = v.getUint16(p); p += 2; kind = ARRAY; break;
        case 0xdd: this.len = v.getUint32(p); p += 4; kind = ARRAY; break;
        case 0xde: this.len = v.getUint16(p); p += 2; kind = MAP; break;
        case 0xdf: this.len = v.getUint32(p); p += 4; kind = MAP; break;
        default: throw bad(`invalid type byte 0x${m.toString(16)} at byte ${p - 1}`);
      }
    }
    // Every element takes at least one byte: a count the rest of the body cannot hold is
    // truncation, caught here before anyone allocates arrays of that size.
    if (kind === ARRAY ? this.len > this.end - p : kind === MAP && this.len * 2 > this.end - p) this.truncated(this.end);
    if (kind === STR) this.strStart = p;
    p += skip;
    if (p > this.end) this.truncated(this.end);
    this.pos = p;
    return kind;
  }

  /** Steps over `count` whole values, nested ones included (iteratively: no recursion depth to exhaust). */
  skip(count: number): void {
    let remaining = count;
    while (remaining > 0) {
      remaining--;
      const kind = this.readValue();
      if (kind === ARRAY) remaining += this.len;
      else if (kind === MAP) remaining += 2 * this.len;
    }
  }

  /**
   * The last string read, decoded; short ones are decoded once per distinct byte content.
   * @throws ItemError when it is not UTF-8.
   */
  text(): string {
    const start = this.strStart;
    const len = this.len;
    if (len > MAX_CACHED_STRING) return decodeUtf8(this.buf, start, len);
    const hash = hashBytes(this.buf, start, start + len);
    const index = this.strings.get(start, len, hash);
    if (index >= 0) return this.stringValues[index];
    // A fresh string from the decoder shares no memory with the body, so unlike substrings
    // of a text body it needs no flatString() to be kept.
    const s = decodeUtf8(this.buf, start, len);
    if (this.stringValues.length < MAX_INTERNED_STRINGS) {
      this.strings.add(start, len, hash, this.stringValues.length);
      this.stringValues.push(s);
    }
    return s;
  }
}

/**
 * The dictionary of one tag column under construction, keyed by the values' bytes:
 * UTF-8 is one-to-one, so distinct bytes are distinct strings.
 */
class TagInterner {
  readonly dictionary: string[] = [];
  private readonly table: ByteTable;

  constructor(private readonly buf: Uint8Array) {
    this.table = new ByteTable(buf);
  }

  /**
   * Dictionary code (≥ 1) of the string in `buf[start, start + len)`.
   * @throws ItemError when it is not UTF-8.
   */
  code(start: number, len: number): number {
    const hash = hashBytes(this.buf, start, start + len);
    const known = this.table.get(start, len, hash);
    if (known >= 0) return known;
    this.dictionary.push(decodeUtf8(this.buf, start, len));
    const code = this.dictionary.length;
    this.table.add(start, len, hash, code);
    return code;
  }
}

/** A column of numbers: the values as doubles, plus the exact ones a double cannot hold. */
interface NumberColumn {
  name: string;
  kind: 'number';
  values: Float64Array;
  valid: Uint8Array;
  /** Whether any value was a float (then the column is float64, else int64). */
  floats: boolean;
  /** Whether a NaN (a missing value) was among integers: `Int64FieldColumn.sawNaN`. */
  nan: boolean;
  /** Rows (ascending) holding an integer outside ±2^53, and their exact values. */
  bigRows: number[];
  bigValues: bigint[];
}

/** One column of a columnar item as decoded, before the item's `tags` list says what it is. */
type DecodedColumn =
  | { name: string; kind: 'none' }
  | NumberColumn
  | { name: string; kind: 'string'; codes: Uint32Array; dictionary: string[] }
  | { name: string; kind: 'bool'; values: Uint8Array; valid: Uint8Array };

function valueError(name: string, row: number, family: string, kind: number, isTime: boolean): ItemError {
  const got = KIND_NAMES[kind];
  if (isTime) return new ItemError(`invalid timestamp at row ${row} of column 'time': ${got} (expected a number)`);
  if (kind >= BIN) return new ItemError(`column '${name}' has unsupported value type ${got} at row ${row}`);
  return new ItemError(`column '${name}' mixes ${family} and ${got} values (row ${row})`);
}

function tooLarge(what: string, big: bigint): ItemError {
  return new ItemError(`${what}: uint64 value ${big} exceeds the int64 range`);
}

/**
 * Rules of MessagePack logged by earlier versions, kept for write-ahead-log replay, which
 * must reproduce the outcome the server answered (`parse/body.ts`). Live writes follow
 * `LIVE_RULES`.
 */
export interface MsgpackRules {
  /** Integers may be stored as floats (false: logged before they could; `markWholeFloats`). */
  readonly wholeFloats: boolean;
  /** A float NaN is a missing value and ±Infinity a value (false: logged when both refused their item). */
  readonly nonFinite: boolean;
  /**
   * A columnar string column given no tag list may be a string field (`TagColumn.mayBeField`),
   * `tag_keys` is a columnar item's tag list, and a nil `tags` or `tag_keys` is none (false:
   * logged when every string column without a `tags` list was a tag, `tag_keys` was ignored
   * and a nil `tags` refused its item).
   */
  readonly guessedTags: boolean;
}

/** The rules of live writes. */
export const LIVE_RULES: MsgpackRules = { wholeFloats: true, nonFinite: true, guessedTags: true };

// Replay only (`MsgpackRules.nonFinite` false): how earlier versions refused NaN and ±Infinity.
function notFinite(what: string, value: number): ItemError {
  return new ItemError(`${what}: float value ${value} is not a finite number`);
}

/**
 * Decodes `n` numbers from `first` on (earlier rows were nil) at `r.pos`. float64 values
 * are read straight into the Float64Array; other widths go through `readValue`.
 * A NaN (outside the time column) is left as nil.
 * @throws ItemError for a value of another family, a uint64 above int64, or (outside the
 *   time column, `nonFinite` false) a NaN or ±Infinity float.
 */
function decodeNumbers(r: Reader, name: string, first: number, n: number, isTime: boolean, nonFinite: boolean): NumberColumn {
  const { buf, view, end } = r;
  const values = new Float64Array(n);
  const valid = new Uint8Array(n);
  const bigRows: number[] = [];
  const bigValues: bigint[] = [];
  let floats = false;
  let nan = false;
  let p = r.pos;
  for (let i = first; i < n; i++) {
    const m = buf[p];
    if (m === 0xcb && p + 9 <= end) {
      const v = view.getFloat64(p + 1);
      // A non-finite time is refused by the time range check, with the time's own message.
      if (!Number.isFinite(v) && !isTime) {
        if (!nonFinite) throw notFinite(`column '${name}' row ${i}`, v);
        // NaN is a missing value (pandas' gaps, Prometheus' empty summaries), stored as NULL so
        // that aggregates skip it rather than turn NaN; as a nil, it gives the column no type.
        if (v !== v) {
          nan = true;
          p += 9;
          continue;
        }
      }
      floats = true;
      p += 9;
      values[i] = v;
      valid[i] = 1;
      continue;
    }
    if (m === 0xc0 && !isTime) {
      p++;
      continue;
    }
    r.pos = p;
    const kind = r.readValue();
    p = r.pos;
    if (kind === INT) {
      const big = r.big;
      if (big !== undefined) {
        if (big > INT64_MAX) throw tooLarge(`column '${name}' row ${i}`, big);
        bigRows.push(i);
        bigValues.push(big);
      }
    } else if (kind === FLOAT) {
      if (!Number.isFinite(r.num) && !isTime) {
        if (!nonFinite) throw notFinite(`column '${name}' row ${i}`, r.num);
        if (Number.isNaN(r.num)) {
          nan = true;
          continue;
        }
      }
      floats = true;
    } else {
      throw valueError(name, i, 'number', kind, isTime);
    }
    values[i] = r.num;
    valid[i] = 1;
  }
  r.pos = p;
  return { name, kind: 'number', values, valid, floats, nan, bigRows, bigValues };
}

/**
 * Bytes of the float NaN at `p` (9 for a float64, 5 for a float32), 0 for anything else. A
 * NaN is a missing value wherever a column expects another type: pandas gives a gap of an
 * object column (strings, booleans) as a float NaN.
 */
function nanAt(r: Reader, p: number): number {
  const m = r.buf[p];
  if (m === 0xcb && p + 9 <= r.end) return Number.isNaN(r.view.getFloat64(p + 1)) ? 9 : 0;
  if (m === 0xca && p + 5 <= r.end) return Number.isNaN(r.view.getFloat32(p + 1)) ? 5 : 0;
  return 0;
}

/** Decodes `n` strings (or nils, or NaNs when `nonFinite`) from `first` on into dictionary codes. */
function decodeStrings(r: Reader, name: string, first: number, n: number, nonFinite: boolean): DecodedColumn {
  const { buf, end } = r;
  const codes = new Uint32Array(n);
  const interner = new TagInterner(buf);
  let p = r.pos;
  for (let i = first; i < n; i++) {
    const m = buf[p];
    if (m >= 0xa0 && m <= 0xbf) {
      const start = p + 1;
      const len = m & 0x1f;
      p = start + len;
      if (p > end) r.truncated(end);
      codes[i] = interner.code(start, len);
      continue;
    }
    if (m === 0xc0) {
      p++;
      continue;
    }
    const nan = nonFinite ? nanAt(r, p) : 0;
    if (nan > 0) {
      p += nan;
      continue;
    }
    r.pos = p;
    const kind = r.readValue();
    p = r.pos;
    if (kind !== STR) throw valueError(name, i, 'string', kind, false);
    codes[i] = interner.code(r.strStart, r.len);
  }
  r.pos = p;
  return { name, kind: 'string', codes, dictionary: interner.dictionary };
}

/** Decodes `n` booleans (or nils, or NaNs when `nonFinite`) from `first` on. */
function decodeBools(r: Reader, name: string, first: number, n: number, nonFinite: boolean): DecodedColumn {
  const values = new Uint8Array(n);
  const valid = new Uint8Array(n);
  for (let i = first; i < n; i++) {
    const nan = nonFinite ? nanAt(r, r.pos) : 0;
    if (nan > 0) {
      r.pos += nan;
      continue;
    }
    const kind = r.readValue();
    if (kind === NIL) continue;
    if (kind !== BOOL) throw valueError(name, i, 'bool', kind, false);
    values[i] = r.num;
    valid[i] = 1;
  }
  return { name, kind: 'bool', values, valid };
}

/**
 * Decodes the `n` values of column `name` at `r.pos`. The first non-nil value's wire
 * family types the column; ints and floats mix (→ float64), anything else mixed in is an
 * item error.
 */
function decodeColumn(r: Reader, name: string, n: number, nonFinite: boolean): DecodedColumn {
  const buf = r.buf;
  let i = 0;
  // Nils (and NaNs) before the first value give the column no type.
  let nan = false;
  for (let skip = 1; i < n && r.pos < r.end && skip > 0; i++) {
    skip = buf[r.pos] === 0xc0 ? 1 : nonFinite ? nanAt(r, r.pos) : 0;
    if (skip === 0) break;
    nan ||= skip > 1;
    r.pos += skip;
  }
  if (i === n) return { name, kind: 'none' };
  if (r.pos >= r.end) r.truncated(r.end);
  const m = buf[r.pos];
  if (m <= 0x7f || m >= 0xe0 || (m >= 0xca && m <= 0xd3)) {
    const numbers = decodeNumbers(r, name, i, n, false, nonFinite);
    numbers.nan ||= nan;
    // Only NaN and nil: no value, as a column of nils.
    return numbers.valid.includes(1) ? numbers : { name, kind: 'none' };
  }
  if ((m >= 0xa0 && m <= 0xbf) || (m >= 0xd9 && m <= 0xdb)) return decodeStrings(r, name, i, n, nonFinite);
  if (m === 0xc2 || m === 0xc3) return decodeBools(r, name, i, n, nonFinite);
  throw valueError(name, i, '', r.readValue(), false); // bin, ext or a container: unsupported
}

// Typed arrays use the platform's byte order; int64 columns are written as 32-bit halves.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Integer column → BigInt64Array without a BigInt per value: values within ±2^53 are exact
 * in the Float64Array and are split into 32-bit halves; the rare larger ones are patched in.
 */
function toInt64(values: Float64Array, valid: Uint8Array, bigRows: number[], bigValues: bigint[]): BigInt64Array {
  const out = new BigInt64Array(values.length);
  const words = new Int32Array(out.buffer);
  const lo = LITTLE_ENDIAN ? 0 : 1;
  const hi = 1 - lo;
  for (let i = 0; i < values.length; i++) {
    if (valid[i] === 0) continue;
    const v = values[i];
    const high = Math.floor(v / TWO_32);
    words[2 * i + hi] = high;
    words[2 * i + lo] = v - high * TWO_32; // Int32Array stores it modulo 2^32: the low word's bits
  }
  for (let j = 0; j < bigRows.length; j++) out[bigRows[j]] = bigValues[j];
  return out;
}

/** A decoded non-tag column as a batch field. */
function toField(col: Exclude<DecodedColumn, { kind: 'none' }>): FieldColumn {
  switch (col.kind) {
    case 'number':
      if (col.floats) return { name: col.name, type: 'float64', valid: col.valid, values: col.values };
      return {
        name: col.name, type: 'int64', valid: col.valid, values: toInt64(col.values, col.valid, col.bigRows, col.bigValues),
        ...(col.nan ? { sawNaN: true as const } : {}),
      };
    case 'bool':
      return { name: col.name, type: 'bool', valid: col.valid, values: col.values };
    case 'string':
      return asStringField(col);
  }
}

/**
 * Integral µs for a timestamp `num` in `unit`; `big` is its exact value when it is an
 * integer beyond ±2^53 (only nanoseconds can still be in range: they are divided exactly,
 * flooring like `toMicros`). Check the result with `inTimeRange`.
 */
function timestampMicros(num: number, big: bigint | undefined, unit: TimeUnit): number {
  if (big === undefined || unit !== 'ns') return toMicros(num, unit);
  let q = big / 1000n;
  if (big < 0n && q * 1000n !== big) q -= 1n;
  return Number(q);
}

function checkName(kind: 'measurement' | 'tag key' | 'field key', name: string): void {
  const problem = nameError(kind, name);
  if (problem !== undefined) throw new ItemError(problem);
}

/**
 * Decodes one Arc MessagePack payload item by item, so that a caller can pause between
 * items (see `./stream.ts`). Use: `const n = d.start()`, then `d.next()` n times, then
 * `d.finish()`. The body must not change meanwhile. Bytes are read per the MessagePack
 * spec (https://github.com/msgpack/msgpack/blob/master/spec.md).
 *
 * Top-level shapes (Arc contract §2.1): a single item map; a map with `batch` (an array of
 * items; it wins over any sibling keys); or an array of items. Items (§2.2, §2.3): columnar
 * `{m, columns, tags? | tag_keys?}` when `columns` is present, else row `{m, t?, h?, tags?, fields | f}`.
 * Other keys are ignored. An item error rejects that item only.
 */
export class PayloadDecoder {
  private readonly r: Reader;
  private readonly nowUs: number;
  private readonly batches: ColumnarBatch[] = [];
  private readonly errors = new LineErrors();
  private readonly rowBuilders = new Map<string, BatchBuilder>();
  private accepted = 0;
  private nextIndex = 0;
  /** End of the top-level value when known before the items are walked (a map), else -1. */
  private topEnd = -1;

  // Where the current item's known keys' values start (-1 = absent), and its first
  // deferred error (see scanItem).
  private mAt = -1;
  private tAt = -1;
  private hAt = -1;
  private tagsAt = -1;
  /** Offset of a columnar item's `tag_keys` (current Arc clients' name for its `tags` list), or -1. */
  private tagKeysAt = -1;
  private fieldsAt = -1;
  private fAt = -1;
  private columnsAt = -1;
  private batchAt = -1;
  private pending: string | undefined;
  // The current columnar item's columns, decoded while scanning.
  private columns: DecodedColumn[] = [];
  private timeColumn: NumberColumn | null = null;
  private rows = 0;
  /** The current row item's tags and fields, reused from item to item. */
  private readonly stage = new RowStage();
  private readonly arrayFieldNames: string[] = [];
  /** Field keys of the last row item found to have no key twice, in order. */
  private readonly distinctFieldKeys: string[] = [];
  /** Measurements of the items accepted so far: their names need no check. */
  private readonly acceptedMeasurements = new Set<string>();

  /**
   * `body`: one decompressed payload; `nowUs`: the time (µs since the epoch) of records
   * without one; `rules`: `LIVE_RULES`, or those of an earlier version to replay a write
   * it logged, which must keep its outcome.
   */
  constructor(body: Uint8Array, nowUs: number, private readonly rules: MsgpackRules = LIVE_RULES) {
    this.r = new Reader(body);
    this.nowUs = nowUs;
  }

  /**
   * Reads the top-level shape and returns how many items `next()` must decode (0 for a
   * single-item payload, which is decoded here).
   * @throws BadRequestError `Invalid MessagePack payload: …` for an empty body, malformed
   *   or truncated bytes, or a top level that is neither a map nor an array.
   */
  start(): number {
    const r = this.r;
    if (r.end === 0) throw bad('empty body');
    const kind = r.readValue();
    if (kind === ARRAY) return r.len;
    if (kind !== MAP) throw bad(`unsupported top-level type ${KIND_NAMES[kind]} (expected a map or an array)`);
    r.pos = 0;
    const batchAt = this.decodeItem(0, true);
    this.topEnd = r.pos;
    if (batchAt < 0) return 0;
    r.pos = batchAt;
    if (r.readValue() !== ARRAY) throw bad("'batch' must be an array of items");
    return r.len;
  }

  /**
   * Decodes the next item of a batch or top-level array.
   * @throws BadRequestError for malformed or truncated bytes.
   */
  next(): void {
    this.decodeItem(this.nextIndex++, false);
  }

  /**
   * Returns the batches, item errors and accepted count; integer columns that may be
   * whole floats are marked so (`markWholeFloats`) unless the decoder was made with
   * `rules.wholeFloats` false.
   * @throws BadRequestError when bytes follow the top-level value.
   */
  finish(): ParseResult {
    const end = this.topEnd >= 0 ? this.topEnd : this.r.pos;
    if (end !== this.r.end) throw bad(`${this.r.end - end} trailing bytes after the top-level value`);
    for (const builder of this.rowBuilders.values()) for (const batch of builder.build()) this.batches.push(batch);
    return { batches: this.rules.wholeFloats ? markWholeFloats(this.batches) : this.batches, errors: this.errors, accepted: this.accepted };
  }

  /**
   * Decodes the item at the cursor and leaves the cursor after it. For the top-level map,
   * returns where its `batch` value starts instead when it has one; else -1.
   */
  private decodeItem(index: number, topLevel: boolean): number {
    const r = this.r;
    const start = r.pos;
    try {
      const kind = r.readValue();
      if (kind !== MAP) throw new ItemError(`item is not a map (got ${KIND_NAMES[kind]})`);
      this.scanItem(r.len, topLevel);
      if (this.batchAt >= 0) return this.batchAt;
      if (this.pending !== undefined) throw new ItemError(this.pending);
      const end = r.pos;
      if (this.columnsAt >= 0) this.addColumnar(index);
      else this.addRow(index);
      r.pos = end;
    } catch (e) {
      if (!(e instanceof ItemError)) throw e;
      this.errors.add(index, e.message);
      // Resume after the item, checking the rest of its bytes on the way.
      r.pos = start;
      r.skip(1);
    }
    return -1;
  }

  /**
   * Records where the item's known keys' values start and decodes `columns` on the spot
   * (it is most of the payload: one pass). Errors are deferred to the end of the map,
   * because a `batch` key later in a top-level map makes the rest irrelevant.
   */
  private scanItem(entries: number, topLevel: boolean): void {
    const r = this.r;
    this.mAt = this.tAt = this.hAt = this.tagsAt = this.tagKeysAt = this.fieldsAt = this.fAt = this.columnsAt = this.batchAt = -1;
    this.pending = undefined;
    for (let e = 0; e < entries; e++) {
      const keyAt = r.pos;
      const keyKind = r.readValue();
      if (keyKind !== STR) {
        this.pending ??= `item key is not a string (got ${KIND_NAMES[keyKind]})`;
        r.pos = keyAt;
        r.skip(2);
        continue;
      }
      let key: string;
      try {
        key = r.text();
      } catch (err) {
        if (!(err instanceof ItemError)) throw err;
        this.pending ??= err.message;
        r.skip(1);
        continue;
      }
      const at = r.pos;
      switch (key) {
        case 'm': this.mAt = at; break;
        case 't': this.tAt = at; break;
        case 'h': this.hAt = at; break;
        // A nil list or map is none, as Arc reads what a Go client's nil slice or map encodes to.
        case 'tags': if (!this.rules.guessedTags || r.buf[at] !== 0xc0) this.tagsAt = at; break;
        case 'tag_keys': if (this.rules.guessedTags && r.buf[at] !== 0xc0) this.tagKeysAt = at; break;
        case 'fields': this.fieldsAt = at; break;
        case 'f': this.fAt = at; break;
        case 'batch': if (topLevel) this.batchAt = at; break;
        case 'columns':
          this.columnsAt = at;
          try {
            this.decodeColumns();
          } catch (err) {
            if (!(err instanceof ItemError)) throw err;
            this.pending ??= err.message;
            r.pos = at;
            r.skip(1);
          }
          continue;
      }
      r.skip(1);
    }
  }

  /** Decodes the `columns` map at the cursor (Arc contract §2.2). */
  private decodeColumns(): void {
    const r = this.r;
    const kind = r.readValue();
    if (kind !== MAP) throw new ItemError(`'columns' must be a map (got ${KIND_NAMES[kind]})`);
    const count = r.len;
    if (count === 0) throw new ItemError("columnar format requires non-empty 'columns' dict");
    const columns: DecodedColumn[] = [];
    const seen = new Set<string>();
    let time: NumberColumn | null = null;
    let rows = -1;
    for (let c = 0; c < count; c++) {
      const keyKind = r.readValue();
      if (keyKind !== STR) throw new ItemError(`column name is not a string (got ${KIND_NAMES[keyKind]})`);
      const name = r.text();
      if (seen.has(name)) throw new ItemError(`duplicate column '${name}'`);
      seen.add(name);
      const valueKind = r.readValue();
      if (valueKind !== ARRAY) throw new ItemError(`column '${name}' is not an array (got ${KIND_NAMES[valueKind]})`);
      const n = r.len;
      const isTime = name === 'time';
      if (isTime && n === 0) continue; // empty time column: server time, as when absent
      if (rows < 0) rows = n;
      else if (n !== rows) throw new ItemError(`columnar format: array length mismatch (expected ${rows}, got ${n} for '${name}')`);
      // The time column admits numbers only.
      if (isTime) time = decodeNumbers(r, name, 0, n, true, false);
      else columns.push(decodeColumn(r, name, n, this.rules.nonFinite));
    }
    this.columns = columns;
    this.timeColumn = time;
    this.rows = Math.max(rows, 0);
  }

  /** Turns the decoded columns of a columnar item into one batch. */
  private addColumnar(index: number): void {
    const measurement = this.measurement();
    const tagList = this.tagsAt >= 0 || this.tagKeysAt >= 0 ? this.columnTagList() : null;
    const n = this.rows;
    if (n === 0) return;
    const tags: TagColumn[] = [];
    const fields: FieldColumn[] = [];
    for (const col of this.columns) {
      if (col.kind === 'none') continue; // all nil: no type to give it, nothing to store
      const isTag = tagList === null ? col.kind === 'string' : tagList.has(col.name);
      if (isTag) {
        if (col.kind !== 'string') throw new ItemError(`tag column '${col.name}' must hold strings or nil (got ${col.kind} values)`);
        checkName('tag key', col.name);
        const guessed = tagList === null && this.rules.guessedTags;
        tags.push({ name: col.name, codes: col.codes, dictionary: col.dictionary, ...(guessed ? { mayBeField: true as const } : {}) });
      } else {
        checkName('field key', col.name);
        fields.push(toField(col));
      }
    }
    if (tags.length === 0 && fields.length === 0) throw new ItemError("columnar item has no non-nil column besides 'time'");
    const time = this.columnTimes(n);
    this.batches.push({ measurement, rowCount: n, time, tags, fields, sourceLine: new Int32Array(n).fill(index) });
    this.acceptedMeasurements.add(measurement);
    this.accepted += n;
  }

  /**
   * The item's time column in µs: the unit is guessed from the first value and applied to
   * all (Arc contract §2.2); no time column → `nowUs` everywhere.
   */
  private columnTimes(n: number): Float64Array {
    const out = new Float64Array(n);
    const col = this.timeColumn;
    if (col === null) return out.fill(this.nowUs);
    const unit = guessTimeUnit(col.values[0]);
    const { values, bigRows, bigValues } = col;
    let b = 0;
    for (let i = 0; i < n; i++) {
      const big = b < bigRows.length && bigRows[b] === i ? bigValues[b++] : undefined;
      const us = timestampMicros(values[i], big, unit);
      if (!inTimeRange(us)) throw new ItemError(`timestamp ${big ?? values[i]} at row ${i} is out of range`);
      out[i] = us;
    }
    return out;
  }

  /** A columnar item's `tags` or `tag_keys`: the names of the columns that are tags. */
  private columnTagList(): Set<string> {
    if (this.tagsAt >= 0 && this.tagKeysAt >= 0) throw new ItemError("a columnar item gives both 'tags' and 'tag_keys': send one list of tag columns");
    const key = this.tagsAt >= 0 ? 'tags' : 'tag_keys';
    const r = this.r;
    r.pos = Math.max(this.tagsAt, this.tagKeysAt);
    const kind = r.readValue();
    if (kind !== ARRAY) throw new ItemError(`'${key}' of a columnar item must be an array of column names (got ${KIND_NAMES[kind]})`);
    const names = new Set<string>();
    for (let i = r.len; i > 0; i--) {
      const k = r.readValue();
      if (k !== STR) throw new ItemError(`'${key}' must hold column names (got ${KIND_NAMES[k]})`);
      const name = r.text();
      checkName('tag key', name);
      names.add(name);
    }
    return names;
  }

  /** The item's `m`: a string, or an integer n → `measurement_<n>`. */
  private measurement(): string {
    if (this.mAt < 0) throw new ItemError("missing required field 'm' (measurement)");
    const r = this.r;
    r.pos = this.mAt;
    const kind = r.readValue();
    let name: string;
    if (kind === STR) name = r.text();
    else if (kind === INT) name = `measurement_${r.big ?? r.num}`;
    else throw new ItemError(`invalid measurement type: ${KIND_NAMES[kind]}`);
    // Row items repeat their measurement: a name is checked until an item of it is
    // accepted. Remembered only then, so that items rejected for other faults, each
    // naming a new measurement, leave nothing behind.
    if (!this.acceptedMeasurements.has(name)) checkName('measurement', name);
    return name;
  }

  /**
   * Decodes a row item (Arc contract §2.3) into the measurement's BatchBuilder. Everything
   * is read and checked before the row is added, so a rejected item leaves no trace.
   */
  private addRow(index: number): void {
    const measurement = this.measurement();
    const timeUs = this.tAt < 0 ? this.nowUs : this.rowTime();
    const stage = this.stage;
    stage.clear();
    if (this.fieldsAt >= 0) this.readFieldMap();
    else if (this.fAt >= 0) this.readFieldArray();
    else throw new ItemError("missing required field 'fields' or 'f'");
    this.readTags();
    for (let t = 0; t < stage.tagCount; t++) checkName('tag key', stage.tagKeys[t]);
    if (stage.fieldCount === 0) throw new ItemError('item has no non-nil field');
    for (let f = 0; f < stage.fieldCount; f++) checkName('field key', stage.fieldKeys[f]);
    // A map may repeat a key: the last value wins, as in line protocol, before the tag rename is checked.
    if (!this.sameFieldKeysAsLastDistinct()) this.foldFieldKeys();
    const fault = stage.resolveFieldNames();
    if (fault !== undefined) throw new ItemError(fault);

    let builder = this.rowBuilders.get(measurement);
    if (builder === undefined) {
      builder = new BatchBuilder(measurement);
      this.rowBuilders.set(measurement, builder);
      this.acceptedMeasurements.add(measurement);
    }
    stage.emit(builder, timeUs, index);
    this.accepted++;
  }

  /**
   * Whether the staged field keys are those of the last item found to have no key twice:
   * items mostly repeat their keys, and keys are interned, so this is n identity checks
   * instead of the n²/2 string comparisons of folding.
   */
  private sameFieldKeysAsLastDistinct(): boolean {
    const keys = this.stage.fieldKeys;
    const known = this.distinctFieldKeys;
    const n = this.stage.fieldCount;
    if (known.length !== n) return false;
    for (let f = 0; f < n; f++) if (keys[f] !== known[f]) return false;
    return true;
  }

  /** Folds repeated field keys of the staged item and remembers its keys when it had none. */
  private foldFieldKeys(): void {
    const stage = this.stage;
    const n = stage.fieldCount;
    stage.foldDuplicateFields();
    if (stage.fieldCount !== n) return;
    const known = this.distinctFieldKeys;
    known.length = n;
    for (let f = 0; f < n; f++) known[f] = stage.fieldKeys[f];
  }

  /** A row's `t` in µs, its unit guessed from its own magnitude; nil → `nowUs`. */
  private rowTime(): number {
    const r = this.r;
    r.pos = this.tAt;
    const kind = r.readValue();
    if (kind === NIL) return this.nowUs;
    if (kind !== INT && kind !== FLOAT) throw new ItemError(`invalid timestamp 't': ${KIND_NAMES[kind]} (expected a number)`);
    const us = timestampMicros(r.num, r.big, guessTimeUnit(r.num));
    if (!inTimeRange(us)) throw new ItemError(`timestamp ${r.big ?? r.num} is out of range`);
    return us;
  }

  /** The key of a `tags`/`fields` entry at the cursor. */
  private entryKey(map: string): string {
    const kind = this.r.readValue();
    if (kind !== STR) throw new ItemError(`'${map}' has a key that is not a string (got ${KIND_NAMES[kind]})`);
    return this.r.text();
  }

  private readFieldMap(): void {
    const r = this.r;
    r.pos = this.fieldsAt;
    const kind = r.readValue();
    if (kind !== MAP) throw new ItemError(`'fields' must be a map (got ${KIND_NAMES[kind]})`);
    for (let i = r.len; i > 0; i--) this.readField(this.entryKey('fields'));
  }

  /** `f: [v0, v1, …]` → fields `field_0`, `field_1`, …. */
  private readFieldArray(): void {
    const r = this.r;
    r.pos = this.fAt;
    const kind = r.readValue();
    if (kind !== ARRAY) throw new ItemError(`'f' must be an array (got ${KIND_NAMES[kind]})`);
    const names = this.arrayFieldNames;
    const n = r.len;
    for (let i = 0; i < n; i++) this.readField((names[i] ??= `field_${i}`));
  }

  /** Reads the value of field `key` at the cursor into the stage; nil adds nothing. */
  private readField(key: string): void {
    const r = this.r;
    const kind = r.readValue();
    switch (kind) {
      case NIL: return;
      case FLOAT:
        if (!Number.isFinite(r.num)) {
          if (!this.rules.nonFinite) throw notFinite(`field '${key}'`, r.num);
          // As in a column: NaN is a missing value.
          if (Number.isNaN(r.num)) return;
        }
        this.stage.addFloat(key, r.num);
        return;
      case BOOL: this.stage.addBool(key, r.num === 1); return;
      case STR: this.stage.addString(key, r.text()); return;
      case INT:
        if (r.big === undefined) this.stage.addInt(key, r.num);
        else if (r.big > INT64_MAX) throw tooLarge(`field '${key}'`, r.big);
        else this.stage.addBigInt(key, r.big);
        return;
      default: throw new ItemError(`field '${key}' has unsupported value type ${KIND_NAMES[kind]}`);
    }
  }

  /** Reads the row's `tags` map (numbers and bools stringified, nil skipped), then `h`. */
  private readTags(): void {
    const r = this.r;
    if (this.tagsAt >= 0) {
      r.pos = this.tagsAt;
      const kind = r.readValue();
      if (kind !== MAP) throw new ItemError(`'tags' must be a map (got ${KIND_NAMES[kind]})`);
      for (let i = r.len; i > 0; i--) {
        const key = this.entryKey('tags');
        const vk = r.readValue();
        let value: string;
        switch (vk) {
          case NIL: continue;
          case STR: value = r.text(); break;
          case BOOL: value = r.num === 1 ? 'true' : 'false'; break;
          case FLOAT:
            // A missing value, as in a column (earlier versions stored the text "NaN").
            if (Number.isNaN(r.num) && this.rules.nonFinite) continue;
            value = String(r.num);
            break;
          case INT: value = String(r.big ?? r.num); break;
          default: throw new ItemError(`tag '${key}' has unsupported value type ${KIND_NAMES[vk]}`);
        }
        this.stage.addTag(key, value);
      }
    }
    // `h` sets the host tag when present; when absent nothing is added (Arc writes
    // host="unknown", overwriting tags.host: a quirk not kept).
    if (this.hAt >= 0) {
      r.pos = this.hAt;
      const kind = r.readValue();
      if (kind === STR) this.stage.addTag('host', r.text());
      else if (kind === INT) this.stage.addTag('host', `host_${r.big ?? r.num}`);
      else if (kind !== NIL) throw new ItemError(`invalid 'h' (host) type: ${KIND_NAMES[kind]} (expected a string or an integer)`);
    }
  }
}

/**
 * Decodes one Arc MessagePack payload (already decompressed) into columnar batches.
 *
 * Shapes and item rules: see `PayloadDecoder` (MessagePack spec
 * https://github.com/msgpack/msgpack/blob/master/spec.md; Arc contract §2). Column and
 * field types come from the wire markers: float32/float64 → float64 (NaN → NULL, ±Infinity
 * kept), every integer family → int64 (exact beyond 2^53, uint64 above 2^63-1
 * rejected), str → tag or string field
 * (a str that is not UTF-8 rejects its item), bool → bool, nil → NULL. Times are converted to µs; `nowUs` stands in where none is sent.
 *
 * @param body the decompressed request body
 * @param nowUs server time in µs since the epoch
 * @param rules as `PayloadDecoder`'s
 * @throws BadRequestError `Invalid MessagePack payload: …` when the bytes are not
 *   MessagePack (malformed, truncated, trailing bytes) or the top-level shape is wrong;
 *   item-level faults go into `errors` and reject only their item.
 */
export function parseMsgpack(body: Uint8Array, nowUs: number, rules: MsgpackRules = LIVE_RULES): ParseResult {
  const decoder = new PayloadDecoder(body, nowUs, rules);
  for (let n = decoder.start(); n > 0; n--) decoder.next();
  return decoder.finish();
}

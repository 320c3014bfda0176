/**
 * The on-disk format of write-ahead-log entries, and the reader that finds where a
 * segment's valid entries end.
 *
 * A segment file is a sequence of entries, each (little-endian):
 *
 * ```
 *  0  u32  payload length, bytes
 *  4  u32  CRC-32 (IEEE 802.3, zlib's) of the payload
 *  8  payload:
 *       0  u64  LSN (log sequence number), strictly increasing through the log
 *       8  f64  server time in µs for records without a timestamp (integral)
 *      16  u8   format: 4 = line protocol, 6 = MessagePack; logged by earlier versions, whose
 *                rules replay keeps (`BodyFormat`, `DecodedWrite.sharedRoles`): 5 = MessagePack
 *                whose NaN and ±Infinity floats were refused, and, with tags and string
 *                fields sharing columns, 1 = line protocol, 3 = as 5, 2 = as 5 with integers
 *                never stored as floats
 *      17  u8   line-protocol precision: 0 ns, 1 us, 2 ms, 3 s, 4 m, 5 h
 *      18  u16  database name length, bytes (UTF-8)
 *      20  …    database name, then the decompressed request body to the end
 * ```
 *
 * Length and checksum together detect a torn tail (the process or machine died in the
 * middle of a write): an entry whose header is incomplete, whose length runs past the
 * end of the file, or whose checksum does not match ends the valid part of the
 * segment, and everything from it on is cut, never replayed.
 */
import { crc32 } from 'node:zlib';
import type { BodyFormat, DecodedWrite } from '../parse/body.js';
import type { Precision } from '../parse/time.js';

/** Bytes before the payload (length + CRC). */
export const ENTRY_HEADER_BYTES = 8;
/** Fixed payload bytes before the database name. */
const FIXED_BYTES = 20;

/** Codes by format, and by format for versions that let tags and string fields share a column (`sharedRoles`). */
const FORMAT_CODES: Partial<Record<BodyFormat, number>> = { 'line-protocol': 4, 'msgpack-finite': 5, msgpack: 6 };
const SHARED_ROLES_CODES: Partial<Record<BodyFormat, number>> = { 'line-protocol': 1, 'msgpack-int64': 2, 'msgpack-finite': 3 };
const FORMATS: Record<number, { format: BodyFormat; sharedRoles?: true }> = {
  1: { format: 'line-protocol', sharedRoles: true }, 2: { format: 'msgpack-int64', sharedRoles: true }, 3: { format: 'msgpack-finite', sharedRoles: true },
  4: { format: 'line-protocol' }, 5: { format: 'msgpack-finite' }, 6: { format: 'msgpack' },
};
const PRECISIONS: readonly Precision[] = ['ns', 'us', 'ms', 's', 'm', 'h'];

/** A logged write and its LSN. */
export interface WalEntry {
  readonly lsn: number;
  readonly write: DecodedWrite;
}

/**
 * Encodes an entry as two buffers to be written back to back: the header with the
 * fixed fields and database name, then the body itself (not copied).
 * @throws Error for a format and `sharedRoles` no version logged together.
 */
export function encodeEntry(lsn: number, w: DecodedWrite): [Buffer, Buffer] {
  const code = (w.sharedRoles === true ? SHARED_ROLES_CODES : FORMAT_CODES)[w.format];
  if (code === undefined) throw new Error(`no write-ahead-log format for ${w.format}${w.sharedRoles === true ? ' with sharedRoles' : ''}`);
  const db = Buffer.from(w.database, 'utf8');
  const head = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + FIXED_BYTES + db.length);
  head.writeBigUInt64LE(BigInt(lsn), 8);
  head.writeDoubleLE(w.nowUs, 16);
  head.writeUInt8(code, 24);
  head.writeUInt8(PRECISIONS.indexOf(w.precision), 25);
  head.writeUInt16LE(db.length, 26);
  db.copy(head, 28);
  const fixed = head.subarray(ENTRY_HEADER_BYTES);
  head.writeUInt32LE(fixed.length + w.body.length, 0);
  // zlib's crc32() answers 0 for a NULL buffer, which an empty Buffer may pass: skip it.
  head.writeUInt32LE(w.body.length === 0 ? crc32(fixed) : crc32(w.body, crc32(fixed)), 4);
  return [head, w.body];
}

/** What `decodeEntries` found in a segment. */
export interface DecodedSegment {
  /** The valid entries, in file order. */
  readonly entries: WalEntry[];
  /** Bytes of the valid prefix: where the next entry would start. */
  readonly validBytes: number;
  /** Why the rest of the file (from `validBytes`) is not valid; undefined when the whole file is. */
  readonly cut?: string;
}

/**
 * Decodes the entries of segment contents `data`, stopping at the first torn or
 * corrupt one, or at an LSN not above `afterLsn` and the previous entry's (an entry
 * out of sequence can only be garbage that happens to checksum).
 * Bodies are views into `data`, not copies.
 */
export function decodeEntries(data: Buffer, afterLsn = 0): DecodedSegment {
  const entries: WalEntry[] = [];
  let offset = 0;
  let last = afterLsn;
  const stop = (cut: string): DecodedSegment => ({ entries, validBytes: offset, cut });
  while (offset < data.length) {
    if (data.length - offset < ENTRY_HEADER_BYTES) return stop(`incomplete entry header (${data.length - offset} bytes)`);
    const length = data.readUInt32LE(offset);
    if (length < FIXED_BYTES || length > data.length - offset - ENTRY_HEADER_BYTES) {
      return stop(`entry of ${length} bytes runs past the end of the file (${data.length - offset - ENTRY_HEADER_BYTES} left)`);
    }
    const payload = data.subarray(offset + ENTRY_HEADER_BYTES, offset + ENTRY_HEADER_BYTES + length);
    if (crc32(payload) !== data.readUInt32LE(offset + 4)) return stop('checksum mismatch');
    const lsn = Number(payload.readBigUInt64LE(0));
    const format = FORMATS[payload.readUInt8(16)] as (typeof FORMATS)[number] | undefined;
    const precision = PRECISIONS[payload.readUInt8(17)];
    const dbLength = payload.readUInt16LE(18);
    if (!(lsn > last) || format === undefined || precision === undefined || FIXED_BYTES + dbLength > length) {
      return stop(`invalid entry fields (LSN ${lsn} after ${last})`);
    }
    entries.push({
      lsn,
      write: {
        database: payload.toString('utf8', FIXED_BYTES, FIXED_BYTES + dbLength),
        ...format, precision, nowUs: payload.readDoubleLE(8),
        body: payload.subarray(FIXED_BYTES + dbLength),
      },
    });
    last = lsn;
    offset += ENTRY_HEADER_BYTES + length;
  }
  return { entries, validBytes: offset };
}

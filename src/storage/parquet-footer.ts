/**
 * A Parquet file's footer read from the end of a stored object, and the smallest file
 * DuckDB reads the same schema and metadata from.
 *
 * A Parquet file starts with the magic `PAR1` and ends with its metadata (Thrift
 * `FileMetaData`: schema, row groups, key-value metadata), the metadata's length (4
 * bytes, little-endian) and `PAR1` again. `PAR1` followed by that tail is a file whose
 * `parquet_schema`, `parquet_kv_metadata` and `DESCRIBE` DuckDB answers exactly as for
 * the whole file, from a few KB instead of the whole object; its row groups point at
 * data it does not hold, so it must never be scanned.
 */
import { DamagedFileError } from '../errors.js';

/**
 * Bytes read from an object's end first: a footer holds the schema and each row
 * group's column statistics, a few KB for Strata's files, so one read almost always
 * holds it whole (`test/s3-storage.test.ts` reads a 1,500-column file whose footer does not fit).
 */
export const FOOTER_TAIL_BYTES = 64 * 1024;

const MAGIC = Buffer.from('PAR1', 'ascii');
/** Leading magic, metadata length, trailing magic. */
const FRAME_BYTES = 12;

/** Bytes of a stored object read by range, with the object's whole size as the store reports it. */
export interface ObjectRange {
  /** The bytes asked for (up to the object's end; none when it ends before them). */
  readonly bytes: Buffer;
  /** Size of the whole object, bytes. */
  readonly size: number;
}

/** Reads bytes `start` to `end` (inclusive, 0-based) of one object. */
export type RangeReader = (start: number, end: number) => Promise<ObjectRange>;

/**
 * The content of a stub file for the Parquet object `key` (`PAR1`, then its metadata,
 * the metadata's length and `PAR1`), read with one `read` of its last
 * `FOOTER_TAIL_BYTES` bytes and, when the metadata is longer, one more of exactly the
 * missing part.
 * @param size the object's size in bytes as listed; when the store reports another
 *   (the object was replaced since it was listed), the tail is read again at that size.
 * @throws DamagedFileError naming `key` when the object cannot be a Parquet file (too
 *   short, no magic, a metadata length beyond the object); whatever `read` throws.
 */
export async function footerStub(key: string, size: number, read: RangeReader): Promise<Buffer> {
  let tail = await readTail(key, size, read);
  if (tail.size !== size) tail = await readTail(key, tail.size, read);
  const { bytes, size: total } = tail;
  if (!bytes.subarray(bytes.length - 4).equals(MAGIC)) throw new DamagedFileError(key, 'no Parquet magic at its end');
  const length = bytes.readUInt32LE(bytes.length - 8);
  if (length + FRAME_BYTES > total) throw new DamagedFileError(key, `footer length ${length} exceeds the object's ${total} bytes`);
  // The whole object came back: its leading magic is checked too.
  if (bytes.length === total && !bytes.subarray(0, 4).equals(MAGIC)) throw new DamagedFileError(key, 'no Parquet magic at its start');
  const footer = length + 8;
  if (footer <= bytes.length) return Buffer.concat([MAGIC, bytes.subarray(bytes.length - footer)]);
  const missing = await read(total - footer, total - bytes.length - 1);
  return Buffer.concat([MAGIC, missing.bytes, bytes]);
}

/** The last `FOOTER_TAIL_BYTES` bytes (or all) of an object of `size` bytes. */
async function readTail(key: string, size: number, read: RangeReader): Promise<ObjectRange> {
  if (size < FRAME_BYTES) throw new DamagedFileError(key, `${size} bytes, too short for Parquet`);
  return read(Math.max(0, size - FOOTER_TAIL_BYTES), size - 1);
}

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
import { DamagedFileError, StoredFileChangedError } from '../errors.js';

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
  /**
   * The object's version tag as the store reports it (S3's ETag), if it does: two reads
   * that report different tags read two different objects stored under one key.
   */
  readonly version?: string;
}

/** Reads bytes `start` to `end` (inclusive, 0-based) of one object. */
export type RangeReader = (start: number, end: number) => Promise<ObjectRange>;

/**
 * Times the footer of one object is read, each time from the object's end at the size
 * the store last reported, before giving up on an object that keeps being replaced.
 */
const MAX_FOOTER_READS = 3;

/**
 * The content of a stub file for the Parquet object `key` (`PAR1`, then its metadata,
 * the metadata's length and `PAR1`), read with one `read` of its last
 * `FOOTER_TAIL_BYTES` bytes and, when the metadata is longer, one more of exactly the
 * missing part.
 * @param size the object's size in bytes as listed. When the store reports another
 *   size or version between or during the reads (the object was replaced: since it was
 *   listed, or between the two reads of a long footer), the footer is read again from
 *   the object's end at the size it last reported, up to `MAX_FOOTER_READS` times.
 * @throws DamagedFileError naming `key` when the object cannot be a Parquet file (too
 *   short, no magic, a metadata length beyond the object); StoredFileChangedError naming
 *   `key` when it changed during each of `MAX_FOOTER_READS` reads; whatever `read` throws.
 */
export async function footerStub(key: string, size: number, read: RangeReader): Promise<Buffer> {
  let at = size;
  for (let reads = 1; ; reads++) {
    const footer = await readFooter(key, at, read);
    if (Buffer.isBuffer(footer)) return footer;
    if (reads === MAX_FOOTER_READS) throw new StoredFileChangedError(key, MAX_FOOTER_READS);
    at = footer.size;
  }
}

/**
 * The stub of `key` read from the end of an object of `size` bytes, or the size the
 * store reported instead when the object read is not that one (another size, or a
 * second read of another version).
 */
async function readFooter(key: string, size: number, read: RangeReader): Promise<Buffer | { size: number }> {
  if (size < FRAME_BYTES) throw new DamagedFileError(key, `${size} bytes, too short for Parquet`);
  const tail = await read(Math.max(0, size - FOOTER_TAIL_BYTES), size - 1);
  if (tail.size !== size) return { size: tail.size };
  const { bytes } = tail;
  if (!bytes.subarray(bytes.length - 4).equals(MAGIC)) throw new DamagedFileError(key, 'no Parquet magic at its end');
  const length = bytes.readUInt32LE(bytes.length - 8);
  if (length + FRAME_BYTES > size) throw new DamagedFileError(key, `footer length ${length} exceeds the object's ${size} bytes`);
  // The whole object came back: its leading magic is checked too.
  if (bytes.length === size && !bytes.subarray(0, 4).equals(MAGIC)) throw new DamagedFileError(key, 'no Parquet magic at its start');
  const footer = length + 8;
  if (footer <= bytes.length) return Buffer.concat([MAGIC, bytes.subarray(bytes.length - footer)]);
  const missing = await read(size - footer, size - bytes.length - 1);
  // Replaced since the tail was read: its start would be spliced onto another object's end.
  if (missing.size !== size || missing.version !== tail.version) return { size: missing.size };
  return Buffer.concat([MAGIC, missing.bytes, bytes]);
}

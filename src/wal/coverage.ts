/**
 * Which WAL entries each Parquet file holds records of: the key/value metadata
 * `strata:wal = "{walId}:{LSN ranges}"` the writer adds to every file, and the index
 * replay reads it back through, so that records already in storage are not written
 * twice (exactly-once across crashes).
 *
 * Why per (database, measurement, hour) and per LSN is exact: one WAL entry is one
 * request; the BufferManager appends all records of an entry for one measurement to
 * the buffer in one synchronous step, so they all land in one snapshot; the writer
 * splits a snapshot into one file per UTC hour, each file atomically put. So for an
 * entry L and a (database, measurement, hour), either a file listing L exists and holds
 * every record of L there, or none of them is stored. Replay skips exactly the records
 * whose (database, measurement, hour) has a file listing their LSN.
 */
import type { DuckDBPool } from '../query/duckdb-pool.js';
import { quoteLiteral } from '../query/sql-text.js';
import type { Storage } from '../storage/storage.js';
import { hourPrefix } from '../write/layout.js';
import { LsnSet } from './lsn-set.js';

/** Parquet key/value metadata key holding a file's WAL coverage. */
export const WAL_COVERAGE_KEY = 'strata:wal';

/** The key/value metadata recording that a file holds records of the entries `lsns` of log `walId`. */
export function coverageMetadata(walId: string, lsns: readonly number[]): Record<string, string> {
  return lsns.length === 0 ? {} : { [WAL_COVERAGE_KEY]: `${walId}:${LsnSet.of(lsns).toString()}` };
}

/** Reads and caches the coverage of stored files per (database, measurement, hour). */
export class CoverageIndex {
  private readonly cache = new Map<string, Promise<LsnSet>>();

  /**
   * @param walId only coverage written by this log counts.
   * @param pool DuckDB connections to read Parquet footers with.
   */
  constructor(private readonly storage: Storage, private readonly pool: DuckDBPool, private readonly walId: string) {}

  /**
   * LSNs of log `walId` whose records of `measurement` in hour partition `hour` are in
   * stored files. Read once per key: files written later (by replay itself) only cover
   * entries already replayed.
   * @throws when the backend cannot list or DuckDB cannot read a footer.
   */
  covered(database: string, measurement: string, hour: number): Promise<LsnSet> {
    const key = `${database}\u0000${measurement}\u0000${hour}`;
    let set = this.cache.get(key);
    if (set === undefined) {
      set = this.read(hourPrefix(database, measurement, hour));
      this.cache.set(key, set);
    }
    return set;
  }

  private async read(prefix: string): Promise<LsnSet> {
    const objects = await this.storage.list(prefix);
    if (objects.length === 0) return LsnSet.of([]);
    // Only footers are read: on S3, nothing is downloaded for them.
    const files = await this.storage.openFooters(objects);
    try {
      const list = files.paths.map(quoteLiteral).join(', ');
      const reader = await this.pool.use((conn) => conn.runAndReadAll(
        `SELECT decode(value) FROM parquet_kv_metadata([${list}]) WHERE decode(key) = ${quoteLiteral(WAL_COVERAGE_KEY)}`,
      ));
      const sets: LsnSet[] = [];
      const mine = `${this.walId}:`;
      for (const [value] of reader.getRows()) {
        const text = String(value);
        if (text.startsWith(mine)) sets.push(LsnSet.parse(text.slice(mine.length)));
      }
      return LsnSet.merge(sets);
    } finally {
      files.release();
    }
  }
}

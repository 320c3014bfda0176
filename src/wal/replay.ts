/**
 * Crash recovery: replays the write-ahead log through the same parse → buffer path as
 * live writes (`parse/body.ts`, `BufferManager.ingest`), skipping the records that a
 * Parquet file already holds (`wal/coverage.ts`), so that after any crash every
 * acknowledged record is stored exactly once.
 */
import type { BufferManager } from '../buffer/buffer-manager.js';
import type { ColumnarBatch } from '../parse/batch.js';
import { parseDecodedWrite } from '../parse/body.js';
import { hourOf } from '../write/layout.js';
import type { CoverageIndex } from './coverage.js';
import type { WriteAheadLog } from './wal.js';

/** What a replay did. */
export interface ReplaySummary {
  /** WAL entries read. */
  entries: number;
  /** Records buffered again (they were not in storage). */
  records: number;
  /** Records skipped because a Parquet file already holds them. */
  skipped: number;
  /** Entries with rejected records (the first NAMED_ENTRIES of them are logged, naming their lines). */
  entriesRejecting: number;
  /** Records rejected again (bad lines, type conflicts), as they were when first written (entries of earlier versions under their rules: `DecodedWrite.sharedRoles`). */
  rejected: number;
}

/** Entries with rejected records whose lines a warning names; the rest are counted in the summary. */
const NAMED_ENTRIES = 10;

/** What `replayWal` reads from and writes into (wired by `Strata.start` in src/app.ts). */
export interface ReplayDependencies {
  /** The log to replay: opened, not yet appending. */
  wal: WriteAheadLog;
  /** Takes the replayed records as live writes do; flushed when full. */
  buffers: BufferManager;
  /** Which records of each entry stored Parquet files already hold (skipped). */
  coverage: CoverageIndex;
  /** Reports flushes that failed during replay (their records stay held and are retried). */
  log: { warn(obj: object, msg: string): void };
}

/**
 * Replays every entry of `wal` (call before `wal.startAppending()`) into `buffers`,
 * flushing whenever the buffers reach their byte bound so that memory stays bounded.
 * Each entry's segment hold is released once its records are buffered; the segments
 * are deleted as the buffers' snapshots are written.
 * @throws when a measurement's stored schema or a file's coverage cannot be read: the
 *   server must not start then (the log is kept intact for the next attempt).
 */
export async function replayWal(d: ReplayDependencies): Promise<ReplaySummary> {
  const summary: ReplaySummary = { entries: 0, records: 0, skipped: 0, entriesRejecting: 0, rejected: 0 };
  for await (const { lsn, write } of d.wal.recover()) {
    summary.entries++;
    const parsed = await parseDecodedWrite(write);
    const omit = new Map<ColumnarBatch, Uint8Array>();
    for (const batch of parsed.batches) {
      const mask = await storedRows(d.coverage, write.database, batch, lsn);
      if (mask === undefined) continue;
      omit.set(batch, mask);
      summary.skipped += mask.reduce((n, v) => n + v, 0);
    }
    const ingested = await d.buffers.ingest(write.database, parsed.batches, { lsn, omit, sharedRoles: write.sharedRoles === true });
    d.wal.release([lsn]);
    summary.records += ingested.accepted;
    const rejected = parsed.errors.count + ingested.errors.count;
    summary.rejected += rejected;
    if (rejected > 0 && ++summary.entriesRejecting <= NAMED_ENTRIES) {
      // Answered 400 (partly or whole) when they were written; named here so that an operator
      // can tell them from records a new version's rules would refuse. The first entries only:
      // a client that kept sending bad lines would fill the log; the summary counts them all.
      const lines = [...parsed.errors.first, ...ingested.errors.first].sort((a, b) => a.line - b.line).slice(0, 10).map((e) => `line ${e.line}: ${e.message}`);
      d.log.warn({ lsn, database: write.database, rejected, lines }, 'WAL replay: lines refused again, as when they were written');
    }
    if (d.buffers.full) {
      await d.buffers.flushAll().catch((err: unknown) => d.log.warn({ err }, 'WAL replay: flush failed; records kept and retried'));
    }
  }
  return summary;
}

/** Rows (1) of `batch` whose hour partition already has a file covering entry `lsn`; undefined when none. */
async function storedRows(coverage: CoverageIndex, database: string, batch: ColumnarBatch, lsn: number): Promise<Uint8Array | undefined> {
  const stored = new Map<number, boolean>();
  let mask: Uint8Array | undefined;
  for (let row = 0; row < batch.rowCount; row++) {
    const hour = hourOf(batch.time[row]);
    let covered = stored.get(hour);
    if (covered === undefined) {
      covered = (await coverage.covered(database, batch.measurement, hour)).has(lsn);
      stored.set(hour, covered);
    }
    if (covered) (mask ??= new Uint8Array(batch.rowCount))[row] = 1;
  }
  return mask;
}

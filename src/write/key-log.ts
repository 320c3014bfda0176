/**
 * The order in which the Parquet writer chooses its files' keys, remembered while queries
 * list files, so that a query answers the data as it stood when it took the buffers'
 * held records (read-your-writes), with no part of a flush that started later.
 *
 * A query takes its held records and a cut (`ListingCut`) in one synchronous step, then
 * lists the stored files, which takes time (S3, the local disk). Meanwhile a flush may
 * start and write its records, one file per hour partition. Those files may hold records
 * the query already read from memory (the live buffer it took, detached since), which must
 * not be read twice, and records acknowledged after the query took its records: without
 * the cut, the listing could show some of those files and not the others, a torn write
 * (records of one write request in one hour and not in the next), or a later flush's
 * records without an earlier one's. The writer notes every key before
 * its file is put in storage, so any file a listing shows had its key noted before the
 * listing ended: the cut hides exactly the keys noted after it was taken.
 *
 * Keys are only remembered while a cut is open, and only those a cut still open must hide:
 * with no query listing files, nothing is kept.
 */

/** What one query may see of a listing (see the module comment); `close` it once listed. */
export interface ListingCut {
  /** Keys noted since the cut was taken: files to leave out of the listing (a new set, the caller's). */
  hidden(): Set<string>;
  /** Ends the cut (idempotent): its keys are no longer kept for it. */
  close(): void;
}

/** Keys in the order they were noted, kept for the cuts open (see the module comment). */
export class KeyLog {
  private noted = 0;
  /** Positions of the open cuts, with how many are open at each. */
  private readonly open = new Map<number, number>();
  /** Keys noted while a cut was open, with their position. */
  private readonly positions = new Map<string, number>();

  /** Notes `key`, chosen for a file not yet in storage (once per key). */
  note(key: string): void {
    this.noted++;
    if (this.open.size > 0) this.positions.set(key, this.noted);
  }

  /** A cut at this point: it hides the keys noted from now until it is closed. */
  cut(): ListingCut {
    const at = this.noted;
    this.open.set(at, (this.open.get(at) ?? 0) + 1);
    let closed = false;
    return {
      hidden: () => {
        const keys = new Set<string>();
        for (const [key, position] of this.positions) if (position > at) keys.add(key);
        return keys;
      },
      close: () => {
        if (closed) return;
        closed = true;
        const left = this.open.get(at)! - 1;
        if (left > 0) this.open.set(at, left);
        else this.open.delete(at);
        this.forgetBefore(Math.min(...this.open.keys()));
      },
    };
  }

  /** Keys remembered (for tests: nothing is kept once every cut is closed). */
  get size(): number {
    return this.positions.size;
  }

  /** Forgets the keys no open cut hides: those at or before `position` (Infinity: all). */
  private forgetBefore(position: number): void {
    if (position === Infinity) this.positions.clear();
    else for (const [key, at] of this.positions) if (at <= position) this.positions.delete(key);
  }
}

/**
 * Sets of WAL log sequence numbers (LSNs) as sorted, disjoint, inclusive ranges, and
 * their text form `"1-40,42,45-51"` stored in each Parquet file's key/value metadata
 * (see `wal/coverage.ts`). Flushes usually cover long runs of consecutive LSNs, so the
 * text stays short.
 */

/** An immutable set of LSNs, answering `has` in O(log ranges). */
export class LsnSet {
  /** Flattened inclusive ranges `[lo0, hi0, lo1, hi1, …]`, ascending and disjoint. */
  private readonly bounds: Float64Array;

  private constructor(bounds: Float64Array) {
    this.bounds = bounds;
  }

  /** The set of `lsns` (any order, duplicates allowed). */
  static of(lsns: Iterable<number>): LsnSet {
    const sorted = Float64Array.from(lsns).sort();
    const out: number[] = [];
    for (const lsn of sorted) {
      if (out.length > 0 && lsn <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], lsn);
      else out.push(lsn, lsn);
    }
    return new LsnSet(Float64Array.from(out));
  }

  /**
   * Parses the text form.
   * @throws SyntaxError for anything that is not comma-separated `n` or `lo-hi` with integral n, lo ≤ hi.
   */
  static parse(text: string): LsnSet {
    const ranges: [number, number][] = [];
    if (text !== '') {
      for (const part of text.split(',')) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(part);
        const lo = m === null ? NaN : Number(m[1]);
        const hi = m === null ? NaN : Number(m[2] ?? m[1]);
        if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo) throw new SyntaxError(`invalid LSN range "${part}"`);
        ranges.push([lo, hi]);
      }
    }
    return LsnSet.union(ranges);
  }

  /** The union of several sets. */
  static merge(sets: readonly LsnSet[]): LsnSet {
    const ranges: [number, number][] = [];
    for (const s of sets) for (let i = 0; i < s.bounds.length; i += 2) ranges.push([s.bounds[i], s.bounds[i + 1]]);
    return LsnSet.union(ranges);
  }

  private static union(ranges: [number, number][]): LsnSet {
    ranges.sort((a, b) => a[0] - b[0]);
    const out: number[] = [];
    for (const [lo, hi] of ranges) {
      if (out.length > 0 && lo <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], hi);
      else out.push(lo, hi);
    }
    return new LsnSet(Float64Array.from(out));
  }

  /** True when `lsn` is in the set. */
  has(lsn: number): boolean {
    let lo = 0;
    let hi = this.bounds.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (lsn < this.bounds[2 * mid]) hi = mid - 1;
      else if (lsn > this.bounds[2 * mid + 1]) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** True when the set holds no LSN. */
  get empty(): boolean {
    return this.bounds.length === 0;
  }

  /** The text form, e.g. `"1-40,42"`; `""` for the empty set. */
  toString(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.bounds.length; i += 2) {
      const lo = this.bounds[i];
      const hi = this.bounds[i + 1];
      parts.push(lo === hi ? String(lo) : `${lo}-${hi}`);
    }
    return parts.join(',');
  }
}

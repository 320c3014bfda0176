/**
 * The rejected lines of one write request: their exact number, and the details of the
 * first few by line number, which are all a partial-write answer names.
 *
 * A body may hold tens of millions of bad lines (100 MB of `x\n`, more once
 * decompressed): one object and one message kept per rejected line would take
 * gigabytes and run the server out of heap. Every stage that rejects lines (the
 * parsers, the schema check, the buffer manager) adds to one of these; what it keeps
 * does not depend on the order in which the lines arrive.
 */

/** One rejected line (line protocol, 1-based) or item (MessagePack, 0-based index). */
export interface LineError {
  /** 1-based line number for line protocol, 0-based item/row index for MessagePack. */
  readonly line: number;
  readonly message: string;
}

/** Counts rejected lines and keeps the first `LineErrors.KEPT` of them by line number. */
export class LineErrors {
  /** Rejections kept in detail: as many as the answer to a write names. */
  static readonly KEPT = 10;

  // Not #private: `assert.deepStrictEqual` compares two results field by field.
  private readonly kept: LineError[] = [];
  private total = 0;

  /** Every rejection added, kept or not. */
  get count(): number {
    return this.total;
  }

  /**
   * The kept rejections: the `KEPT` lowest line numbers, in line order; rejections of
   * one line (rows of one MessagePack item) in the order they were added.
   */
  get first(): readonly LineError[] {
    return this.kept;
  }

  /**
   * Counts `line` as rejected for `message`; O(1) once `KEPT` lower lines are held, else
   * O(KEPT). A message a kept rejection of the same line already gives is counted, not
   * kept again: the rows of one MessagePack item rejected for one reason would otherwise
   * fill the answer with one text and hide the other items' errors.
   */
  add(line: number, message: string): void {
    this.total++;
    const kept = this.kept;
    if (kept.length === LineErrors.KEPT && line >= kept[kept.length - 1].line) return;
    // After any kept rejection of the same line, so that ties stay in order of arrival.
    let at = kept.length;
    while (at > 0 && kept[at - 1].line > line) at--;
    for (let i = at - 1; i >= 0 && kept[i].line === line; i--) if (kept[i].message === message) return;
    kept.splice(at, 0, { line, message });
    if (kept.length > LineErrors.KEPT) kept.pop();
  }

  /** Adds every rejection of `other` as `add` does (after those of the same line already here; a repeated message counted only). */
  addAll(other: LineErrors): void {
    for (const e of other.kept) this.add(e.line, e.message);
    this.total += other.total - other.kept.length;
  }
}

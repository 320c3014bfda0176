/**
 * Waiting on storage work that is not the waiter's alone (a download other queries share,
 * a cached listing, a stored schema) under the waiter's AbortSignal: the waiter stops at
 * its signal; the work runs on for the others (and the cache), or, when nothing but its
 * waiters needs it (`SharedWork`), is cancelled once the last of them has left.
 */

/**
 * The outcome of `work`, unless `signal` aborts first (or already has): then its reason,
 * at once, and `onLeave` is called. A failure of `work` after that is dropped (not an
 * unhandled rejection), so `work` must hold nothing for this waiter that its late result
 * would leave behind.
 * @throws `signal.reason` when aborted before `work` settled; whatever `work` throws otherwise.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, onLeave?: () => void): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason);
      onLeave?.();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Work that several callers may wait for and that only they need (a download into the
 * cache: a later caller can start it again), started at once with its own AbortSignal,
 * which aborts once every caller waiting for it has left (its signal aborted before the
 * work settled). A caller without a signal never leaves.
 */
export class SharedWork<T> {
  private readonly controller = new AbortController();
  private readonly work: Promise<T>;
  private waiters = 0;

  /** Starts `start`; it stops (rejects) once the signal it is given aborts. */
  constructor(start: (signal: AbortSignal) => Promise<T>) {
    this.work = start(this.controller.signal);
    // Cancelled, or failed with no one waiting: nobody's failure to report.
    this.work.catch(() => undefined);
  }

  /** True once every waiter has left and the work was told to stop: wait for new work instead. */
  get cancelled(): boolean {
    return this.controller.signal.aborted;
  }

  /**
   * The outcome of the work for one more waiter, who leaves when `signal` aborts
   * (`untilAborted`); the last to leave cancels the work, with its signal's reason.
   * @throws `signal.reason` when aborted before the work settled; whatever the work throws otherwise.
   */
  wait(signal?: AbortSignal): Promise<T> {
    this.waiters++;
    return untilAborted(this.work, signal, () => {
      if (--this.waiters === 0) this.controller.abort(signal!.reason);
    });
  }
}

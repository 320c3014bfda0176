/**
 * Waiting on storage work that is not the waiter's alone (a download other queries share,
 * a cached listing) under the waiter's AbortSignal: the waiter stops at its signal, the
 * work runs on to its end for the others (and the cache).
 */

/**
 * The outcome of `work`, unless `signal` aborts first (or already has): then its reason,
 * at once. A failure of `work` after that is dropped (not an unhandled rejection), so
 * `work` must hold nothing for this waiter that its late result would leave behind.
 * @throws `signal.reason` when aborted before `work` settled; whatever `work` throws otherwise.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

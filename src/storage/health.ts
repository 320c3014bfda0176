/**
 * Tracks a storage backend's health from the outcome of its operations (see
 * `StorageHealth` in `storage.ts`): any failure marks it failing, the next success
 * marks it healthy again.
 */
import type { StorageHealth } from './storage.js';

/**
 * One backend's `StorageHealth`, owned by that backend (`LocalStorage`, `S3Storage`), which
 * runs its operations through `track`. Starts healthy. Synchronous state, read by `/ready`
 * and the storage stats through `Storage.health()` (the write path's backpressure judges
 * storage by its own flush retries instead, `BufferManager.storageFailing`).
 */
export class HealthTracker {
  private state: StorageHealth = { ok: true, last_error: null, since: new Date().toISOString(), consecutive_failures: 0 };

  /**
   * Runs `operation`, recording its success or failure; rethrows its error. A failure
   * once `signal` has aborted is not recorded: the caller stopped the operation, the
   * backend did not fail it.
   */
  async track<T>(operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      const result = await operation();
      this.succeeded();
      return result;
    } catch (err) {
      if (signal?.aborted !== true) this.failed(err);
      throw err;
    }
  }

  /** Records a successful operation: healthy again (a new `since`, failures reset; `last_error` kept). */
  succeeded(): void {
    if (this.state.ok) return;
    this.state = { ok: true, last_error: this.state.last_error, since: new Date().toISOString(), consecutive_failures: 0 };
  }

  /** Records a failed operation: failing since the first failure in a row, `err`'s message as `last_error`. */
  failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.state = {
      ok: false,
      last_error: message,
      since: this.state.ok ? new Date().toISOString() : this.state.since,
      consecutive_failures: this.state.consecutive_failures + 1,
    };
  }

  /** The current state (an immutable object, replaced on each change). */
  get(): StorageHealth {
    return this.state;
  }
}

/**
 * The limits of a request that lists what is stored (databases, measurements): refused
 * while the write-ahead log replays (its flushes add files), stopped at the query timeout
 * and when the client leaves, as a query would be.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QueryCancelledError, QueryTimeoutError } from '../errors.js';
import { whenGone } from './exchange.js';

/** What bounds a listing (passed by `buildServer`). */
export interface ListingLimits {
  /** Longest a listing may take, ms (the query timeout, `STRATA_QUERY_TIMEOUT_MS`). */
  timeoutMs: number;
  /** Throws NotReadyError while the write-ahead log replays, as the query routes do. */
  assertQueryable: () => void;
}

/**
 * Runs `list` for `request` within `limits`, giving it a signal that aborts at the
 * timeout (QueryTimeoutError, 504) or when the client leaves (QueryCancelledError).
 * @throws NotReadyError (503) during the replay; whatever `list` throws.
 */
export async function listing<T>(limits: ListingLimits, request: FastifyRequest, reply: FastifyReply, list: (signal: AbortSignal) => Promise<T>): Promise<T> {
  limits.assertQueryable();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new QueryTimeoutError(limits.timeoutMs)), limits.timeoutMs).unref();
  const stopWatching = whenGone(request.raw, reply.raw, () => controller.abort(new QueryCancelledError()));
  try {
    return await list(controller.signal);
  } finally {
    clearTimeout(timer);
    stopWatching();
  }
}

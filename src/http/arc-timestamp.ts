/**
 * `ms` (since the epoch) as Arc stamps its answers (`timestamp` of a query's JSON, of its
 * errors and of the query-pool metrics): RFC 3339 in UTC, whole seconds
 * (`2026-08-22T10:15:30Z`).
 */
export function arcTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

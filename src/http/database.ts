/**
 * Which database a request addresses, as Arc and InfluxDB clients say it: header
 * `x-arc-database` first (Arc lets it override `db`/`bucket`), then the `db` (InfluxDB
 * v1) or `bucket` (InfluxDB v2; `db/rp` as InfluxDB 1.8 names it) query parameter, else
 * `default`.
 */
import type { FastifyRequest } from 'fastify';
import { BadRequestError } from '../errors.js';
import { nameError } from '../parse/names.js';

/** Database of a request that names none (Arc's and InfluxDB's default). */
export const DEFAULT_DATABASE = 'default';

/**
 * @throws BadRequestError when the database is given twice (a repeated `x-arc-database`
 *   header, `db` or `bucket` parameter), or the name would escape the data directory
 *   (`..`, `/`, NUL) or is too long.
 */
export function databaseOf(request: FastifyRequest): string {
  // Node joins a repeated header into one value ("a, a", as RFC 9110 allows), which would
  // name a database of its own: `headersDistinct` keeps each.
  if ((request.raw.headersDistinct['x-arc-database']?.length ?? 0) > 1) {
    throw new BadRequestError('the database is given more than once (repeated x-arc-database header)');
  }
  const header = request.headers['x-arc-database'];
  const query = request.query as Record<string, string | string[] | undefined>;
  const name = (typeof header === 'string' && header !== '' ? header : undefined) ?? query.db ?? databaseOfBucket(query.bucket) ?? DEFAULT_DATABASE;
  if (typeof name !== 'string') throw new BadRequestError('the database is given more than once (repeated db or bucket parameter)');
  const error = nameError('database', name);
  if (error !== undefined) throw new BadRequestError(`invalid database name: ${error}`);
  return name;
}

/**
 * The database of a v2 `bucket`: InfluxDB 1.8's v2-compatible API, which v2 clients
 * written for 1.8 address, names a bucket `database/retention-policy` (`db/rp`, `db/`);
 * the retention policy is ignored, as Strata has none per write (and Arc ignores `rp`).
 */
function databaseOfBucket(bucket: string | string[] | undefined): string | string[] | undefined {
  if (typeof bucket !== 'string') return bucket;
  const slash = bucket.indexOf('/');
  return slash > 0 && bucket.indexOf('/', slash + 1) === -1 ? bucket.slice(0, slash) : bucket;
}

/**
 * Which database a request addresses, as Arc and InfluxDB clients say it: header
 * `x-arc-database` first (Arc lets it override `db`/`bucket`), then the `db` (InfluxDB
 * v1) or `bucket` (InfluxDB v2; `db/rp` as InfluxDB 1.8 names it) query parameter, else
 * `default`.
 */
import { isUtf8 } from 'node:buffer';
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
  const header = headerText(request.headers['x-arc-database']);
  const query = request.query as Record<string, string | string[] | undefined>;
  const name = (typeof header === 'string' && header !== '' ? header : undefined) ?? query.db ?? databaseOfBucket(query.bucket) ?? DEFAULT_DATABASE;
  if (typeof name !== 'string') throw new BadRequestError('the database is given more than once (repeated db or bucket parameter)');
  const error = nameError('database', name);
  if (error !== undefined) throw new BadRequestError(`invalid database name: ${error}`);
  return name;
}

/**
 * A header value as the UTF-8 text clients send (Go's and Python's HTTP clients send a
 * name like `dü` as its UTF-8 bytes), where Node hands each byte over as one Latin-1
 * character.
 * @throws BadRequestError when those bytes are not UTF-8.
 */
function headerText(value: string | string[] | undefined): string | string[] | undefined {
  if (typeof value !== 'string' || /^[\x00-\x7f]*$/.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  if (!isUtf8(bytes)) throw new BadRequestError('the x-arc-database header is not UTF-8 text');
  return bytes.toString('utf8');
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

/**
 * Which database a request addresses, as Arc and InfluxDB clients say it: header
 * `x-arc-database` first (Arc lets it override `db`/`bucket`), then the `db` (InfluxDB
 * v1) or `bucket` (InfluxDB v2) query parameter, else `default`.
 */
import type { FastifyRequest } from 'fastify';
import { BadRequestError } from '../errors.js';
import { nameError } from '../parse/names.js';

export const DEFAULT_DATABASE = 'default';

/**
 * @throws BadRequestError when the database is given twice, or the name would escape the data directory (`..`, `/`, NUL) or is too long.
 */
export function databaseOf(request: FastifyRequest): string {
  const header = request.headers['x-arc-database'];
  const query = request.query as Record<string, string | string[] | undefined>;
  const name = (typeof header === 'string' && header !== '' ? header : undefined) ?? query.db ?? query.bucket ?? DEFAULT_DATABASE;
  if (typeof name !== 'string') throw new BadRequestError('the database is given more than once (repeated db or bucket parameter)');
  const error = nameError('database', name);
  if (error !== undefined) throw new BadRequestError(`invalid database name: ${error}`);
  return name;
}

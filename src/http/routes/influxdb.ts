/**
 * The InfluxDB 1.x endpoints that clients call besides `/write`, answered so that they
 * work against Strata unchanged (../shared/notes/user-asks.md §16):
 *
 * - `GET|HEAD /ping` — 204 with `X-Influxdb-Version` and `X-Influxdb-Build` (client
 *   libraries, load balancers and apps check it before anything else, and give up on a
 *   404); `?verbose=true` answers 200 `{"version": …}` as InfluxDB does.
 * - `GET|POST /query` (`q` in an `application/x-www-form-urlencoded` body or the URL) —
 *   InfluxQL, of which two statements are answered, one result each in
 *   `{"results":[{"statement_id":0, …}, …]}`:
 *   - `CREATE DATABASE <name> [WITH …]`: Telegraf's `outputs.influxdb` sends it at start-up
 *     unless `skip_database_creation = true`. Strata creates a database with its first
 *     write, so the statement only checks the name: `{"statement_id":0}`.
 *   - `SHOW DATABASES`: the databases with stored or buffered records, as
 *     `{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["db"],…]}]}`
 *     (`values` left out when there is none, as InfluxDB does). Clients list the databases
 *     before creating theirs (node-influx `getDatabaseNames`, influxdb-python
 *     `get_list_database`), with GET.
 *   Any other statement is a 400 `{"error": …}` that points to SQL at `POST /api/v1/query`;
 *   listing databases fails as `GET /api/v1/databases` does (503, 504).
 *
 * InfluxDB's own source is the reference for the shapes (`services/httpd/handler.go`:
 * `servePing`, `serveQuery`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError } from '../../errors.js';
import { nameError } from '../../parse/names.js';
import type { QueryService } from '../../query/query-service.js';
import { listing, type ListingLimits } from '../listing.js';

/** What `SHOW DATABASES` lists from (passed by `buildServer`). */
export interface InfluxdbRouteOptions extends ListingLimits {
  queries: QueryService;
}

/**
 * The InfluxDB 1.x API level Strata answers for, in `X-Influxdb-Version`: clients read it
 * to choose features (1.8 is the last 1.x, whose `/api/v2/write` Strata also serves).
 */
const INFLUXDB_VERSION = '1.8.10';

/** Registers `/ping` and `/query` on `app` (an encapsulated plugin: the form parser stays local). */
export async function influxdbRoutes(app: FastifyInstance, o: InfluxdbRouteOptions): Promise<void> {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, new URLSearchParams(body as string));
  });

  // Fastify answers HEAD from the GET route (`exposeHeadRoutes`).
  app.get('/ping', async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('X-Influxdb-Version', INFLUXDB_VERSION).header('X-Influxdb-Build', 'Strata');
    // InfluxDB reads any value but "", "0" and "false" as verbose.
    const verbose = (request.query as Record<string, unknown>).verbose;
    if (typeof verbose === 'string' && !['', '0', 'false'].includes(verbose)) return { version: INFLUXDB_VERSION };
    return reply.code(204).send();
  });

  const query = async (request: FastifyRequest, reply: FastifyReply): Promise<{ results: object[] }> => {
    const form = request.body instanceof URLSearchParams ? request.body.getAll('q') : [];
    const url = (request.query as Record<string, unknown>).q;
    const given = [...form, ...(Array.isArray(url) ? url : url === undefined ? [] : [url])];
    if (given.length > 1) throw new BadRequestError(`parameter "q" is given ${given.length} times: give it once`);
    const q = given[0];
    if (typeof q !== 'string' || q.trim() === '') throw new BadRequestError('missing required parameter "q"');
    const statements = splitStatements(q);
    if (statements.length === 0) throw new BadRequestError('parameter "q" holds no statement');
    const shows = statements.map(checkStatement);
    const databases = shows.includes(true) ? await listing(o, request, reply, (signal) => o.queries.databases(signal)) : [];
    return {
      results: shows.map((show, i) => !show ? { statement_id: i }
        : { statement_id: i, series: [{ name: 'databases', columns: ['name'], ...(databases.length > 0 ? { values: databases.map((d) => [d]) } : {}) }] }),
    };
  };
  app.get('/query', query);
  app.post('/query', query);
}

/** The statements of an InfluxQL text, split at `;` outside quotes, blank ones dropped. */
function splitStatements(q: string): string[] {
  const statements: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ';') {
      statements.push(q.slice(start, i));
      start = i + 1;
    }
  }
  statements.push(q.slice(start));
  return statements.filter((s) => s.trim() !== '');
}

/**
 * `CREATE DATABASE name` or `"quoted name"` (InfluxQL's escapes `\"`, `\\` and `\n` in
 * it, no raw line break), then optionally a retention policy clause of InfluxQL's
 * (`WITH DURATION 7d REPLICATION 1 SHARD DURATION 1h NAME "rp"`), which is ignored.
 */
const CREATE_DATABASE =
  /^\s*CREATE\s+DATABASE\s+(?:"((?:[^"\\\n]|\\["\\n])*)"|([A-Za-z_][A-Za-z0-9_]*))(?:\s+WITH(?:\s+(?:DURATION|REPLICATION|SHARD\s+DURATION|NAME)\s+(?:"(?:[^"\\\n]|\\["\\n])*"|[^\s"]+))+)?\s*$/i;

const SHOW_DATABASES = /^\s*SHOW\s+DATABASES\s*$/i;

/**
 * Checks that `statement` is `SHOW DATABASES` (returns true) or a `CREATE DATABASE` of an
 * acceptable database name (returns false).
 * @throws BadRequestError naming the statement otherwise, or why the name is refused.
 */
function checkStatement(statement: string): boolean {
  if (SHOW_DATABASES.test(statement)) return true;
  const m = CREATE_DATABASE.exec(statement);
  if (m === null) {
    throw new BadRequestError(`InfluxQL is not supported, only CREATE DATABASE (databases are created by their first write) and SHOW DATABASES: ` +
      `query with SQL at POST /api/v1/query instead of ${JSON.stringify(statement.trim().slice(0, 100))}`);
  }
  const name = m[1] !== undefined ? m[1].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c)) : m[2];
  const error = nameError('database', name);
  if (error !== undefined) throw new BadRequestError(`invalid database name: ${error}`);
  return false;
}

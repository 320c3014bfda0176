/**
 * Configuration: `config/strata.toml` (or the file named by `STRATA_CONFIG`),
 * overridden by environment variables, validated with zod at start-up.
 *
 * A bad value stops the server with a `ConfigError` naming the key (as the
 * environment variable when it came from there).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * An integer in [min, max]: a TOML number of integral value, or decimal digits from the
 * environment. Not `z.coerce`, whose `Number(v)` took `port = true` as port 1, `[3]` as 3,
 * a TOML date as milliseconds, `0x10` as 16 and an empty `STRATA_PORT=` as 0.
 */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  // One message for every way a value can miss, bounds included ("expected an integer, got 0" read as a type error).
  const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
  return z.preprocess((v) => (typeof v === 'string' && /^-?[0-9]+$/.test(v) ? Number(v) : v),
    z.number({ error: (issue) => `expected an integer ${range}, got ${JSON.stringify(issue.input) ?? String(issue.input)}` }).int().min(min).max(max));
};
const positiveInt = int(1);
/**
 * A delay Strata gives a timer, ms: Node's timers take at most 2^31 − 1 ms (~24.8 days)
 * and fire a longer one after 1 ms, so `3000000000` meant "no timeout" and failed every query.
 */
const timerMs = int(1, 2 ** 31 - 1);
/** A TOML boolean, or `true`/`false`/`1`/`0` from the environment. */
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')],
  { error: 'expected true or false (1 or 0 from the environment)' });
/** A size in DuckDB's syntax (`4GB`, `10 GiB`), or empty for DuckDB's default. */
const duckdbSize = z.string().regex(/^(\d+(\.\d+)?\s*[KMGT]i?B)?$/i, 'expected a DuckDB size such as "4GB"');

const schema = z.strictObject({
  server: z.strictObject({
    host: z.string().min(1),
    port: int(0, 65535),
    max_body_bytes: positiveInt,
    max_decompressed_bytes: positiveInt,
    shutdown_drain_ms: timerMs,
  }),
  storage: z.strictObject({
    data_dir: z.string().min(1),
    backend: z.enum(['local', 's3']),
    node_id: z.string().regex(/^([a-z0-9]{1,32})?$/, 'expected 1 to 32 lowercase letters and digits, or empty for a persisted random id'),
  }),
  s3: z.strictObject({
    bucket: z.string(),
    // S3 keys are plain strings: `/wh` and `wh//` would make keys starting with or holding an empty segment.
    prefix: z.string().refine((v) => !v.startsWith('/') && !v.includes('//'), 'expected a key prefix such as "warehouse/" (no leading "/", no empty segment)'),
    endpoint: z.string(),
    region: z.string().min(1),
    force_path_style: flag,
    access_key_id: z.string(),
    secret_access_key: z.string(),
    max_attempts: positiveInt,
    request_timeout_ms: timerMs,
    list_ttl_ms: int(0),
  }),
  cache: z.strictObject({ dir: z.string(), max_bytes: positiveInt }),
  buffer: z.strictObject({
    max_records: positiveInt, max_age_ms: positiveInt, max_bytes: positiveInt, schema_timeout_ms: timerMs,
    // time and one tag or field at least
    max_columns: int(2),
  }),
  wal: z.strictObject({
    enabled: flag,
    dir: z.string(),
    sync: z.enum(['fsync', 'interval', 'none']),
    sync_interval_ms: timerMs,
    segment_bytes: positiveInt,
  }),
  parquet: z.strictObject({ compression: z.enum(['snappy', 'zstd']), row_group_size: positiveInt }),
  query: z.strictObject({
    pool_size: positiveInt,
    threads: int(0),
    // DuckDB takes 0 and then fails every query and flush with "Out of Memory".
    memory_limit: duckdbSize.refine((v) => v === '' || Number.parseFloat(v) > 0, 'expected a DuckDB size above zero such as "4GB"'),
    max_spill: duckdbSize,
    max_queue: positiveInt,
    timeout_ms: timerMs,
    stall_timeout_ms: int(0, 2 ** 31 - 1),
    cache_ttl_ms: int(0),
    cache_max_bytes: int(0),
    prepared_statements: int(0),
    encode_workers: int(0),
  }),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }),
});

/** The validated configuration; sizes in bytes, durations in milliseconds. */
export type StrataConfig = z.infer<typeof schema>;

/** The write-ahead log's directory: `wal.dir`, or `.wal` in the data directory when empty. */
export function walDir(config: StrataConfig): string {
  return config.wal.dir === '' ? join(config.storage.data_dir, '.wal') : config.wal.dir;
}

/** The S3 backend's local Parquet cache: `cache.dir`, or `.cache` in the data directory when empty. */
export function cacheDir(config: StrataConfig): string {
  return config.cache.dir === '' ? join(config.storage.data_dir, '.cache') : config.cache.dir;
}

/** Environment variable → `section.key` it overrides. */
export const ENV_KEYS: Readonly<Record<string, string>> = {
  STRATA_HOST: 'server.host',
  STRATA_PORT: 'server.port',
  STRATA_MAX_BODY_BYTES: 'server.max_body_bytes',
  STRATA_MAX_DECOMPRESSED_BYTES: 'server.max_decompressed_bytes',
  STRATA_SHUTDOWN_DRAIN_MS: 'server.shutdown_drain_ms',
  STRATA_DATA_DIR: 'storage.data_dir',
  STRATA_STORAGE_BACKEND: 'storage.backend',
  STRATA_NODE_ID: 'storage.node_id',
  STRATA_S3_BUCKET: 's3.bucket',
  STRATA_S3_PREFIX: 's3.prefix',
  STRATA_S3_ENDPOINT: 's3.endpoint',
  STRATA_S3_REGION: 's3.region',
  STRATA_S3_FORCE_PATH_STYLE: 's3.force_path_style',
  STRATA_S3_ACCESS_KEY_ID: 's3.access_key_id',
  STRATA_S3_SECRET_ACCESS_KEY: 's3.secret_access_key',
  STRATA_S3_MAX_ATTEMPTS: 's3.max_attempts',
  STRATA_S3_REQUEST_TIMEOUT_MS: 's3.request_timeout_ms',
  STRATA_S3_LIST_TTL_MS: 's3.list_ttl_ms',
  STRATA_CACHE_DIR: 'cache.dir',
  STRATA_CACHE_MAX_BYTES: 'cache.max_bytes',
  STRATA_BUFFER_MAX_RECORDS: 'buffer.max_records',
  STRATA_BUFFER_MAX_AGE_MS: 'buffer.max_age_ms',
  STRATA_BUFFER_MAX_BYTES: 'buffer.max_bytes',
  STRATA_BUFFER_SCHEMA_TIMEOUT_MS: 'buffer.schema_timeout_ms',
  STRATA_BUFFER_MAX_COLUMNS: 'buffer.max_columns',
  STRATA_WAL_ENABLED: 'wal.enabled',
  STRATA_WAL_DIR: 'wal.dir',
  STRATA_WAL_SYNC: 'wal.sync',
  STRATA_WAL_SYNC_INTERVAL_MS: 'wal.sync_interval_ms',
  STRATA_WAL_SEGMENT_BYTES: 'wal.segment_bytes',
  STRATA_PARQUET_COMPRESSION: 'parquet.compression',
  STRATA_PARQUET_ROW_GROUP_SIZE: 'parquet.row_group_size',
  STRATA_QUERY_POOL_SIZE: 'query.pool_size',
  STRATA_QUERY_THREADS: 'query.threads',
  STRATA_QUERY_MEMORY_LIMIT: 'query.memory_limit',
  STRATA_QUERY_MAX_SPILL: 'query.max_spill',
  STRATA_QUERY_MAX_QUEUE: 'query.max_queue',
  STRATA_QUERY_TIMEOUT_MS: 'query.timeout_ms',
  STRATA_QUERY_STALL_TIMEOUT_MS: 'query.stall_timeout_ms',
  STRATA_QUERY_CACHE_TTL_MS: 'query.cache_ttl_ms',
  STRATA_QUERY_CACHE_MAX_BYTES: 'query.cache_max_bytes',
  STRATA_QUERY_PREPARED_STATEMENTS: 'query.prepared_statements',
  STRATA_QUERY_ENCODE_WORKERS: 'query.encode_workers',
  STRATA_LOG_LEVEL: 'log.level',
};

/** `config/strata.toml` of the package this module belongs to, from `src/` or from the compiled `dist/src/`. */
function defaultFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'config', 'strata.toml');
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a TOML file. @throws ConfigError naming `key` (the file, or the variable naming it) when it cannot be read or parsed. */
function readToml(file: string, key = file): Record<string, unknown> {
  try {
    return parseToml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/**
 * Loads the configuration.
 * @param env environment to read overrides from (defaults to `process.env`).
 * @throws ConfigError naming the key (or environment variable) at fault, or the unreadable file.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): StrataConfig {
  // A file named by STRATA_CONFIG is laid over the documented defaults, so it need
  // only hold the keys it changes.
  const raw = readToml(defaultFile());
  const file = env.STRATA_CONFIG ?? defaultFile();
  if (env.STRATA_CONFIG !== undefined) {
    // `STRATA_CONFIG=` in a compose file: reading '' failed with "open ''", naming nothing.
    if (file === '') throw new ConfigError('STRATA_CONFIG', 'empty; name a TOML file, or unset it to use config/strata.toml alone');
    for (const [section, table] of Object.entries(readToml(file, `STRATA_CONFIG (${file})`))) {
      const base = raw[section];
      raw[section] = isTable(base) && isTable(table) ? { ...base, ...table } : table;
    }
  }
  const source = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined) continue;
    const [section, key] = path.split('.');
    const table = (raw[section] ??= {});
    if (!isTable(table)) throw new ConfigError(section, `must be a table ([${section}]) in ${file}`);
    table[key] = value;
    source.set(path, name);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      throw new ConfigError(`${path === '' ? '' : `${path}.`}${issue.keys[0]}`, `unknown key in ${file}`);
    }
    throw new ConfigError(source.get(path) ?? path, issue.message);
  }
  if (result.data.storage.backend === 's3' && result.data.s3.bucket === '') {
    throw new ConfigError(source.get('s3.bucket') ?? 's3.bucket', 'required when the storage backend is s3 (STRATA_S3_BUCKET)');
  }
  return result.data;
}

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

const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  server: z.object({
    host: z.string().min(1),
    port: z.coerce.number().int().min(0).max(65535),
    max_body_bytes: positiveInt,
    max_decompressed_bytes: positiveInt,
  }),
  storage: z.object({ data_dir: z.string().min(1) }),
  buffer: z.object({ max_records: positiveInt, max_age_ms: positiveInt }),
  parquet: z.object({ compression: z.enum(['snappy', 'zstd']), row_group_size: positiveInt }),
  query: z.object({
    pool_size: positiveInt,
    threads: z.coerce.number().int().min(0),
    memory_limit: z.string().regex(/^(\d+(\.\d+)?\s*[KMGT]i?B)?$/i, 'expected a DuckDB size such as "4GB"'),
  }),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }),
});

/** The validated configuration; sizes in bytes, durations in milliseconds. */
export type StrataConfig = z.infer<typeof schema>;

/** Environment variable → `section.key` it overrides. */
export const ENV_KEYS: Readonly<Record<string, string>> = {
  STRATA_HOST: 'server.host',
  STRATA_PORT: 'server.port',
  STRATA_MAX_BODY_BYTES: 'server.max_body_bytes',
  STRATA_MAX_DECOMPRESSED_BYTES: 'server.max_decompressed_bytes',
  STRATA_DATA_DIR: 'storage.data_dir',
  STRATA_BUFFER_MAX_RECORDS: 'buffer.max_records',
  STRATA_BUFFER_MAX_AGE_MS: 'buffer.max_age_ms',
  STRATA_PARQUET_COMPRESSION: 'parquet.compression',
  STRATA_PARQUET_ROW_GROUP_SIZE: 'parquet.row_group_size',
  STRATA_QUERY_POOL_SIZE: 'query.pool_size',
  STRATA_QUERY_THREADS: 'query.threads',
  STRATA_QUERY_MEMORY_LIMIT: 'query.memory_limit',
  STRATA_LOG_LEVEL: 'log.level',
};

/** `config/strata.toml` of the package this module belongs to, from `src/` or from the compiled `dist/src/`. */
function defaultFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'config', 'strata.toml');
}

/**
 * Loads the configuration.
 * @param env environment to read overrides from (defaults to `process.env`).
 * @throws ConfigError naming the key (or environment variable) at fault, or the unreadable file.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): StrataConfig {
  const file = env.STRATA_CONFIG ?? defaultFile();
  let raw: Record<string, Record<string, unknown>>;
  try {
    raw = parseToml(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  } catch (err) {
    throw new ConfigError(file, (err as Error).message);
  }
  const source = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined) continue;
    const [section, key] = path.split('.');
    (raw[section] ??= {})[key] = value;
    source.set(path, name);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.join('.');
    throw new ConfigError(source.get(path) ?? path, issue.message);
  }
  return result.data;
}

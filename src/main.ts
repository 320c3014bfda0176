/**
 * Entry point: `node dist/src/main.js` (see `npm start`).
 *
 * Loads the configuration, starts the server, and on SIGTERM/SIGINT stops accepting,
 * flushes every buffer to Parquet and exits 0 (1 if the final flush failed); a signal
 * during start-up (the WAL replay) does so once start-up ends.
 */
import { resolve, sep } from 'node:path';
import { cacheDir, loadConfig, walDir, type StrataConfig } from './config/config.js';
import { ConfigError, StorageUnavailableError, StrataError } from './errors.js';

/** Set once the configuration is read, for `startupProblem`. */
let loaded: StrataConfig | undefined;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`strata: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  loaded = config;
  // Loaded once the configuration is valid: a refused one is reported at once, without
  // first loading the server's modules (DuckDB, Fastify, Arrow: most of a start's time).
  const { createStrata } = await import('./app.js');
  let strata;
  try {
    strata = await createStrata(config);
  } catch (err) {
    if (err instanceof StorageUnavailableError) {
      process.stderr.write(`strata: storage unavailable: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = strata.server.log;
  let started = false;
  let stopping: string | undefined;
  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down: flushing buffers');
    strata.stop().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        log.fatal({ err }, 'final flush failed');
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: string): void => {
    if (stopping !== undefined) return;
    stopping = signal;
    // Stopping in the middle of the WAL replay would close DuckDB under its flush: the
    // replay ends first (nothing it holds is lost either way: the log is kept until flushed).
    if (started) stop(signal);
    else log.info({ signal }, 'shutting down once start-up ends: the write-ahead log is being replayed');
  };
  // Before the replay, which can be long: a signal then stops the server cleanly once it ends.
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await strata.start();
  started = true;
  if (stopping !== undefined) stop(stopping);
}

/**
 * One line saying which setting a start-up failure the operator can fix comes from (the
 * listen address, a directory that is not one), or Strata's own message for its typed
 * errors (a damaged stored file met while the write-ahead log replays, say); undefined
 * for anything else, which is printed with its stack.
 */
function startupProblem(err: unknown, config: StrataConfig | undefined): string | undefined {
  if (err instanceof StrataError || err instanceof ConfigError) return err.message;
  if (config === undefined) return undefined;
  const e = err as NodeJS.ErrnoException;
  if (e.syscall === 'listen' || e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL') {
    return `cannot listen on ${config.server.host}:${config.server.port} (STRATA_HOST, STRATA_PORT): ${e.code ?? e.message}`;
  }
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `cannot resolve STRATA_HOST "${config.server.host}": ${e.code}`;
  if (typeof e.path !== 'string') return undefined;
  // The longest match: the WAL and cache directories default to inside the data directory.
  const dirs: [string, string][] = [
    [walDir(config), 'STRATA_WAL_DIR'],
    [cacheDir(config), 'STRATA_CACHE_DIR'],
    [config.storage.data_dir, 'STRATA_DATA_DIR'],
  ];
  const path = resolve(e.path);
  const named = dirs.map(([dir, name]) => ({ dir, name, absolute: resolve(dir) }));
  // A path in a directory names that directory (the longest); a parent that cannot be made
  // (no permission, a dangling symlink) names the outermost directory it would hold.
  const at = named.filter(({ absolute }) => path === absolute || path.startsWith(absolute + sep))
    .sort((a, b) => b.absolute.length - a.absolute.length)[0] ??
    named.filter(({ absolute }) => absolute.startsWith(path + sep)).sort((a, b) => a.absolute.length - b.absolute.length)[0];
  return at === undefined ? undefined : `${at.name} (${at.dir}) cannot be used: ${e.code ?? e.message} at ${e.path}`;
}

main().catch((err: unknown) => {
  const problem = startupProblem(err, loaded);
  process.stderr.write(`strata: failed to start: ${problem ?? (err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

/**
 * Entry point: `node dist/src/main.js` (see `npm start`).
 *
 * Loads the configuration, starts the server, and on SIGTERM/SIGINT stops accepting,
 * flushes every buffer to Parquet and exits 0 (1 if the final flush failed).
 */
import { createStrata } from './app.js';
import { loadConfig } from './config/config.js';
import { ConfigError, StorageUnavailableError } from './errors.js';

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
  await strata.start();
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
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
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`strata: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

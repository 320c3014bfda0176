/**
 * Crash soak: many more SIGKILL/restart cycles of the write-ahead log than
 * `test/wal-recovery.test.ts` runs (12, to keep the suite short), over one data directory.
 *
 *   npx tsc -p . && node dist/bench/crash.js [cycles]
 *
 * `cycles` defaults to 100. Each cycle (`test/crash-load.ts`): a Strata process started
 * over the directory (replaying its log), every stored record checked against the
 * ledger of acknowledged ones, concurrent writers for a random 100–400 ms, then SIGKILL.
 * Prints the cycles run, the records acknowledged and sent, those stored though never
 * acknowledged (allowed, at most once each), and the first violations found; exits 1
 * when there are any. A figure of robustness, not of speed: it runs as long as it takes.
 */
import { crashCycles } from '../test/crash-load.js';
import { removeDir, tempDir } from '../test/harness.js';

const cycles = Number(process.argv[2] ?? 100);
if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`cycles: expected a positive integer, got ${process.argv[2]}`);
const dataDir = tempDir('strata-crash-');
const started = performance.now();
try {
  const report = await crashCycles(dataDir, cycles);
  const seconds = (performance.now() - started) / 1000;
  console.log(`cycles ${report.cycles} in ${seconds.toFixed(0)} s; acknowledged ${report.acked}, sent ${report.sent}, ` +
    `stored without acknowledgement ${report.unackedStored}`);
  if (report.problems.length > 0) {
    console.log(`violations:\n${report.problems.join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log('every acknowledged record stored exactly once');
  }
} finally {
  removeDir(dataDir);
}

/**
 * Timing benchmark of the line-protocol parser on TSBS cpu-only data (10 tags,
 * 10 float fields, ns timestamps, ~489-byte lines). Prints figures, asserts nothing.
 *
 *   node --import tsx --max-semi-space-size=64 src/parse/lineprotocol/parser.bench.ts [bodies] [runs]
 *
 * `parseLineProtocol` is timed on already-decoded text (the parse into batches
 * alone); `parseLineProtocolBody` on the raw bytes (UTF-8 decoding and chunking
 * included). Each run parses every body once; the median run is reported.
 */
import { CpuGenerator } from '../../../bench/tsbs.js';
import { parseLineProtocol } from './parser.js';
import { parseLineProtocolBody } from './stream.js';

const LINES_PER_BODY = 5_000;
const bodyCount = Number(process.argv[2] ?? 20);
const runs = Number(process.argv[3] ?? 7);
const NOW_US = Date.UTC(2026, 0, 1) * 1000;

const generator = new CpuGenerator({ hosts: 1000 });
const buffers = Array.from({ length: bodyCount }, () => generator.lineProtocol(LINES_PER_BODY));
const texts = buffers.map((b) => b.toString('utf8'));
const totalBytes = buffers.reduce((sum, b) => sum + b.length, 0);
const totalLines = bodyCount * LINES_PER_BODY;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function report(name: string, seconds: number[]): void {
  const s = median(seconds);
  const linesPerSec = totalLines / s;
  console.log(
    `${name.padEnd(24)} ${(linesPerSec / 1000).toFixed(0).padStart(6)} K lines/s  ` +
    `${(totalBytes / s / 1e6).toFixed(1).padStart(6)} MB/s  ${((s * 1e9) / totalLines).toFixed(0).padStart(5)} ns/line  ` +
    `(median of ${seconds.length} runs, min ${(totalLines / Math.max(...seconds) / 1000).toFixed(0)}K, max ${(totalLines / Math.min(...seconds) / 1000).toFixed(0)}K)`,
  );
}

console.log(`${bodyCount} bodies × ${LINES_PER_BODY} TSBS cpu lines, ${(totalBytes / 1e6).toFixed(1)} MB, ` +
  `${(totalBytes / totalLines).toFixed(0)} B/line, node ${process.version}`);

// Warm-up: lets TurboFan optimise the hot paths before anything is timed.
for (let k = 0; k < 2; k++) for (const t of texts) parseLineProtocol(t, 'ns', NOW_US);

const parseTimes: number[] = [];
let rejected = 0;
for (let r = 0; r < runs; r++) {
  const t0 = process.hrtime.bigint();
  for (const t of texts) rejected += parseLineProtocol(t, 'ns', NOW_US).errors.count;
  parseTimes.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
report('parseLineProtocol', parseTimes);

const streamTimes: number[] = [];
for (let r = 0; r < runs; r++) {
  const t0 = process.hrtime.bigint();
  for (const b of buffers) rejected += (await parseLineProtocolBody(b, 'ns', NOW_US)).errors.count;
  streamTimes.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
report('parseLineProtocolBody', streamTimes);
console.log(`rejected lines: ${rejected}`);

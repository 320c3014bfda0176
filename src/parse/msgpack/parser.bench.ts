/**
 * Timing benchmark of the Arc MessagePack decoder; prints figures, asserts nothing.
 *
 *   node --import tsx --max-semi-space-size=64 src/parse/msgpack/parser.bench.ts
 *
 * Payloads: the TSBS cpu shape (10 string tags, 10 float fields) as one 10,000-row
 * columnar item with ms times (what Telegraf sends), the same with int64 ns times, and
 * as 10,000 row items. @msgpack/msgpack decoding the columnar body to plain objects is printed
 * for reference (it produces no batches). Each figure is the median of several runs.
 */
import { decode, encode } from '@msgpack/msgpack';
import { CpuGenerator, FIELD_KEYS, TAG_KEYS } from '../../../bench/tsbs.js';
import { parseMsgpack } from './parser.js';

const ROWS = 10_000;
const BODIES = 10;
const RUNS = 9;
const NOW = 1_767_225_600_000_000;
const packr = { pack: (v: unknown): Buffer => Buffer.from(encode(v, { useBigInt64: true })) };

/** Columnar body whose time column is int64 nanoseconds (BigInt → 0xd3 on the wire). */
function columnarNs(gen: CpuGenerator): Uint8Array {
  const { timeUs, host, fields } = gen.columns(ROWS);
  const columns: Record<string, unknown[]> = { time: Array.from(timeUs, (t) => BigInt(t) * 1000n) };
  TAG_KEYS.forEach((k, j) => { columns[k] = Array.from(host, (h) => gen.hostTags(h)[j]); });
  FIELD_KEYS.forEach((k, j) => { columns[k] = Array.from(fields[j]); });
  return packr.pack({ m: 'cpu', columns });
}

/** Row-format body: a top-level array of `{m, t (ms), tags, fields}` items. */
function rowItems(gen: CpuGenerator): Uint8Array {
  const { timeUs, host, fields } = gen.columns(ROWS);
  const items = Array.from(timeUs, (t, i) => ({
    m: 'cpu',
    t: Math.floor(t / 1000),
    tags: Object.fromEntries(TAG_KEYS.map((k, j) => [k, gen.hostTags(host[i])[j]])),
    fields: Object.fromEntries(FIELD_KEYS.map((k, j) => [k, fields[j][i]])),
  }));
  return packr.pack(items);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Decodes every body once per run (after one warm-up run); prints the median per body. */
function measure(label: string, bodies: Uint8Array[], decode: (b: Uint8Array) => unknown): void {
  const perBodyMs: number[] = [];
  for (let run = 0; run <= RUNS; run++) {
    const start = performance.now();
    for (const body of bodies) decode(body);
    if (run > 0) perBodyMs.push((performance.now() - start) / bodies.length);
  }
  const ms = median(perBodyMs);
  const bytes = bodies.reduce((sum, b) => sum + b.length, 0) / bodies.length;
  const rowsPerSec = (ROWS / ms) * 1000;
  console.log(
    `${label.padEnd(44)} ${(rowsPerSec / 1e6).toFixed(2).padStart(6)} M rows/s ` +
      `${((bytes / ms) * 1000 / 1e6).toFixed(0).padStart(5)} MB/s ${((ms * 1000) / ROWS).toFixed(3).padStart(7)} µs/row ` +
      `(${(bytes / 1e6).toFixed(2)} MB body, ${ms.toFixed(2)} ms)`,
  );
}

const gen = new CpuGenerator({ hosts: 1000 });
const columnar = Array.from({ length: BODIES }, () => gen.msgpackColumnar(ROWS));
const nanos = Array.from({ length: BODIES }, () => columnarNs(gen));
const rows = Array.from({ length: BODIES }, () => rowItems(gen));


console.log(`Arc MessagePack decode, ${ROWS} rows per body, median of ${RUNS} runs over ${BODIES} bodies (node ${process.version})`);
measure('columnar TSBS (ms times)', columnar, (b) => parseMsgpack(b, NOW));
measure('columnar TSBS (int64 ns times)', nanos, (b) => parseMsgpack(b, NOW));
measure('row items TSBS (10 tags, 10 fields)', rows, (b) => parseMsgpack(b, NOW));
measure('reference: @msgpack/msgpack decode of columnar TSBS', columnar, (b) => decode(b));

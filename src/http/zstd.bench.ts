/**
 * Timing benchmark of the zstd body decoder (`./zstd.ts`); prints figures, asserts nothing.
 *
 *   node --import tsx --max-semi-space-size=64 src/http/zstd.bench.ts
 *
 * Bodies: 100,000 lines of line protocol (about 5.4 MB) compressed by the `zstd` command at
 * levels 1 (without a checksum), 3 and 19, when the command is installed; and the worst body
 * the decoder takes, a frame of one-byte raw blocks through an 8 MiB window (fzstd moves its
 * whole window after every block), 8,000 of them, under the block bound of a 1 GiB cap. Each
 * figure: the median decode time of several runs after one to warm up, and the longest the
 * event loop went without a turn meanwhile (what other requests wait).
 */
import { spawnSync } from 'node:child_process';
import { decodeZstd } from './zstd.js';

const RUNS = 5;
const CAP = 1 << 30;

/** Median ms of decoding `body`, and the longest gap between event-loop turns, ms. */
async function time(body: Buffer): Promise<{ ms: number; lagMs: number }> {
  const times: number[] = [];
  let lagMs = 0;
  await decodeZstd(body, CAP); // warm-up: compiles the code and starts xxhash-wasm
  for (let run = 0; run < RUNS; run++) {
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      lagMs = Math.max(lagMs, now - last);
      last = now;
    }, 1);
    const started = performance.now();
    await decodeZstd(body, CAP);
    times.push(performance.now() - started);
    clearInterval(ticker);
  }
  return { ms: times.sort((a, b) => a - b)[RUNS >> 1], lagMs };
}

let lines = '';
for (let i = 0; i < 100_000; i++) lines += `cpu,host=h${i % 50} usage=${(i * 7919) % 10_000 / 100} ${1_700_000_000_000_000_000n + BigInt(i) * 1_000_000_000n}\n`;
const text = Buffer.from(lines);
const bodies: [string, Buffer | undefined][] = [
  ['zstd -1 --no-check', undefined], ['zstd -3', undefined], ['zstd -19', undefined],
].map(([name]) => {
  const made = spawnSync('zstd', [...String(name).split(' ').slice(1), '-c'], { input: text, maxBuffer: 64 << 20 });
  return [String(name), made.status === 0 ? made.stdout : undefined];
});
const frame = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3])];
for (let i = 0; i < 8000; i++) frame.push(Buffer.from([i === 7999 ? 0x09 : 0x08, 0, 0]), Buffer.from('x'));
bodies.push(['8,000 one-byte blocks, 8 MiB window', Buffer.concat(frame)]);

console.log(`${'body'.padEnd(40)} ${'bytes'.padStart(10)} ${'decode ms'.padStart(10)} ${'loop lag ms'.padStart(12)}  (medians of ${RUNS})`);
for (const [name, body] of bodies) {
  if (body === undefined) {
    console.log(`${name.padEnd(40)} (the zstd command is not installed)`);
    continue;
  }
  const { ms, lagMs } = await time(body);
  console.log(`${name.padEnd(40)} ${String(body.length).padStart(10)} ${ms.toFixed(1).padStart(10)} ${lagMs.toFixed(1).padStart(12)}`);
}
console.log(`decoded size of the line-protocol bodies: ${text.length} bytes`);

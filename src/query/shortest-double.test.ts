import assert from 'node:assert/strict';
import test from 'node:test';
import { writeShortest } from './shortest-double.js';

/** A seeded generator (mulberry32), so a failure reproduces. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const out = Buffer.alloc(64);

/** Checks every value this path prints against `String`; returns how many it declined. */
function check(values: Iterable<number>): { tried: number; declined: number } {
  let tried = 0;
  let declined = 0;
  for (const v of values) {
    tried++;
    const end = writeShortest(v, out, 3);
    if (end < 0) {
      declined++;
      continue;
    }
    assert.equal(out.toString('latin1', 3, end), String(v), `${v}`);
  }
  return { tried, declined };
}

function* generated(count: number, seed: number, value: (random: () => number) => number): Generator<number> {
  const random = seeded(seed);
  for (let i = 0; i < count; i++) {
    const v = value(random);
    if (!Number.isInteger(v)) yield v;
  }
}

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);

test('writeShortest prints String(v) for long doubles of every kind in [1e-6, 1e9), declining rarely', () => {
  const kinds: [string, (random: () => number) => number][] = [
    // Averages of percentages, TSBS-style values with the error of a sum, ratios.
    ['avg()', (r) => r() * 100],
    ['TSBS', (r) => Math.round(r() * 1e6) / 1e4 + 0.0001],
    ['mean of three', (r) => (Math.round(r() * 1e6) / 1e4 + Math.round(r() * 1e6) / 1e4 + Math.round(r() * 1e6) / 1e4) / 3],
    ['every magnitude', (r) => Math.exp(r() * Math.log(1e15)) * 1e-6],
    ['random bits', (r) => {
      words[0] = Math.floor(r() * 2 ** 32);
      words[1] = Math.floor(r() * 2 ** 20) | ((1003 + Math.floor(r() * 47)) << 20);
      return bits[0];
    }],
    // Few binary digits: exact decimal expansions, where ties sit.
    ['dyadic', (r) => Math.floor(r() * 2 ** 30) / 2 ** Math.floor(r() * 40)],
  ];
  for (const [i, [name, value]] of kinds.entries()) {
    const { tried, declined } = check(generated(200_000, i + 1, value));
    // The fast path must carry most values, or it is not what this test exercises.
    assert.ok(declined < tried * 0.2, `${name}: declined ${declined} of ${tried}`);
  }
});

test('writeShortest at the edges: powers of ten and their neighbours, the range limits, short forms, ties', () => {
  const values: number[] = [1e-6, 1.0000000000000002e-6, 9.999999999999999e-7, 999999999.9999999, 1e9, 5e-324, 0.1 + 0.2, 1 / 3, 2 / 3,
    123456789.12345679, 0.30000000000000004, 12.3456 + 0.0001, 0.5, 0.25, 2 ** -20, 1.5, 9007199254740.991, 0.1, 0.000123];
  for (let e = -6; e <= 8; e++) {
    let up = Number(`1e${e}`);
    let down = up;
    for (let step = 0; step < 40; step++) {
      bits[0] = up;
      words[0] === 0xffffffff ? (words[0] = 0, words[1]++) : words[0]++;
      up = bits[0];
      bits[0] = down;
      words[0] === 0 ? (words[0] = 0xffffffff, words[1]--) : words[0]--;
      down = bits[0];
      values.push(up, down);
    }
  }
  // Halves of the last digit at 15, 16 and 17 digits: decided exactly, or declined.
  for (let k = 0; k < 2000; k++) values.push((k * 2 + 1) / 2 ** 20, 1 + (k * 2 + 1) * 2 ** -52, 3 + k * 2 ** -49);
  check(values.filter((v) => !Number.isInteger(v)));
  // Outside its range the path declines and writes nothing.
  out.fill(0);
  for (const v of [1e9 + 0.5, 9.99e-7, 5e-324, 1e300]) assert.equal(writeShortest(v, out, 0), -1, `${v}`);
  assert.ok(out.every((b) => b === 0));
});

/**
 * The shortest decimal that reads back as a double, written as ASCII bytes exactly as
 * ECMAScript's Number::toString prints it (ECMA-262, Number::toString: fewest significant
 * digits that round-trip; of several, the one nearest the double). It serves the long
 * doubles JSON and CSV results are full of (averages, ratios, sums of decimals: 15–17
 * significant digits), for which V8's own shortest-digits search costs ~200 ns a value
 * (`json-result.bench.ts`); this path costs a fraction of that.
 *
 * Why it is exact, for a double `a` in [1e-6, 1e9):
 * - **15 digits first.** Every decimal of at most 15 significant digits survives the trip
 *   to the nearest double and back at 15 digits (DBL_DIG = 15, IEEE 754 binary64). So if
 *   any form of ≤ 15 digits reads back as `a`, the 15-digit rounding of `a` is that form
 *   padded with zeros; if the 15-digit rounding does not read back, no shorter form does.
 *   With 16 digits, the candidate nearest `a` reads back if any 16-digit form does (the
 *   doubles that read back as `a` form one interval around it); 17 digits always do.
 * - **Exact scaling.** `a · 10^k` (k ≤ 22, so 10^k is exact) is computed as an unevaluated
 *   sum p + e of two doubles (Dekker's product with Veltkamp's split), so the nearest
 *   integer, and whether the scaled value sits near a half (a tie), are decided on the
 *   exact value. Near a tie (within 1e-6 of one half) this path declines.
 * - **Exact reading back.** For a candidate N < 2^53, `N / 10^k` divides two exact
 *   doubles, and IEEE division rounds correctly: the same double a correct parser gives
 *   for the decimal (Clinger's fast path). A 16-digit candidate at or above 2^53 declines.
 *
 * Callers fall back to `JSON.stringify` (V8's printer) where this path declines: outside
 * [1e-6, 1e9), near a tie, a 16-digit candidate ≥ 2^53, and the double nearest 1e-6 (below
 * 10^-6, so its 17 digits would need 10^23, which is not exact). The test compares both on
 * millions of doubles.
 */

/** 10^k for k = 0…22: exact doubles (5^22 < 2^53). */
const TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);
/** Veltkamp's splitter for binary64: 2^27 + 1. */
const SPLIT = 134217729;
/** High halves of `TEN` (26 bits), for Dekker's product. */
const TEN_HIGH = TEN.map((t) => {
  const c = SPLIT * t;
  return c - (c - t);
});
/** Low halves of `TEN`: `TEN[k] = TEN_HIGH[k] + TEN_LOW[k]` exactly. */
const TEN_LOW = TEN.map((t, k) => t - TEN_HIGH[k]);
const TWO_53 = 9007199254740992;
/** 10^e as doubles for e = −6…9 (the negative ones rounded). */
const TEN_BELOW = Array.from({ length: 16 }, (_, i) => Number(`1e${i - 6}`));
/** How close to one half the scaled value's fraction may come before the path declines. */
const TIE_MARGIN = 1e-6;

/**
 * State between the steps, in a Float64Array rather than module variables: a double
 * stored in a variable the functions share is boxed, one heap allocation per store.
 * - SCALED_HIGH + SCALED_LOW: the exact a · 10^k (the product rounded, and its error), set by `scale`;
 * - NEAR_BASE + NEAR_ADD: the integer nearest it, set by `nearest` (an integer-valued double
 *   and a small integer: the integer may exceed 2^53, where it has no double of its own).
 */
const STATE = new Float64Array(4);
const SCALED_HIGH = 0;
const SCALED_LOW = 1;
const NEAR_BASE = 2;
const NEAR_ADD = 3;

/** Sets SCALED_HIGH + SCALED_LOW to a · 10^k exactly (Dekker's product; no overflow for a < 1e9, k ≤ 22). */
function scale(a: number, k: number): void {
  const p = a * TEN[k];
  const c = SPLIT * a;
  const aHigh = c - (c - a);
  const aLow = a - aHigh;
  const bHigh = TEN_HIGH[k];
  const bLow = TEN_LOW[k];
  STATE[SCALED_HIGH] = p;
  STATE[SCALED_LOW] = ((aHigh * bHigh - p) + aHigh * bLow + aLow * bHigh) + aLow * bLow;
}

/** Sets NEAR_BASE + NEAR_ADD to the integer nearest SCALED_HIGH + SCALED_LOW; false near a tie. */
function nearest(): boolean {
  const p = STATE[SCALED_HIGH];
  const e = STATE[SCALED_LOW];
  if (p < TWO_53 / 2) {
    // p may have a fraction; p − round(p) is exact (Sterbenz), and the exact offset of the
    // scaled value from round(p) is that plus e, within ±0.75 (|e| ≤ half p's spacing ≤ 0.25).
    const r = Math.round(p);
    const offset = (p - r) + e;
    const step = offset > 0.5 ? 1 : offset < -0.5 ? -1 : 0;
    if (Math.abs(offset - step) > 0.5 - TIE_MARGIN) return false;
    STATE[NEAR_BASE] = r + step;
    STATE[NEAR_ADD] = 0;
    return true;
  }
  // p is an integer (its spacing is ≥ 1); the fraction lies in e alone.
  const r = Math.round(e);
  if (Math.abs(e - r) > 0.5 - TIE_MARGIN) return false;
  STATE[NEAR_BASE] = p;
  STATE[NEAR_ADD] = r;
  return true;
}

/** ASCII of 00…99, two bytes each: digits are cut two at a time (the divisions are the cost). */
const PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 48 + (i & 1 ? (i >> 1) % 10 : Math.floor((i >> 1) / 10)));

/** ⌊x / 100⌋ for an integer 0 ≤ x < 2^31: the product's error (< 1e-8) cannot cross the 0.005 margin. */
function hundredths(x: number): number {
  return (x * 0.01 + 0.005) | 0;
}

/**
 * Writes the decimal digits of NEAR_BASE + NEAR_ADD (an integer in [1e14, 1.1e17)) into
 * `out` at `at`; returns how many.
 */
function writeNearest(out: Uint8Array, at: number): number {
  const base = STATE[NEAR_BASE];
  let high = Math.floor(base / 1e8);
  // Exact: high < 2^31 and 1e8 = 390625 · 2^8, so high · 1e8 needs at most 49 + 8 bits.
  let low = base - high * 1e8 + STATE[NEAR_ADD];
  // The quotient's rounding, or NEAR_ADD, can leave low one step outside [0, 1e8).
  if (low < 0) {
    low += 1e8;
    high--;
  } else if (low >= 1e8) {
    low -= 1e8;
    high++;
  }
  // high is in [1e6, 1e9]: 7 to 10 digits; low has exactly 8. Cut in groups of four, whose
  // divisions do not wait on one another.
  let len = 7;
  while (len < 10 && high >= TEN[len]) len++;
  const lowHigh = tenThousandths(low);
  writeFour(lowHigh, out, at + len);
  writeFour(low - lowHigh * 10000, out, at + len + 4);
  let top = tenThousandths(high);
  writeFour(high - top * 10000, out, at + len - 4);
  let i = at + len - 6;
  for (; i >= at; i -= 2) {
    const q = hundredths(top);
    const r = 2 * (top - q * 100);
    out[i] = PAIRS[r];
    out[i + 1] = PAIRS[r + 1];
    top = q;
  }
  if (i === at - 1) out[at] = 48 + top;
  return len + 8;
}

/** ⌊x / 10,000⌋ for an integer 0 ≤ x < 2^31, as `hundredths`. */
function tenThousandths(x: number): number {
  return (x * 0.0001 + 0.00005) | 0;
}

/** Writes the four digits of `x` (0–9,999) at out[i…i+3]. */
function writeFour(x: number, out: Uint8Array, i: number): void {
  const q = hundredths(x);
  const r = 2 * (x - q * 100);
  const l = 2 * q;
  out[i] = PAIRS[l];
  out[i + 1] = PAIRS[l + 1];
  out[i + 2] = PAIRS[r];
  out[i + 3] = PAIRS[r + 1];
}

/** Scratch for reading a double's binary exponent. */
const EXPONENT_VIEW = new Float64Array(1);
const EXPONENT_WORDS = new Uint32Array(EXPONENT_VIEW.buffer);
const LOG10_2 = Math.log10(2);

/** ⌊log10 a⌋ for a in [1e-6, 1e9), give or take one near a power of ten (the caller decides exactly). */
function roughExponent(a: number): number {
  EXPONENT_VIEW[0] = a;
  // 2^e2 ≤ a < 2^(e2+1) puts log10 a within [e2 · log10 2, (e2 + 1) · log10 2): at most one power of ten apart.
  const e = Math.floor((((EXPONENT_WORDS[1] >>> 20) & 0x7ff) - 1023) * LOG10_2);
  return a >= TEN_BELOW[e + 7] ? e + 1 : e;
}

/**
 * Writes the shortest round-trip decimal of `a` (a finite double in [1e-6, 1e9), not an
 * integer; the caller writes any sign) into `out` at `at`, as `String(a)` prints it:
 * plain notation, `0.000…` below 1. `out` needs 24 bytes of room (`0.00000` and 17 digits).
 * @returns the position after the text, or −1 where this path declines (see the module's
 *   doc): then nothing was written and the caller prints `a` another way.
 */
export function writeShortest(a: number, out: Uint8Array, at: number): number {
  if (!(a >= 1e-6 && a < 1e9)) return -1;
  // The exponent E (10^E ≤ a < 10^(E+1)), decided on the exact a · 10^(14−E).
  let k = 14 - roughExponent(a);
  scale(a, k);
  if (STATE[SCALED_HIGH] < 1e14 || (STATE[SCALED_HIGH] === 1e14 && STATE[SCALED_LOW] < 0)) {
    k++;
    scale(a, k);
  } else if (STATE[SCALED_HIGH] > 1e15 || (STATE[SCALED_HIGH] === 1e15 && STATE[SCALED_LOW] >= 0)) {
    k--;
    scale(a, k);
  }
  // 17 digits need 10^(k+2) exact: k + 2 ≤ 22.
  if (k > 20) return -1;
  if (!nearest()) return -1;
  if ((STATE[NEAR_BASE] + STATE[NEAR_ADD]) / TEN[k] !== a) {
    k++;
    scale(a, k);
    if (!nearest()) return -1;
    const n16 = STATE[NEAR_BASE] + STATE[NEAR_ADD];
    if (n16 >= TWO_53) return -1;
    if (n16 / TEN[k] !== a) {
      k++;
      scale(a, k);
      if (!nearest()) return -1;
    }
  }
  // The digits go one byte in, leaving room to put the point (or a `0.000` head) before them.
  const count = writeNearest(out, at + 1);
  const whole = count - k;
  let end: number;
  if (whole > 0) {
    for (let i = at; i < at + whole; i++) out[i] = out[i + 1];
    out[at + whole] = 46;
    end = at + count + 1;
  } else {
    const head = 2 - whole;
    for (let i = at + count; i > at; i--) out[i + head - 1] = out[i];
    out[at] = 48;
    out[at + 1] = 46;
    for (let i = at + 2; i < at + head; i++) out[i] = 48;
    end = at + head + count;
  }
  // The fraction's trailing zeros go (the 15-digit form pads a shorter one).
  while (out[end - 1] === 48) end--;
  if (out[end - 1] === 46) end--;
  return end;
}

/**
 * Time units. Strata stores `time` as Parquet TIMESTAMP(MICROS, UTC); every protocol
 * converts its timestamps to integral microseconds since the Unix epoch here.
 */
import { BadRequestError } from '../errors.js';

/** InfluxDB write precisions: v2 names (`ns`, `us`, `ms`, `s`) and v1 names (`n`, `u`, `ms`, `s`, `m`, `h`). */
export type Precision = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

// A Map, not an object literal: `precision=constructor` must not find Object.prototype's.
const PRECISIONS = new Map<string, Precision>([
  ['ns', 'ns'], ['n', 'ns'], ['us', 'us'], ['u', 'us'], ['µs', 'us'], ['ms', 'ms'], ['s', 's'], ['m', 'm'], ['h', 'h'],
]);

/** The precisions InfluxDB v2's `/api/v2/write` takes (its `WritePrecision`): no v1 names, no minutes or hours. */
const V2_PRECISIONS: ReadonlySet<string> = new Set(['ns', 'us', 'ms', 's']);

/**
 * Parses the `precision` query parameter; absent means `ns` (InfluxDB's default). `v2`
 * takes only InfluxDB v2's names (`/api/v2/write` answers others 400, so a client sending
 * `h` there learns of it from Strata as from InfluxDB instead of when it moves).
 * @throws BadRequestError for any other value.
 */
export function parsePrecision(value: string | undefined, v2 = false): Precision {
  if (value === undefined || value === '') return 'ns';
  const p = v2 && !V2_PRECISIONS.has(value) ? undefined : PRECISIONS.get(value);
  if (p === undefined) throw new BadRequestError(`invalid precision "${value}": must be one of ns, us, ms, s${v2 ? '' : ', m, h (or n, u)'}`);
  return p;
}

/** Microseconds per unit of each precision; `ns` is handled by division (1/1000). */
export const MICROS_PER_UNIT: Record<Exclude<Precision, 'ns'>, number> = {
  us: 1, ms: 1_000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000,
};

/** Largest |µs| Strata stores exactly as a JS number: 2^53 µs, about ±285 years around 1970. */
const MAX_TIME_US = Number.MAX_SAFE_INTEGER;

/** Whether `us` (µs since the epoch) is a time Strata stores: within ±MAX_TIME_US; false for NaN. */
export function inTimeRange(us: number): boolean {
  return us >= -MAX_TIME_US && us <= MAX_TIME_US;
}

/** Current wall-clock time in integral microseconds since the epoch. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** Unit of a numeric timestamp. */
export type TimeUnit = 's' | 'ms' | 'us' | 'ns';

/**
 * Guesses the unit of a MessagePack timestamp from its magnitude, as Arc does:
 * |t| < 1e10 seconds, < 1e13 milliseconds, < 1e16 microseconds, else nanoseconds.
 */
export function guessTimeUnit(t: number): TimeUnit {
  const a = Math.abs(t);
  if (a < 1e10) return 's';
  if (a < 1e13) return 'ms';
  if (a < 1e16) return 'us';
  return 'ns';
}

/**
 * Converts `t` in `unit` to integral microseconds, flooring fractions so that
 * pre-1970 instants land in the right hour.
 */
export function toMicros(t: number, unit: TimeUnit): number {
  switch (unit) {
    case 's': return Math.floor(t * 1_000_000);
    case 'ms': return Math.floor(t * 1_000);
    case 'us': return Math.floor(t);
    case 'ns': return Math.floor(t / 1_000);
  }
}

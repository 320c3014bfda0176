/**
 * The storage layout of Parquet files, shared by writers and the query planner:
 * `{database}/{measurement}/YYYY/MM/DD/HH/{measurement}_{YYYYMMDD_HHMMSS}_{nrows}_{unique}.parquet`.
 *
 * YYYY/MM/DD/HH is the UTC hour of the data (floor division, so pre-1970 records land
 * in the right hour, as in Arc); the file name's date and time are the wall clock at
 * flush; `unique` keeps names from colliding between flushes and processes.
 */
import { randomBytes } from 'node:crypto';
import { encodePathSegment } from '../parse/names.js';

/** Microseconds in one hour partition. */
export const HOUR_US = 3_600_000_000;

/** The hour partition (hours since the epoch, floored) of a time in µs. */
export function hourOf(timeUs: number): number {
  return Math.floor(timeUs / HOUR_US);
}

/** Key prefix of every file of a database, ending in `/`. */
export function databasePrefix(database: string): string {
  return `${encodePathSegment(database)}/`;
}

/** Key prefix of every file of a measurement, ending in `/`. */
export function measurementPrefix(database: string, measurement: string): string {
  return `${databasePrefix(database)}${encodePathSegment(measurement)}/`;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** Key prefix of one hour partition of a measurement: `db/m/YYYY/MM/DD/HH/`. */
export function hourPrefix(database: string, measurement: string, hour: number): string {
  const d = new Date(hour * 3_600_000);
  return `${measurementPrefix(database, measurement)}${pad(d.getUTCFullYear(), 4)}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}/`;
}

const processTag = randomBytes(3).toString('hex');
let sequence = 0;

/**
 * Key for a new file of `rows` records in hour partition `hour`, named at wall-clock
 * time `now`. `unique` = a per-process random tag and a sequence number.
 */
export function fileKey(database: string, measurement: string, hour: number, rows: number, now = new Date()): string {
  const stamp = `${pad(now.getUTCFullYear(), 4)}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}_${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
  const unique = `${processTag}${(sequence++).toString(36).padStart(4, '0')}`;
  return `${hourPrefix(database, measurement, hour)}${encodePathSegment(measurement)}_${stamp}_${rows}_${unique}.parquet`;
}

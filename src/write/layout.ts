/**
 * The storage layout of Parquet files, shared by writers and the query planner:
 * `{database}/{measurement}/YYYY/MM/DD/HH/{measurement}_{YYYYMMDD_HHMMSS}_{nrows}_{unique}.parquet`.
 *
 * YYYY/MM/DD/HH is the UTC hour of the data (floor division, so pre-1970 records land
 * in the right hour, as in Arc); the file name's date and time are the wall clock at
 * flush; `unique` (see `FileNamer`) keeps names from colliding between flushes,
 * restarts and nodes writing to the same bucket.
 */
import { randomBytes } from 'node:crypto';
import { decodePathSegment, encodePathSegment } from '../parse/names.js';

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

/** Valid node ids: lowercase letters and digits (they end file names, so no `_` or `-`). */
export const NODE_ID_PATTERN = /^[a-z0-9]{1,32}$/;

/**
 * Names new files. `unique` = `{nodeId}-{run}{sequence}`: the node id keeps nodes
 * sharing a bucket apart, `run` (4 random hex digits per process) keeps a restarted
 * node from reusing a name of its previous run, and the base-36 sequence keeps one
 * process's names apart.
 */
export class FileNamer {
  /** This node's id (`STRATA_NODE_ID` or the persisted random one), matching `NODE_ID_PATTERN`. */
  readonly nodeId: string;
  private readonly run = randomBytes(2).toString('hex');
  private sequence = 0;

  /** @throws Error when `nodeId` does not match `NODE_ID_PATTERN`. */
  constructor(nodeId: string) {
    if (!NODE_ID_PATTERN.test(nodeId)) throw new Error(`invalid node id ${JSON.stringify(nodeId)}: expected ${NODE_ID_PATTERN}`);
    this.nodeId = nodeId;
  }

  /** Key for a new file of `rows` records in hour partition `hour`, named at wall-clock time `now`. */
  fileKey(database: string, measurement: string, hour: number, rows: number, now = new Date()): string {
    const stamp = `${pad(now.getUTCFullYear(), 4)}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}_${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
    const unique = `${this.nodeId}-${this.run}${(this.sequence++).toString(36).padStart(4, '0')}`;
    return `${hourPrefix(database, measurement, hour)}${encodePathSegment(measurement)}_${stamp}_${rows}_${unique}.parquet`;
  }
}

const HOUR_SEGMENTS = /(?:^|\/)(-?\d{4,})\/(\d{2})\/(\d{2})\/(\d{2})\/[^/]+$/;

/** The hour partition of a file key (the inverse of `hourPrefix`), or undefined for a key outside the layout. */
export function hourOfKey(key: string): number | undefined {
  const m = HOUR_SEGMENTS.exec(key);
  if (m === null) return undefined;
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]));
  return d.getTime() / 3_600_000;
}

/**
 * Whether `key` is one a writer could have named: `db/m/YYYY/MM/DD/HH/name.parquet`, so that
 * a directory also holding other files (a cache directory set to a shared one) leaves them be.
 */
export function isLayoutKey(key: string): boolean {
  return key.endsWith('.parquet') && key.split('/').length === 7 && hourOfKey(key) !== undefined;
}

/**
 * What a key or key prefix belongs to, by real (decoded) names, for messages that must
 * not show host paths: `measurement "m" of database "db"`, `database "db"`, or
 * `the storage root` for `''`.
 */
export function describeKey(key: string): string {
  const [database, measurement] = key.split('/').filter((s) => s !== '').map(decodePathSegment);
  if (database === undefined) return 'the storage root';
  if (measurement === undefined) return `database ${JSON.stringify(database)}`;
  return `measurement ${JSON.stringify(measurement)} of database ${JSON.stringify(database)}`;
}

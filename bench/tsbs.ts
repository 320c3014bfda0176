/**
 * TSBS "cpu-only" data generator: the shape used by the Time Series Benchmark Suite
 * (github.com/timescale/tsbs, `cpu-only` use case) and by ../shared/notes/hot-path.md.
 *
 * Each record: measurement `cpu`, 10 string tags (`hostname` with one value per host,
 * 9 low-cardinality tags), 10 float64 fields, one record per host every 10 s.
 * Deterministic for a given seed so that runs are comparable.
 */
import { encode } from '@msgpack/msgpack';

/** The 10 tag keys of a TSBS `cpu` record, in the order `hostTags` gives their values. */
export const TAG_KEYS = [
  'hostname', 'region', 'datacenter', 'rack', 'os', 'arch', 'team', 'service', 'service_version', 'service_environment',
] as const;
/** The 10 float64 field keys of a TSBS `cpu` record (random values from 0 to 100). */
export const FIELD_KEYS = [
  'usage_user', 'usage_system', 'usage_idle', 'usage_nice', 'usage_iowait',
  'usage_irq', 'usage_softirq', 'usage_steal', 'usage_guest', 'usage_guest_nice',
] as const;

const REGIONS = ['us-east-1', 'us-west-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-1', 'ap-southeast-2', 'ap-northeast-1', 'sa-east-1'];

/** Options: `hosts` series, `start` in µs since the epoch, 10 s between a host's records. */
export interface CpuOptions {
  hosts: number;
  startUs?: number;
  intervalUs?: number;
  seed?: number;
}

/** One host's fixed tag values. */
function hostTags(i: number): string[] {
  const region = REGIONS[i % REGIONS.length];
  return [
    `host_${i}`, region, `${region}${'abc'[i % 3]}`, String(i % 100), ['Ubuntu16.10', 'Ubuntu16.04LTS', 'Ubuntu15.10'][i % 3],
    ['x64', 'x86'][i % 2], ['SF', 'NYC', 'LON', 'CHI'][i % 4], String(i % 20), String(i % 2), ['production', 'staging', 'test'][i % 3],
  ];
}

/** Small deterministic PRNG (mulberry32), returns floats in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Records in generation order: row r is host (r % hosts) at start + floor(r / hosts) * interval. */
export class CpuGenerator {
  /** Series (hosts) per time step; row r is host r % hosts. */
  readonly hosts: number;
  /** Time of the first step, µs since the epoch (default 2026-01-01T00:00:00Z). */
  readonly startUs: number;
  /** Time between a host's records, µs (default 10 s). */
  readonly intervalUs: number;
  private readonly tags: string[][];
  private readonly random: () => number;
  private next = 0;

  constructor(o: CpuOptions) {
    this.hosts = o.hosts;
    this.startUs = o.startUs ?? Date.UTC(2026, 0, 1) * 1000;
    this.intervalUs = o.intervalUs ?? 10_000_000;
    this.tags = Array.from({ length: o.hosts }, (_, i) => hostTags(i));
    this.random = rng(o.seed ?? 42);
  }

  /** Tag values of host `h`, in `TAG_KEYS` order. */
  hostTags(h: number): readonly string[] {
    return this.tags[h];
  }

  /** Generates the next `n` records as columns: time (µs), host index, and 10 field arrays. */
  columns(n: number): { timeUs: Float64Array; host: Uint32Array; fields: Float64Array[] } {
    const timeUs = new Float64Array(n);
    const host = new Uint32Array(n);
    const fields = FIELD_KEYS.map(() => new Float64Array(n));
    for (let i = 0; i < n; i++, this.next++) {
      host[i] = this.next % this.hosts;
      timeUs[i] = this.startUs + Math.floor(this.next / this.hosts) * this.intervalUs;
      // Fractional values: a whole number would be encoded as a MessagePack integer.
      for (const f of fields) f[i] = Math.round(this.random() * 1e6) / 1e4 + 0.0001;
    }
    return { timeUs, host, fields };
  }

  /** The next `n` records as one InfluxDB line-protocol body with ns timestamps. */
  lineProtocol(n: number): Buffer {
    const { timeUs, host, fields } = this.columns(n);
    const prefixes = this.tags.map((t) => 'cpu,' + TAG_KEYS.map((k, j) => `${k}=${t[j]}`).join(','));
    const lines: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const fs = FIELD_KEYS.map((k, j) => `${k}=${fields[j][i]}`).join(',');
      lines[i] = `${prefixes[host[i]]} ${fs} ${timeUs[i]}000`;
    }
    return Buffer.from(lines.join('\n') + '\n');
  }

  /** The next `n` records as one Arc columnar MessagePack item with ms timestamps (as Telegraf sends). */
  msgpackColumnar(n: number): Buffer {
    const { timeUs, host, fields } = this.columns(n);
    const columns: Record<string, unknown[]> = { time: Array.from(timeUs, (t) => Math.floor(t / 1000)) };
    TAG_KEYS.forEach((k, j) => { columns[k] = Array.from(host, (h) => this.tags[h][j]); });
    FIELD_KEYS.forEach((k, j) => { columns[k] = Array.from(fields[j]); });
    return Buffer.from(encode({ m: 'cpu', columns }));
  }
}

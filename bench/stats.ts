/** Summary statistics shared by the benchmarks. */

/** The median of a non-empty list of timings (the upper one of the middle two for an even count). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Latency statistics. Percentiles use MLPerf LoadGen's / onnxruntime_perf_test's definition: sorted[floor(N * p)]
 * (clamped to the last element). The definition string travels with every report.
 */

export const PERCENTILE_DEFINITION = 'sorted[floor(N*p)] (MLPerf LoadGen / onnxruntime_perf_test)';

export interface LatencyStats {
  n: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
  /** Coefficient of variation: stddev / mean. */
  cv: number;
  p50: number;
  p90: number;
  p95: number;
  p97: number;
  p99: number;
  p999: number;
  definition: string;
}

/** The value at quantile p of an ascending-sorted array, by sorted[floor(N*p)]. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.floor(sorted.length * p));
  return sorted[index]!;
}

/** Statistics of a list of latencies in ms (sorts a copy; call once at the end of a run, not per query). */
export function latencyPercentiles(values: ArrayLike<number>): LatencyStats {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  const mean = n === 0 ? Number.NaN : sum / n;
  let sq = 0;
  for (const v of sorted) sq += (v - mean) ** 2;
  const stddev = n < 2 ? 0 : Math.sqrt(sq / (n - 1));
  return {
    n,
    min: n === 0 ? Number.NaN : sorted[0]!,
    max: n === 0 ? Number.NaN : sorted[n - 1]!,
    mean,
    stddev,
    cv: n === 0 || mean === 0 ? 0 : stddev / mean,
    p50: percentileSorted(sorted, 0.5),
    p90: percentileSorted(sorted, 0.9),
    p95: percentileSorted(sorted, 0.95),
    p97: percentileSorted(sorted, 0.97),
    p99: percentileSorted(sorted, 0.99),
    p999: percentileSorted(sorted, 0.999),
    definition: PERCENTILE_DEFINITION,
  };
}

/**
 * The fewest queries that support a claim about percentile p at 99% confidence, by MLPerf LoadGen's early-stopping
 * rule with one over-latency query tolerated: the smallest N with P(Binomial(N, 1 - p) <= 1) <= 0.01.
 * This gives LoadGen's figures: 64 for p90 and 662 for p99 (130 for p95).
 */
export function minQueriesForPercentile(p: number, confidence = 0.99): number {
  const q = 1 - p;
  for (let n = 2; n < 10_000_000; n++) {
    const tail = Math.pow(p, n) + n * q * Math.pow(p, n - 1);
    if (tail <= 1 - confidence) return n;
  }
  return Number.POSITIVE_INFINITY;
}

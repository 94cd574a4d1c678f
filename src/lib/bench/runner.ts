/**
 * The measurement loop, built like MLPerf LoadGen's: warm up, then issue queries until BOTH a minimum count and a
 * minimum duration are met (cycling the inputs), with monotonic timers and O(1) bookkeeping per query (results go
 * to preallocated memory; nothing is sorted or written until the end).
 *   single-stream: the next query starts when the previous one ends (latency-bound)
 *   offline:       `concurrency` queries in flight at all times (throughput-bound)
 */
import type {CascadeResult} from '../cascade/types.js';

/** `server` (Poisson arrivals at a target rate) runs in server-scenario.ts; the other two here. */
export type Scenario = 'single-stream' | 'offline' | 'server';

export type Predictor = (input: string | Uint8Array, meta: {id?: string; path?: string}) => Promise<CascadeResult>;

export interface BenchQuery {
  input: string | Uint8Array;
  id: string;
  path: string;
  label: number | null;
}

export interface RunSettings {
  scenario: Scenario;
  concurrency: number;
  warmup: {queries: number; ms: number};
  minQueries: number;
  minDurationMs: number;
  /** Hard cap, so a slow model with a long min-duration cannot run forever. */
  maxQueries?: number;
}

export interface MeasuredQuery {
  /** Index into the query list. */
  query: number;
  /** Latency measured around the call (ms). */
  ms: number;
  result: CascadeResult;
}

export interface RunOutcome {
  measured: MeasuredQuery[];
  warmupQueries: number;
  /** Wall-clock window of the measured queries (ms). */
  windowMs: number;
  /** CPU time used by this process during the window / (window * cores), 0-1. */
  cpuUtilisation: number;
  /** Measured process CPU time / window: how many cores were busy on average. */
  coresBusy: number;
}

/** Runs the warm-up and the measured window over `queries` (cycled). */
export async function runMeasurement(queries: BenchQuery[], predict: Predictor, settings: RunSettings, cores: number, onQuery?: (done: number) => void): Promise<RunOutcome> {
  if (queries.length === 0) throw new Error('no queries to run');
  let cursor = 0;
  const nextQuery = (): number => {
    const q = cursor % queries.length;
    cursor++;
    return q;
  };
  const warmupQueries = await warmUp(queries, predict, settings.warmup, nextQuery);
  const measured: MeasuredQuery[] = [];
  const cap = settings.maxQueries ?? Number.POSITIVE_INFINITY;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const more = (): boolean => measured.length + inFlight < cap && (measured.length + inFlight < settings.minQueries || performance.now() - start < settings.minDurationMs);
  let inFlight = 0;
  const issue = async (): Promise<void> => {
    while (more()) {
      const index = nextQuery();
      const q = queries[index]!;
      inFlight++;
      const t0 = performance.now();
      const result = await predict(q.input, {id: q.id, path: q.path});
      const ms = performance.now() - t0;
      inFlight--;
      measured.push({query: index, ms, result});
      onQuery?.(measured.length);
    }
  };
  const workers = settings.scenario === 'single-stream' ? 1 : Math.max(1, settings.concurrency);
  await Promise.all(Array.from({length: workers}, issue));
  const windowMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const coresBusy = (cpu.user + cpu.system) / 1000 / windowMs;
  return {measured, warmupQueries, windowMs, coresBusy, cpuUtilisation: Math.min(1, coresBusy / cores)};
}

/** Warm-up: at least `queries` calls and at least `ms` of calls, none of them counted. Returns the calls made. */
export async function warmUp(queries: BenchQuery[], predict: Predictor, warmup: RunSettings['warmup'], nextQuery: () => number = ((i = 0) => () => i++ % queries.length)()): Promise<number> {
  const warmStart = performance.now();
  let warmupQueries = 0;
  while (warmupQueries < warmup.queries || performance.now() - warmStart < warmup.ms) {
    const q = queries[nextQuery()]!;
    await predict(q.input, {id: q.id, path: q.path});
    warmupQueries++;
  }
  return warmupQueries;
}

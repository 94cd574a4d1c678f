/**
 * The server scenario, built like MLPerf LoadGen's: queries arrive as a Poisson process at a target rate (seeded,
 * so a run can be repeated), each is issued at its scheduled time whatever the state of the previous ones, and its
 * latency is measured FROM THE SCHEDULED ARRIVAL to its answer, so queueing (in natix, in the model workers, in a
 * late event loop) counts. The run is VALID when the p99 latency meets the bound and there is enough evidence for a
 * p99 claim (>= 662 queries, LoadGen's early-stopping floor) over the minimum duration; otherwise INVALID with the
 * reasons. `findPeak` searches the highest rate that is VALID.
 *
 * The pieces are separate so each can be checked against known answers: `poissonArrivals` (the arrival process),
 * `serverVerdict` (statistics and constraints from scheduled/completed times), `runServer` (the real-time driver,
 * with an injectable clock) and `findPeak` (the search).
 */
import {latencyPercentiles, minQueriesForPercentile, type LatencyStats} from '../metrics/latency.js';
import {SeededRandom} from '../util/random.js';

/** Arrival times (ms from the start) of `n` queries of a Poisson process at `qps`: exponential gaps, mean 1000/qps. */
export function poissonArrivals(n: number, qps: number, seed: number | string): Float64Array {
  const rng = new SeededRandom(`server-${seed}`);
  const out = new Float64Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    // 1 - U is in (0, 1]: the log is finite.
    t += (-Math.log(1 - rng.next()) * 1000) / qps;
    out[i] = t;
  }
  return out;
}

export interface ServerSettings {
  targetQps: number;
  /** The p99 latency bound (ms), measured from the scheduled arrival. */
  p99BoundMs: number;
  seed: number;
  /** Queries to issue: at least this many (raised to the 662 a p99 claim needs)... */
  minQueries: number;
  /** ...and arrivals spanning at least this long. */
  minDurationMs: number;
  maxQueries?: number;
}

export interface ServerConstraint {
  name: 'min-queries' | 'min-duration' | 'p99-latency' | 'errors';
  ok: boolean;
  detail: string;
}

export interface ServerSummary {
  targetQps: number;
  seed: number;
  queries: number;
  /** Queries / span of the scheduled arrivals (what the seeded process actually asked for). */
  scheduledQps: number;
  /** Queries / (last answer - first arrival). */
  completedQps: number;
  p99BoundMs: number;
  /** Latency from the scheduled arrival, percentiles sorted[floor(N*p)]. */
  latency: LatencyStats;
  /** How late queries were issued after their scheduled time (the driver's own lag), p99 and max (ms). */
  issueDelay: {p99: number; max: number};
  errors: number;
  valid: boolean;
  constraints: ServerConstraint[];
  recommendation: string;
}

/** How many queries a server run issues for these settings (LoadGen: both the count and the duration floor). */
export function serverQueryCount(settings: ServerSettings): number {
  const n = Math.max(settings.minQueries, minQueriesForPercentile(0.99), Math.ceil((settings.minDurationMs / 1000) * settings.targetQps));
  return settings.maxQueries === undefined ? n : Math.min(n, settings.maxQueries);
}

/**
 * The statistics and the verdict of a server run from its scheduled arrivals, issue times and answer times (ms on one
 * clock) and the number of failed queries.
 */
export function serverVerdict(settings: ServerSettings, scheduled: ArrayLike<number>, issued: ArrayLike<number>, completed: ArrayLike<number>, errors: number): ServerSummary {
  const n = scheduled.length;
  const latencies = new Float64Array(n);
  const delays = new Float64Array(n);
  let lastDone = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    latencies[i] = completed[i]! - scheduled[i]!;
    delays[i] = issued[i]! - scheduled[i]!;
    lastDone = Math.max(lastDone, completed[i]!);
  }
  const latency = latencyPercentiles(latencies);
  const delay = latencyPercentiles(delays);
  const span = n > 0 ? scheduled[n - 1]! - 0 : 0; // arrivals are measured from the run's start (time 0)
  const needed = minQueriesForPercentile(0.99);
  const constraints: ServerConstraint[] = [
    {name: 'min-queries', ok: n >= needed, detail: `${n} queries ${n >= needed ? '>=' : '<'} ${needed} (a p99 claim at 99% confidence, LoadGen's early-stopping floor)`},
    {name: 'min-duration', ok: span >= settings.minDurationMs, detail: `arrivals span ${(span / 1000).toFixed(2)} s ${span >= settings.minDurationMs ? '>=' : '<'} ${(settings.minDurationMs / 1000).toFixed(2)} s`},
    {name: 'p99-latency', ok: latency.p99 <= settings.p99BoundMs, detail: `p99 ${latency.p99.toFixed(2)} ms ${latency.p99 <= settings.p99BoundMs ? '<=' : '>'} bound ${settings.p99BoundMs} ms (from the scheduled arrival)`},
    {name: 'errors', ok: errors === 0, detail: errors === 0 ? 'every query answered' : `${errors} of ${n} queries failed (an error is never an answer)`},
  ];
  const valid = constraints.every((c) => c.ok);
  const scheduledQps = span > 0 ? n / (span / 1000) : 0;
  let recommendation: string;
  if (valid) recommendation = `VALID at ${settings.targetQps} queries/s; --find-peak searches the highest rate that stays within the bound`;
  else if (!constraints[0]!.ok || !constraints[1]!.ok) recommendation = 'raise --min-queries / --min-duration (or --max-queries) so the run supports a p99 claim';
  else if (!constraints[2]!.ok) {
    const overloaded = latency.p50 > settings.p99BoundMs || delay.p99 > settings.p99BoundMs / 2;
    recommendation = overloaded
      ? `the model cannot keep up with ${settings.targetQps} queries/s (queues grow): lower --target-qps, add replicas, or try --find-peak`
      : `lower --target-qps or relax the bound; p99 is ${latency.p99.toFixed(1)} ms`;
  } else recommendation = 'fix the failing queries first (see errors.log / --predictions)';
  return {
    targetQps: settings.targetQps,
    seed: settings.seed,
    queries: n,
    scheduledQps,
    completedQps: n > 0 && lastDone > 0 ? n / (lastDone / 1000) : 0,
    p99BoundMs: settings.p99BoundMs,
    latency,
    issueDelay: {p99: delay.p99, max: delay.max},
    errors,
    valid,
    constraints,
    recommendation,
  };
}

/** The driver's clock: real time by default; tests pass a virtual one. */
export interface ServerClock {
  now(): number;
  /** Resolves at (or after) time `t` of this clock. */
  until(t: number): Promise<void>;
}

export const realClock = (): ServerClock => {
  const start = performance.now();
  return {
    now: () => performance.now() - start,
    // Already due: go on at once (a 0 ms timer still costs about 1 ms, which would make the driver fall behind).
    until: (t) => {
      const wait = t - (performance.now() - start);
      return wait <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, wait));
    },
  };
};

export interface ServerRun<R> {
  summary: ServerSummary;
  /** Per query, in issue order: which input (index, cycled), its answer, its latency from the scheduled arrival. */
  answers: Array<{query: number; result: R; ms: number}>;
  windowMs: number;
}

/**
 * Issues `serverQueryCount(settings)` queries over `inputs` (cycled) at Poisson arrival times, never waiting for an
 * answer before issuing the next one, and returns the verdict. `failed(result)` says whether an answer is an error.
 */
export async function runServer<R>(inputs: number, predict: (index: number) => Promise<R>, failed: (result: R) => boolean, settings: ServerSettings, clock: ServerClock = realClock(), onAnswer?: (done: number) => void): Promise<ServerRun<R>> {
  const n = serverQueryCount(settings);
  const scheduled = poissonArrivals(n, settings.targetQps, settings.seed);
  const issued = new Float64Array(n);
  const completed = new Float64Array(n);
  const answers = new Array<{query: number; result: R; ms: number}>(n);
  const pending: Array<Promise<void>> = [];
  let errors = 0;
  let done = 0;
  for (let i = 0; i < n; i++) {
    await clock.until(scheduled[i]!);
    issued[i] = clock.now();
    const query = i % inputs;
    pending.push(
      predict(query).then((result) => {
        completed[i] = clock.now();
        if (failed(result)) errors++;
        answers[i] = {query, result, ms: completed[i]! - scheduled[i]!};
        onAnswer?.(++done);
      }),
    );
  }
  await Promise.all(pending);
  const summary = serverVerdict(settings, scheduled, issued, completed, errors);
  return {summary, answers, windowMs: Math.max(...completed)};
}

export interface PeakTrial {
  qps: number;
  valid: boolean;
  p99: number;
}

/**
 * The highest rate that is VALID, LoadGen-style: from `startQps`, double while VALID (halve while INVALID) to
 * bracket the edge, then bisect until the bracket is within `tolerance` (relative) or `maxTrials` runs are spent.
 */
export async function findPeak(trial: (qps: number) => Promise<{valid: boolean; p99: number}>, startQps: number, options: {tolerance?: number; maxTrials?: number} = {}): Promise<{peakQps: number | null; trials: PeakTrial[]}> {
  const tolerance = options.tolerance ?? 0.05;
  const maxTrials = options.maxTrials ?? 12;
  const trials: PeakTrial[] = [];
  const run = async (qps: number): Promise<boolean> => {
    const r = await trial(qps);
    trials.push({qps, valid: r.valid, p99: r.p99});
    return r.valid;
  };
  let lo: number | undefined; // highest VALID rate seen
  let hi: number | undefined; // lowest INVALID rate seen
  let q = startQps;
  while (trials.length < maxTrials && (lo === undefined || hi === undefined)) {
    if (await run(q)) {
      lo = q;
      q *= 2;
    } else {
      hi = q;
      q /= 2;
    }
  }
  while (trials.length < maxTrials && lo !== undefined && hi !== undefined && (hi - lo) / hi > tolerance) {
    const mid = (lo + hi) / 2;
    if (await run(mid)) lo = mid;
    else hi = mid;
  }
  return {peakQps: lo ?? null, trials};
}

/**
 * The server scenario against known answers: the seeded Poisson arrivals have the exponential gaps and Poisson
 * counts they should; the driver, run on a virtual clock against a simulated single-server queue with a fixed
 * service time (M/D/1), reports exactly the latencies the Lindley recursion gives and the mean response time that
 * queueing theory (Pollaczek-Khinchine) predicts; the verdict's constraints and the peak search behave as specified.
 */
import {describe, expect, it} from 'vitest';
import {findPeak, poissonArrivals, runServer, serverQueryCount, serverVerdict, type ServerClock, type ServerSettings} from '../../src/lib/bench/server-scenario.js';
import {percentileSorted} from '../../src/lib/metrics/latency.js';

/** A discrete-event clock: timers fire in time order; microtasks run between events. */
class VirtualClock implements ServerClock {
  private t = 0;
  private timers: Array<{at: number; seq: number; resolve: () => void}> = [];
  private seq = 0;
  now(): number {
    return this.t;
  }
  until(at: number): Promise<void> {
    return new Promise((resolve) => this.timers.push({at: Math.max(at, this.t), seq: this.seq++, resolve}));
  }
  async drain(): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (this.timers.length === 0) return;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers.shift()!;
      this.t = next.at;
      next.resolve();
    }
  }
}

/** Answer times of a single server with service time d (FIFO): c_i = max(a_i, c_{i-1}) + d. */
function lindley(arrivals: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(arrivals.length);
  let last = 0;
  for (let i = 0; i < arrivals.length; i++) last = out[i] = Math.max(arrivals[i]!, last) + d;
  return out;
}

const settings = (over: Partial<ServerSettings> = {}): ServerSettings => ({targetQps: 50, p99BoundMs: 100, seed: 7, minQueries: 1, minDurationMs: 0, ...over});

describe('Poisson arrivals', () => {
  it('are seeded, with exponential gaps of mean 1000/qps and Poisson counts per second', () => {
    const a = poissonArrivals(20_000, 50, 3);
    expect(poissonArrivals(20_000, 50, 3)).toEqual(a);
    expect(poissonArrivals(20_000, 50, 4)[0]).not.toBe(a[0]);
    const gaps = Array.from(a, (t, i) => t - (i ? a[i - 1]! : 0));
    const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
    expect(Math.abs(mean - 20) / 20).toBeLessThan(0.03); // sd of the mean: 20/sqrt(20000) = 0.14 ms
    // P(gap > mean) = e^-1 for an exponential distribution (sd of the share: 0.0034).
    expect(Math.abs(gaps.filter((g) => g > 20).length / gaps.length - Math.exp(-1))).toBeLessThan(0.015);
    // Counts per 1 s window: Poisson(50), so variance / mean ~ 1.
    const counts = new Array<number>(Math.floor(a[a.length - 1]! / 1000)).fill(0);
    for (const t of a) if (t < counts.length * 1000) counts[Math.floor(t / 1000)]!++;
    const m = counts.reduce((s, c) => s + c, 0) / counts.length;
    const v = counts.reduce((s, c) => s + (c - m) ** 2, 0) / (counts.length - 1);
    expect(Math.abs(m - 50)).toBeLessThan(1.5);
    expect(v / m).toBeGreaterThan(0.75);
    expect(v / m).toBeLessThan(1.25);
  });
});

describe('server run', () => {
  it('on a virtual clock against an M/D/1 queue: latencies are exactly the Lindley recursion, the mean matches queueing theory', async () => {
    const d = 10; // ms of service; at 50 queries/s the load is 0.5
    const s = settings({minQueries: 20_000});
    const clock = new VirtualClock();
    let busyUntil = 0;
    const run = runServer(
      100,
      async (q) => {
        busyUntil = Math.max(clock.now(), busyUntil) + d;
        await clock.until(busyUntil);
        return {q};
      },
      () => false,
      s,
      clock,
    );
    await clock.drain();
    const {summary, answers} = await run;
    const n = serverQueryCount(s);
    expect(n).toBe(20_000);
    const arrivals = poissonArrivals(n, 50, 7);
    const expected = lindley(arrivals, d).map((c, i) => c - arrivals[i]!);
    answers.forEach((a, i) => {
      expect(a.ms).toBeCloseTo(expected[i]!, 9);
      expect(a.query).toBe(i % 100);
    });
    const sorted = Float64Array.from(expected).sort();
    expect(summary.latency.p99).toBeCloseTo(percentileSorted(sorted, 0.99), 9);
    expect(summary.latency.p50).toBeCloseTo(percentileSorted(sorted, 0.5), 9);
    expect(summary.latency.min).toBeCloseTo(d, 9);
    // Pollaczek-Khinchine for M/D/1: W = d + rho d / (2 (1 - rho)) = 10 + 5 = 15 ms.
    expect(summary.latency.mean).toBeGreaterThan(14.2);
    expect(summary.latency.mean).toBeLessThan(15.8);
    expect(summary.issueDelay.max).toBe(0);
    expect(summary.scheduledQps).toBeCloseTo(n / (arrivals[n - 1]! / 1000), 9);
    expect(summary.valid).toBe(true);
    expect(summary.constraints.map((c) => [c.name, c.ok])).toEqual([
      ['min-queries', true],
      ['min-duration', true],
      ['p99-latency', true],
      ['errors', true],
    ]);
  });

  it('INVALID with the reasons: a bound below p99, too few queries, failed queries, an overloaded server', () => {
    const arrivals = poissonArrivals(1000, 50, 1);
    const done = lindley(arrivals, 10);
    const ok = serverVerdict(settings(), arrivals, arrivals, done, 0);
    expect(ok.valid).toBe(true);
    const tight = serverVerdict(settings({p99BoundMs: ok.latency.p99 - 0.001}), arrivals, arrivals, done, 0);
    expect(tight.valid).toBe(false);
    expect(tight.constraints.find((c) => !c.ok)!.name).toBe('p99-latency');
    const few = serverVerdict(settings(), arrivals.slice(0, 600), arrivals.slice(0, 600), done.slice(0, 600), 0);
    expect(few.constraints.filter((c) => !c.ok).map((c) => c.name)).toEqual(['min-queries']);
    const errors = serverVerdict(settings(), arrivals, arrivals, done, 3);
    expect(errors.constraints.filter((c) => !c.ok).map((c) => c.name)).toEqual(['errors']);
    // 50 queries/s against a 25 ms server (load 1.25): the queue grows without bound.
    const overloaded = serverVerdict(settings(), arrivals, arrivals, lindley(arrivals, 25), 0);
    expect(overloaded.valid).toBe(false);
    expect(overloaded.recommendation).toMatch(/cannot keep up/);
    expect(overloaded.completedQps).toBeLessThan(41);
  });

  it('the query count honours the count floor, the duration and the cap', () => {
    expect(serverQueryCount(settings({minQueries: 10}))).toBe(662);
    expect(serverQueryCount(settings({minQueries: 10, minDurationMs: 60_000}))).toBe(3000);
    expect(serverQueryCount(settings({minQueries: 10, maxQueries: 100}))).toBe(100);
  });
});

describe('find peak', () => {
  it('brackets then bisects to the highest VALID rate', async () => {
    const edge = 37.3;
    const {peakQps, trials} = await findPeak(async (q) => ({valid: q <= edge, p99: q}), 10);
    expect(peakQps).not.toBeNull();
    expect(peakQps!).toBeLessThanOrEqual(edge);
    expect(peakQps!).toBeGreaterThan(edge * 0.95);
    expect(trials.slice(0, 3).map((t) => [t.qps, t.valid])).toEqual([
      [10, true],
      [20, true],
      [40, false],
    ]);
    expect(trials.length).toBeLessThanOrEqual(12);
    const down = await findPeak(async (q) => ({valid: q <= 3, p99: q}), 100);
    expect(down.peakQps!).toBeLessThanOrEqual(3);
    expect(down.peakQps!).toBeGreaterThan(3 * 0.95);
    expect((await findPeak(async () => ({valid: false, p99: 1}), 10, {maxTrials: 5})).peakQps).toBeNull();
  });
});

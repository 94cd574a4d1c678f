/**
 * Comparing a benchmark with a baseline (a previous `natix bench --json` output): deltas, and regression gates
 * (`--max-regression mcc=0.002,p95=10%`): an absolute drop for quality metrics, a relative or absolute slowdown for
 * latency, a relative drop for throughput. A comparison is only made between like runs: same scenario, same
 * concurrency and the same data (split, number of images, format); `baselineMismatches` says what differs.
 */
import type {GateResult} from './gates.js';

export interface ComparableResult {
  metrics: {mcc: number; accuracy: number};
  latency: {p50: number; p95: number; p99: number};
  throughput: number;
  scenario?: string;
  settings?: {concurrency?: number};
  dataset?: {root?: string; format?: string; split?: string | null; images?: number};
}

/** What a run is measured under, for comparing it with a baseline. */
export interface RunConditions {
  scenario: string;
  /** Queries in flight (1 in single-stream). */
  concurrency: number;
  dataset: {root: string; format: string; split: string | null; images: number};
}

/**
 * What differs between this run's conditions and the baseline's: `refuse` lists differences that make the
 * comparison meaningless (a +658% "regression" of an offline run against a single-stream one), `note` those that
 * may be harmless (the same data under another folder).
 */
export function baselineMismatches(current: RunConditions, baseline: ComparableResult): {refuse: string[]; note: string[]} {
  const refuse: string[] = [];
  const note: string[] = [];
  if (baseline.scenario !== undefined && baseline.scenario !== current.scenario) refuse.push(`scenario ${current.scenario} vs ${baseline.scenario} in the baseline`);
  const baselineConcurrency = baseline.scenario === 'single-stream' ? 1 : baseline.settings?.concurrency;
  if (baselineConcurrency !== undefined && baselineConcurrency !== current.concurrency) refuse.push(`concurrency ${current.concurrency} vs ${baselineConcurrency} in the baseline`);
  const d = baseline.dataset;
  if (d) {
    if (d.split !== undefined && d.split !== current.dataset.split) refuse.push(`split ${current.dataset.split ?? '(all)'} vs ${d.split ?? '(all)'} in the baseline`);
    if (d.images !== undefined && d.images !== current.dataset.images) refuse.push(`${current.dataset.images} images vs ${d.images} in the baseline`);
    if (d.format !== undefined && d.format !== current.dataset.format) refuse.push(`dataset format ${current.dataset.format} vs ${d.format} in the baseline`);
    if (d.root !== undefined && d.root !== current.dataset.root) note.push(`the dataset folder differs (${current.dataset.root} vs ${d.root} in the baseline)`);
  }
  return {refuse, note};
}

export interface BaselineDelta {
  metric: string;
  baseline: number;
  current: number;
  delta: number;
  /** delta / baseline, when the baseline is non-zero. */
  relative: number | null;
}

const PATHS: Record<string, (r: ComparableResult) => number> = {
  mcc: (r) => r.metrics.mcc,
  accuracy: (r) => r.metrics.accuracy,
  p50: (r) => r.latency.p50,
  p95: (r) => r.latency.p95,
  p99: (r) => r.latency.p99,
  throughput: (r) => r.throughput,
};
const HIGHER_IS_BETTER = new Set(['mcc', 'accuracy', 'throughput']);

/** Accepts a whole `--json` envelope or just its result. */
export function baselineResult(json: unknown): ComparableResult {
  const candidate = (json as {result?: unknown})?.result ?? json;
  const r = candidate as ComparableResult;
  if (!r || typeof r !== 'object' || !r.metrics || !r.latency || typeof r.throughput !== 'number') {
    throw new Error('not a natix bench --json result (expected metrics, latency and throughput)');
  }
  return r;
}

export function compareWithBaseline(current: ComparableResult, baseline: ComparableResult): BaselineDelta[] {
  return Object.entries(PATHS).map(([metric, get]) => {
    const b = get(baseline);
    const c = get(current);
    return {metric, baseline: b, current: c, delta: c - b, relative: b === 0 ? null : (c - b) / Math.abs(b)};
  });
}

export interface RegressionLimit {
  metric: string;
  /** Absolute limit, or relative when `relative` is true (0.1 = 10%). */
  limit: number;
  relative: boolean;
}

/** `mcc=0.002,p95=10%` -> limits. */
export function parseMaxRegression(text: string): RegressionLimit[] {
  return text.split(',').map((part) => {
    const m = /^\s*([a-z0-9]+)\s*=\s*([\d.]+)\s*(%?)\s*$/i.exec(part);
    if (!m || !(m[1]! in PATHS)) throw new Error(`bad --max-regression entry "${part}" (e.g. mcc=0.002,p95=10%; metrics: ${Object.keys(PATHS).join(', ')})`);
    return {metric: m[1]!, limit: m[3] ? Number(m[2]) / 100 : Number(m[2]), relative: m[3] === '%'};
  });
}

/** One gate per limit: FAIL when the metric got worse than the limit allows. */
export function regressionGates(deltas: BaselineDelta[], limits: RegressionLimit[]): GateResult[] {
  return limits.map((l) => {
    const d = deltas.find((x) => x.metric === l.metric)!;
    const worse = HIGHER_IS_BETTER.has(l.metric) ? -d.delta : d.delta;
    const amount = l.relative ? (d.baseline === 0 ? 0 : worse / Math.abs(d.baseline)) : worse;
    const ok = amount <= l.limit;
    const shown = l.relative ? `${(amount * 100).toFixed(2)}%` : amount.toPrecision(4);
    return {
      name: `max-regression:${l.metric}`,
      pass: l.limit,
      metric: `regression.${l.metric}`,
      value: amount,
      verdict: ok ? 'PASS' : 'FAIL',
      ...(l.relative ? {unit: 'percent' as const} : {}),
      message: `${l.metric} ${ok ? 'within' : 'regressed beyond'} the limit: worse by ${shown} (limit ${l.relative ? `${l.limit * 100}%` : l.limit}) vs baseline ${d.baseline.toPrecision(4)}`,
    };
  });
}

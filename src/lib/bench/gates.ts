/**
 * Benchmark gates: each compares one measured value with a pass threshold and an optional warn band, and says
 * PASS / WARN / FAIL / INVALID (INVALID: not enough evidence, e.g. a p99 claim from fewer than 662 queries, an MCC
 * whose confidence interval is wider than the gate's margin, or an MCC on labels of one class only).
 */
import {minQueriesForPercentile} from '../metrics/latency.js';
import type {MccInterval} from '../metrics/mcc-interval.js';

export type Verdict = 'PASS' | 'WARN' | 'FAIL' | 'INVALID';

export type GateName = 'min-mcc' | 'min-accuracy' | 'max-p50-ms' | 'max-p95-ms' | 'max-p99-ms' | 'min-throughput' | 'min-reward';

export interface GateSpec {
  name: GateName;
  /** Pass threshold. */
  pass: number;
  /** Warn threshold (between pass and this: WARN; beyond: FAIL). */
  warn?: number;
}

export interface GateResult {
  /** A gate name (`min-mcc`, ...) or `max-regression:<metric>` for baseline gates. */
  name: string;
  pass: number;
  warn?: number;
  metric: string;
  value: number | null;
  verdict: Verdict;
  message: string;
  /** How `value` and `pass` read (regression limits in %: 6.5796 is 657.96%). */
  unit?: 'percent';
  /** The MCC confidence interval behind an MCC gate. */
  interval?: {low: number; high: number; confidence: number};
}

export const DEFAULT_GATES: GateSpec[] = [
  {name: 'min-mcc', pass: 0.9975, warn: 0.995},
  {name: 'max-p50-ms', pass: 25, warn: 30},
  {name: 'max-p95-ms', pass: 40, warn: 50},
];

const HIGHER_IS_BETTER: Record<GateName, boolean> = {
  'min-mcc': true,
  'min-accuracy': true,
  'max-p50-ms': false,
  'max-p95-ms': false,
  'max-p99-ms': false,
  'min-throughput': true,
  'min-reward': true,
};

const PERCENTILE: Partial<Record<GateName, number>> = {'max-p50-ms': 0.5, 'max-p95-ms': 0.95, 'max-p99-ms': 0.99};

/**
 * The values a gate threshold may take. MCC, accuracy and the validator score are checked in [0, 1] (a negative
 * MCC gate would pass a model worse than chance; MCC 0 is chance level); latencies are positive and at most an
 * hour; throughput is non-negative.
 */
export const GATE_RANGE: Record<GateName, [number, number]> = {
  'min-mcc': [0, 1],
  'min-accuracy': [0, 1],
  'max-p50-ms': [Number.MIN_VALUE, 3_600_000],
  'max-p95-ms': [Number.MIN_VALUE, 3_600_000],
  'max-p99-ms': [Number.MIN_VALUE, 3_600_000],
  'min-throughput': [0, 1e9],
  'min-reward': [0, 1],
};

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** `0.9975` or `0.9975,0.995` (pass, warn) -> a gate spec; validates the range and the warn band's side. */
export function parseGate(name: GateName, text: string | number): GateSpec {
  const parts = String(text).split(',').map((p) => p.trim());
  const [passText, warnText] = parts;
  const pass = Number(passText);
  const warn = warnText === undefined ? undefined : Number(warnText);
  if (parts.length > 2 || !DECIMAL.test(passText ?? '') || (warnText !== undefined && !DECIMAL.test(warnText)) || !Number.isFinite(pass) || (warn !== undefined && !Number.isFinite(warn))) {
    throw new Error(`--${name} expects a number or "pass,warn", got "${text}"`);
  }
  const [lo, hi] = GATE_RANGE[name];
  for (const v of warn === undefined ? [pass] : [pass, warn]) {
    if (v < lo || v > hi) throw new Error(`must be ${lo === Number.MIN_VALUE ? '> 0' : `>= ${lo}`} and <= ${hi}, got ${v}${name === 'min-mcc' ? ' (MCC 0 is chance level)' : ''}`);
  }
  if (warn !== undefined && (HIGHER_IS_BETTER[name] ? warn > pass : warn < pass)) {
    throw new Error(`--${name}: the warn threshold ${warn} must be ${HIGHER_IS_BETTER[name] ? 'below' : 'above'} the pass threshold ${pass}`);
  }
  return {name, pass, warn};
}

export interface GateInputs {
  mcc: number | null;
  accuracy: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  throughput: number | null;
  reward: number | null;
  /** Latency samples behind the percentiles. */
  latencyN: number;
  /** Labelled answers behind MCC/accuracy. */
  metricN: number;
  /** Bootstrap interval of the MCC (see metrics/mcc-interval.ts). */
  mccInterval?: MccInterval;
  /** Classes among the labelled answers, with their counts (e.g. {1: 30}). */
  labelCounts?: Record<number, number>;
  /** Labelled images the quality metrics were asked for (answered or not); defaults to metricN. */
  metricAsked?: number;
  /** Queries that failed (not answered). */
  errors?: number;
  /** Lack of evidence FAILs instead of INVALID. */
  strict?: boolean;
}

/**
 * The margin an MCC gate decides within: its warn band (pass - warn) when it has one, else the room between the
 * pass threshold and a perfect 1. An interval wider than this cannot say on which side of the threshold MCC is.
 */
export function mccGateMargin(spec: GateSpec): number {
  return spec.warn !== undefined ? Math.abs(spec.pass - spec.warn) : Math.max(0, 1 - spec.pass);
}

/** Evidence checks of an MCC gate: one-class labels, or an interval too wide to decide. Undefined when it can decide. */
function mccEvidence(spec: GateSpec, inputs: GateInputs, value: number): GateResult | undefined {
  const base = {...spec, metric: 'mcc', value};
  const counts = Object.entries(inputs.labelCounts ?? {}).filter(([, n]) => n > 0);
  if (counts.length === 1) {
    const [label, n] = counts[0]!;
    return {...base, verdict: 'INVALID', message: `all ${n} labelled images are of one class (${label === '1' ? 'roadwork' : label === '0' ? 'none' : `class ${label}`}): MCC is 0 by definition whatever the model answers; benchmark on images of both classes`};
  }
  const ci = inputs.mccInterval;
  if (!ci) return undefined;
  const interval = {low: ci.low, high: ci.high, confidence: ci.confidence};
  const width = ci.high - ci.low;
  const margin = mccGateMargin(spec);
  const failBelow = spec.warn ?? spec.pass;
  const described = `${Math.round(ci.confidence * 100)}% interval [${ci.low.toFixed(4)}, ${ci.high.toFixed(4)}] on n=${inputs.metricN}`;
  if (width <= margin || ci.low >= spec.pass) return undefined;
  // Clearly below even at the top of the interval: the evidence suffices to fail.
  if (ci.high < failBelow) return {...base, interval, verdict: 'FAIL', message: `mcc ${fmt(value)} misses >= ${failBelow}: even the top of its ${described} is below it`};
  const needed = Math.ceil(inputs.metricN * (width / Math.max(margin, 1e-6)) ** 2);
  return {
    ...base,
    interval,
    verdict: 'INVALID',
    message: `mcc ${fmt(value)}: its ${described} is ${width.toFixed(4)} wide, wider than the gate's margin ${margin.toPrecision(3)}: too few labelled images to decide (about ${needed} needed)`,
  };
}

function metricOf(name: GateName, inputs: GateInputs): {metric: string; value: number | null} {
  switch (name) {
    case 'min-mcc':
      return {metric: 'mcc', value: inputs.mcc};
    case 'min-accuracy':
      return {metric: 'accuracy', value: inputs.accuracy};
    case 'max-p50-ms':
      return {metric: 'latency.p50', value: inputs.p50};
    case 'max-p95-ms':
      return {metric: 'latency.p95', value: inputs.p95};
    case 'max-p99-ms':
      return {metric: 'latency.p99', value: inputs.p99};
    case 'min-throughput':
      return {metric: 'throughput', value: inputs.throughput};
    case 'min-reward':
      return {metric: 'validator.finalReward', value: inputs.reward};
  }
}

export function evaluateGate(spec: GateSpec, inputs: GateInputs): GateResult {
  const {metric, value} = metricOf(spec.name, inputs);
  const higher = HIGHER_IS_BETTER[spec.name];
  const p = PERCENTILE[spec.name];
  if (spec.name === 'min-mcc' || spec.name === 'min-accuracy') {
    const asked = inputs.metricAsked ?? inputs.metricN;
    const unproven: Verdict = inputs.strict ? 'FAIL' : 'INVALID';
    if (inputs.metricN === 0) return {...spec, metric, value: value ?? null, verdict: unproven, message: `no labelled answers${asked > 0 ? ` (0 of ${asked} labelled images answered)` : ''}`};
    if (inputs.metricN < asked) {
      return {...spec, metric, value, verdict: unproven, message: `${metric} ${value === null ? 'n/a' : fmt(value)} covers only ${inputs.metricN} of ${asked} labelled images (${asked - inputs.metricN} not answered${inputs.errors ? `: ${inputs.errors} error(s)` : ''}); a quality claim needs every image answered`};
    }
  }
  if (value === null || Number.isNaN(value)) {
    return {...spec, metric, value: null, verdict: 'INVALID', message: `${metric} was not measured${spec.name === 'min-reward' ? ' (run with --simulate-validator)' : ''}`};
  }
  if (p !== undefined) {
    const needed = minQueriesForPercentile(p);
    if (inputs.latencyN < needed) {
      return {...spec, metric, value, verdict: 'INVALID', message: `a p${Math.round(p * 100)} claim needs >= ${needed} queries (LoadGen early-stopping rule, 99% confidence); measured ${inputs.latencyN}: raise --min-queries`};
    }
  }
  if (spec.name === 'min-mcc') {
    const evidence = mccEvidence(spec, inputs, value);
    if (evidence) return evidence.verdict === 'INVALID' && inputs.strict ? {...evidence, verdict: 'FAIL'} : evidence;
  }
  const interval = spec.name === 'min-mcc' && inputs.mccInterval ? {interval: {low: inputs.mccInterval.low, high: inputs.mccInterval.high, confidence: inputs.mccInterval.confidence}} : {};
  const better = (a: number, b: number): boolean => (higher ? a >= b : a <= b);
  const op = higher ? '>=' : '<=';
  if (better(value, spec.pass)) return {...spec, metric, value, ...interval, verdict: 'PASS', message: `${metric} ${fmt(value)} ${op} ${spec.pass}`};
  if (spec.warn !== undefined && better(value, spec.warn)) return {...spec, metric, value, ...interval, verdict: 'WARN', message: `${metric} ${fmt(value)} misses ${op} ${spec.pass} but is within the warn band (${op} ${spec.warn})`};
  const missed = spec.warn !== undefined ? `misses ${op} ${spec.pass} and the warn band (${op} ${spec.warn})` : `misses ${op} ${spec.pass}`;
  return {...spec, metric, value, ...interval, verdict: 'FAIL', message: `${metric} ${fmt(value)} ${missed}`};
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

/** The overall verdict: any FAIL, else any INVALID, else any WARN, else PASS. */
export function overallVerdict(results: Array<{verdict: Verdict}>): Verdict {
  for (const v of ['FAIL', 'INVALID', 'WARN'] as const) if (results.some((r) => r.verdict === v)) return v;
  return 'PASS';
}

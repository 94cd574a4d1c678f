/**
 * Benchmark gates: each compares one measured value with a pass threshold and an optional warn band, and says
 * PASS / WARN / FAIL / INVALID (INVALID: not enough evidence, e.g. a p99 claim from fewer than 662 queries).
 */
import {minQueriesForPercentile} from '../metrics/latency.js';

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
  /** Labelled images the quality metrics were asked for (answered or not); defaults to metricN. */
  metricAsked?: number;
  /** Queries that failed (not answered). */
  errors?: number;
  /** Lack of evidence FAILs instead of INVALID. */
  strict?: boolean;
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
  const better = (a: number, b: number): boolean => (higher ? a >= b : a <= b);
  const op = higher ? '>=' : '<=';
  if (better(value, spec.pass)) return {...spec, metric, value, verdict: 'PASS', message: `${metric} ${fmt(value)} ${op} ${spec.pass}`};
  if (spec.warn !== undefined && better(value, spec.warn)) return {...spec, metric, value, verdict: 'WARN', message: `${metric} ${fmt(value)} misses ${spec.pass} but is within the warn band (${spec.warn})`};
  return {...spec, metric, value, verdict: 'FAIL', message: `${metric} ${fmt(value)} not ${op} ${spec.warn ?? spec.pass}`};
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

/** The overall verdict: any FAIL, else any INVALID, else any WARN, else PASS. */
export function overallVerdict(results: Array<{verdict: Verdict}>): Verdict {
  for (const v of ['FAIL', 'INVALID', 'WARN'] as const) if (results.some((r) => r.verdict === v)) return v;
  return 'PASS';
}

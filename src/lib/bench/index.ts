/**
 * `natix bench` as a library: measure a cascade on a labelled dataset (accuracy from one accumulated confusion
 * matrix, latency by the LoadGen-style runner), optionally simulate the subnet's validators, then gate.
 */
import os from 'node:os';
import type {Cascade, CascadeDescription} from '../cascade/index.js';
import type {Sample} from '../data/sample.js';
import {rocAuc} from '../metrics/auc.js';
import {ConfusionMatrix, classificationMetrics, type ClassificationMetrics} from '../metrics/classification.js';
import {latencyPercentiles, type LatencyStats} from '../metrics/latency.js';
import {mccInterval, type MccInterval} from '../metrics/mcc-interval.js';
import {simulateValidator, type ChallengeRecord, type ValidatorSummary} from '../validator/simulate.js';
import {compareWithBaseline, regressionGates, type BaselineDelta, type ComparableResult, type RegressionLimit} from './baseline.js';
import {cascadeStats, type StageStats} from './cascade-stats.js';
import {evaluateGate, overallVerdict, type GateResult, type GateSpec, type Verdict} from './gates.js';
import {runMeasurement, warmUp, type BenchQuery, type RunOutcome, type RunSettings, type Scenario} from './runner.js';
import {findPeak, runServer, type PeakTrial, type ServerSummary} from './server-scenario.js';

export interface BenchOptions {
  run: RunSettings;
  /** The server scenario (run.scenario === 'server'): target rate, p99 bound, arrival seed, peak search. */
  server?: {targetQps: number; p99BoundMs: number; seed: number; findPeak: boolean};
  gates: GateSpec[];
  validator?: {challenges: number; seed: number; flips: boolean};
  baseline?: {file: string; result: ComparableResult; limits: RegressionLimit[]};
  onProgress?: (phase: 'measure' | 'validator', done: number) => void;
  /** Gates that lack evidence (e.g. quality over fewer answered images than asked) FAIL instead of INVALID. */
  strict?: boolean;
}

export interface PredictionRecord {
  id: string;
  path: string;
  label: number | null;
  probability: number;
  roadwork: boolean;
  ms: number;
  error?: string;
}

export interface BenchResult {
  model: CascadeDescription;
  dataset: {root: string; format: string; split: string | null; images: number};
  scenario: Scenario;
  settings: {warmupQueries: number; warmupMs: number; minQueries: number; minDurationMs: number; concurrency: number};
  metrics: ClassificationMetrics & {auc: number | null; mccInterval?: MccInterval};
  errors: number;
  latency: LatencyStats;
  stageLatency: Record<string, {n: number; mean: number; p50: number; p95: number}>;
  throughput: number;
  windowSeconds: number;
  warmupQueries: number;
  cpu: {cores: number; coresBusy: number; utilisation: number};
  cascade: StageStats[];
  validator?: ValidatorSummary;
  /** The server scenario's verdict (LoadGen-style VALID/INVALID with each constraint), and the peak search. */
  server?: ServerSummary & {peak?: {peakQps: number | null; trials: PeakTrial[]}};
  baseline?: {file: string; deltas: BaselineDelta[]};
  gates: GateResult[];
  verdict: Verdict;
}

export interface BenchOutput {
  result: BenchResult;
  predictions: PredictionRecord[];
  challenges: ChallengeRecord[];
  /** End-to-end latencies of the measured queries, for plots. */
  latencies: Float64Array;
  warnings: string[];
}

export async function runBench(cascade: Cascade, samples: Sample[], dataset: BenchResult['dataset'], options: BenchOptions): Promise<BenchOutput> {
  const warnings: string[] = [];
  const queries: BenchQuery[] = samples.map((s) => ({input: s.bytes ?? s.absPath!, id: s.id, path: s.path, label: s.label}));
  const predict = (input: string | Uint8Array, meta: {id?: string; path?: string}): ReturnType<Cascade['predict']> => cascade.predict(input, meta);
  const cores = os.availableParallelism();
  let server: BenchResult['server'];
  let outcome: RunOutcome;
  if (options.run.scenario === 'server') {
    if (!options.server) throw new Error('the server scenario needs a target rate and a p99 bound');
    ({outcome, server} = await serverScenario(queries, predict, options.run, options.server, cores, (done) => options.onProgress?.('measure', done)));
  } else outcome = await runMeasurement(queries, predict, options.run, cores, (done) => options.onProgress?.('measure', done));
  const n = outcome.measured.length;
  const latencies = new Float64Array(n);
  outcome.measured.forEach((m, i) => (latencies[i] = m.ms));
  const latency = latencyPercentiles(latencies);
  if (latency.cv > 0.1) warnings.push(`latency varies a lot (coefficient of variation ${(latency.cv * 100).toFixed(1)}% > 10%): close other programs, raise --warmup / --min-duration, or pin --threads`);

  // Quality from each sample's first measured answer: one accumulated confusion matrix, no double counting.
  const seen = new Set<number>();
  const firstAnswers: Array<{label: number | null; result: (typeof outcome.measured)[number]['result']}> = [];
  for (const m of outcome.measured) {
    if (seen.has(m.query)) continue;
    seen.add(m.query);
    firstAnswers.push({label: queries[m.query]!.label, result: m.result});
  }
  const cm = new ConfusionMatrix(2);
  const labels: number[] = [];
  const scores: number[] = [];
  // Errors are never predictions: an image the cascade did not answer is left out of the confusion matrix, and
  // the quality gates see how many labelled images were asked for and how many were answered.
  let errors = 0;
  for (const a of firstAnswers) {
    if (a.result.error) {
      errors++;
      continue;
    }
    if (a.label === null) continue;
    cm.add(a.label, a.result.roadwork ? 1 : 0);
    labels.push(a.label);
    scores.push(a.result.probability);
  }
  const labelledAsked = queries.filter((q) => q.label !== null).length;
  if (seen.size < queries.length) warnings.push(`only ${seen.size} of ${queries.length} images were measured: raise --min-queries to cover the dataset`);
  if (errors > 0) {
    const firstError = firstAnswers.find((a) => a.result.error)!.result;
    warnings.push(`${errors} of ${firstAnswers.length} image(s) were not answered (errors, left out of every quality metric; e.g. ${firstError.path ?? firstError.id ?? '?'}: ${firstError.error})`);
  }
  const auc = rocAuc(labels, scores);
  const classification = classificationMetrics(cm);
  const labelCounts: Record<number, number> = {};
  for (const l of labels) labelCounts[l] = (labelCounts[l] ?? 0) + 1;
  // How far the MCC can be trusted on this many images (seeded: the same answers give the same interval); none
  // when the labels have one class (MCC is then 0 by definition, not an estimate).
  const bothClasses = Object.keys(labelCounts).length >= 2;
  const metrics = {...classification, auc: Number.isNaN(auc) ? null : auc, ...(bothClasses ? {mccInterval: mccInterval(classification.confusion)} : {})};

  const stageLatency: BenchResult['stageLatency'] = {};
  const stageNames = outcome.measured[0]?.result.stages.map((s) => s.name) ?? [];
  for (const [k, name] of stageNames.entries()) {
    const values = outcome.measured.filter((m) => m.result.stages[k]?.ran).map((m) => m.result.stages[k]!.ms);
    const s = latencyPercentiles(values);
    stageLatency[name] = {n: s.n, mean: s.mean, p50: s.p50, p95: s.p95};
  }

  let validator: ValidatorSummary | undefined;
  let challenges: ChallengeRecord[] = [];
  if (options.validator) {
    const sim = await simulateValidator(samples, predict, {...options.validator, onChallenge: (done) => options.onProgress?.('validator', done)});
    validator = sim.summary;
    challenges = sim.records;
  }

  const throughput = server ? server.completedQps : n / (outcome.windowMs / 1000);
  const gates = options.gates.map((g) =>
    evaluateGate(g, {
      mcc: metrics.n ? metrics.mcc : null,
      accuracy: metrics.n ? metrics.accuracy : null,
      p50: latency.p50,
      p95: latency.p95,
      p99: latency.p99,
      throughput,
      reward: validator ? validator.finalScore : null,
      latencyN: n,
      metricN: metrics.n,
      mccInterval: metrics.mccInterval,
      labelCounts,
      metricAsked: labelledAsked,
      errors,
      strict: options.strict ?? false,
    }),
  );
  if (server) gates.push(serverGate(server));
  let baseline: BenchResult['baseline'];
  if (options.baseline) {
    const deltas = compareWithBaseline({metrics, latency, throughput}, options.baseline.result);
    baseline = {file: options.baseline.file, deltas};
    gates.push(...regressionGates(deltas, options.baseline.limits));
  }
  const result: BenchResult = {
    model: cascade.describe(),
    dataset,
    scenario: options.run.scenario,
    // Concurrency 0: the server scenario is open-loop (queries are issued at their arrival times, however many wait).
    settings: {warmupQueries: options.run.warmup.queries, warmupMs: options.run.warmup.ms, minQueries: options.run.minQueries, minDurationMs: options.run.minDurationMs, concurrency: options.run.scenario === 'offline' ? options.run.concurrency : options.run.scenario === 'server' ? 0 : 1},
    metrics,
    errors,
    latency,
    stageLatency,
    throughput,
    windowSeconds: outcome.windowMs / 1000,
    warmupQueries: outcome.warmupQueries,
    cpu: {cores, coresBusy: outcome.coresBusy, utilisation: outcome.cpuUtilisation},
    cascade: cascadeStats(firstAnswers, cascade.threshold),
    ...(validator ? {validator} : {}),
    ...(server ? {server} : {}),
    ...(baseline ? {baseline} : {}),
    gates,
    verdict: overallVerdict(gates),
  };
  const predictions: PredictionRecord[] = firstAnswers.map((a) => ({
    id: a.result.id ?? '',
    path: a.result.path ?? '',
    label: a.label,
    probability: a.result.probability,
    roadwork: a.result.roadwork,
    ms: a.result.totalMs,
    ...(a.result.error ? {error: a.result.error} : {}),
  }));
  return {result, predictions, challenges, latencies, warnings};
}

/**
 * The server scenario through the cascade: warm-up, then one Poisson run at the target rate, or with `findPeak` a
 * search for the highest VALID rate starting there (the run reported is the one at the peak, else the last one).
 */
async function serverScenario(
  queries: BenchQuery[],
  predict: (input: string | Uint8Array, meta: {id?: string; path?: string}) => ReturnType<Cascade['predict']>,
  run: RunSettings,
  settings: NonNullable<BenchOptions['server']>,
  cores: number,
  onQuery: (done: number) => void,
): Promise<{outcome: RunOutcome; server: NonNullable<BenchResult['server']>}> {
  const warmupQueries = await warmUp(queries, predict, run.warmup);
  const once = async (qps: number): Promise<{outcome: RunOutcome; summary: ServerSummary}> => {
    const cpuStart = process.cpuUsage();
    const r = await runServer(
      queries.length,
      (i) => predict(queries[i]!.input, {id: queries[i]!.id, path: queries[i]!.path}),
      (result) => Boolean(result.error),
      {targetQps: qps, p99BoundMs: settings.p99BoundMs, seed: settings.seed, minQueries: run.minQueries, minDurationMs: run.minDurationMs, maxQueries: run.maxQueries},
      undefined,
      onQuery,
    );
    const cpu = process.cpuUsage(cpuStart);
    const coresBusy = (cpu.user + cpu.system) / 1000 / r.windowMs;
    return {summary: r.summary, outcome: {measured: r.answers, warmupQueries, windowMs: r.windowMs, coresBusy, cpuUtilisation: Math.min(1, coresBusy / cores)}};
  };
  if (!settings.findPeak) {
    const {outcome, summary} = await once(settings.targetQps);
    return {outcome, server: summary};
  }
  const runs = new Map<number, Awaited<ReturnType<typeof once>>>();
  const peak = await findPeak(async (qps) => {
    const r = await once(qps);
    runs.set(qps, r);
    return {valid: r.summary.valid, p99: r.summary.latency.p99};
  }, settings.targetQps);
  const chosen = runs.get(peak.peakQps ?? peak.trials[peak.trials.length - 1]!.qps)!;
  return {outcome: chosen.outcome, server: {...chosen.summary, peak}};
}

/** The server run as a gate: PASS when VALID, INVALID when the evidence is short, FAIL when the bound or answers fail. */
function serverGate(server: ServerSummary): GateResult {
  const failed = server.constraints.filter((c) => !c.ok);
  const evidence = failed.some((c) => c.name === 'min-queries' || c.name === 'min-duration');
  const verdict: Verdict = failed.length === 0 ? 'PASS' : evidence ? 'INVALID' : 'FAIL';
  const message = failed.length === 0 ? `VALID at ${server.targetQps} queries/s: ${server.constraints[2]!.detail}` : `INVALID: ${failed.map((c) => c.detail).join('; ')}`;
  return {name: 'server', metric: 'server.latency.p99', value: server.latency.p99, pass: server.p99BoundMs, verdict, message};
}

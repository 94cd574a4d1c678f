/**
 * What natix's commands log to a tracker: the shared run setup (standard tags, params), and the bench summary.
 * Commands call these; the trainer and bench libraries stay unaware of tracking.
 */
import type {BenchResult} from '../bench/index.js';
import {natixVersion} from '../runtime/environment.js';
import {experimentName, gitCommit, openTracker} from './index.js';
import {flattenParams, type TrackedRun} from './types.js';

export interface TrackingFlags {
  trackingUri?: string;
  experiment?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  warn: (message: string) => void;
}

/** Opens a tracker and starts a run with natix's standard tags. */
export async function startCommandRun(flags: TrackingFlags, defaultExperiment: string, runName: string, tags: Record<string, string>): Promise<TrackedRun> {
  const tracker = openTracker({uri: flags.trackingUri, cwd: flags.cwd, env: flags.env, warn: flags.warn});
  const commit = await gitCommit(flags.cwd);
  return tracker.startRun({
    experimentName: experimentName(flags.experiment, flags.env, defaultExperiment),
    runName,
    tags: {'natix.version': natixVersion(), ...(commit ? {'mlflow.source.git.commit': commit} : {}), ...tags},
  });
}

/** Logs a benchmark: settings as params, every number as a metric, gates and verdict as tags. */
export async function logBenchRun(run: TrackedRun, result: BenchResult, artifacts: string[]): Promise<void> {
  await run.logParams(
    flattenParams({
      model: result.model.stages.map((s) => s.models.map((m) => m.name).join('+')).join(' -> '),
      devices: result.model.devices.join(','),
      dataset: result.dataset,
      scenario: result.scenario,
      settings: result.settings,
      threshold: result.model.threshold,
    }),
  );
  const m = result.metrics;
  const l = result.latency;
  const metrics: Record<string, number> = {
    mcc: m.mcc,
    accuracy: m.accuracy,
    precision: m.precision,
    recall: m.recall,
    f1: m.f1,
    balanced_accuracy: m.balancedAccuracy,
    ...(m.auc === null ? {} : {auc: m.auc}),
    'latency.p50_ms': l.p50,
    'latency.p90_ms': l.p90,
    'latency.p95_ms': l.p95,
    'latency.p99_ms': l.p99,
    'latency.mean_ms': l.mean,
    throughput: result.throughput,
    errors: result.errors,
  };
  if (result.validator) Object.assign(metrics, {'validator.final_reward': result.validator.finalReward, 'validator.score': result.validator.finalScore, 'validator.mcc': result.validator.mcc});
  await run.logMetrics(metrics, 0);
  await run.setTags({'natix.verdict': result.verdict, ...Object.fromEntries(result.gates.map((g) => [`natix.gate.${g.name.replace(':', '.')}`, `${g.verdict}: ${g.message}`]))});
  for (const file of artifacts) await run.logArtifacts(file);
}

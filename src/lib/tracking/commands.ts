/**
 * What natix's commands log to a tracker: the shared run setup (standard tags, params), continuing a resumed
 * training run, the line that tells the user where the run went, and the bench summary. Commands call these; the
 * trainer and bench libraries stay unaware of tracking.
 */
import path from 'node:path';
import type {BenchResult} from '../bench/index.js';
import {writeFileAtomic} from '../util/fs.js';
import {natixVersion} from '../runtime/environment.js';
import {experimentName, gitCommit, openTracker} from './index.js';
import {flattenParams, type StartRunOptions, type TrackedRun} from './types.js';
import {readUserFile} from '../util/user-files.js';

export interface TrackingFlags {
  trackingUri?: string;
  experiment?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  warn: (message: string) => void;
  /** `--tracking-timeout` in ms: the most run creation, and the final flush, wait on a server each. */
  timeoutMs?: number;
}

/** The file in a training run folder that remembers its MLflow run, so `--resume` continues the same run. */
export const TRACKING_RUN_FILE = 'mlflow-run.json';

interface RememberedRun {
  runId: string;
  store: string;
  experimentId: string;
}

/** Records the tracked run in the training run folder (store address without credentials). */
export async function rememberRun(runDir: string, run: TrackedRun): Promise<void> {
  const record: RememberedRun = {runId: run.info.runId, store: run.info.storeUri, experimentId: run.info.experimentId};
  await writeFileAtomic(path.join(runDir, TRACKING_RUN_FILE), `${JSON.stringify(record, null, 2)}\n`);
}

async function recallRun(runDir: string): Promise<RememberedRun | undefined> {
  try {
    const value = JSON.parse(await readUserFile(path.join(runDir, TRACKING_RUN_FILE), 'utf8')) as Partial<RememberedRun>;
    return typeof value.runId === 'string' && typeof value.store === 'string' ? {runId: value.runId, store: value.store, experimentId: String(value.experimentId ?? '')} : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Opens a tracker and starts a run with natix's standard tags. With `resumeFrom` (a training run folder), the MLflow
 * run recorded there continues (same run id, back to RUNNING, one metric history) when it lives in the same store;
 * otherwise a new run starts, tagged with the one it follows.
 */
export async function startCommandRun(flags: TrackingFlags, defaultExperiment: string, runName: string, tags: Record<string, string>, extra: {resumeFrom?: string; startTime?: number; command?: string} = {}): Promise<TrackedRun> {
  const tracker = openTracker({uri: flags.trackingUri, cwd: flags.cwd, env: flags.env, warn: flags.warn, ...(flags.timeoutMs === undefined ? {} : {deadlineMs: flags.timeoutMs})});
  const commit = await gitCommit(flags.cwd);
  const options: StartRunOptions = {
    experimentName: experimentName(flags.experiment, flags.env, defaultExperiment),
    runName,
    ...(extra.startTime === undefined ? {} : {startTime: extra.startTime}),
    tags: {'natix.version': natixVersion(), 'mlflow.source.name': `natix ${extra.command ?? tags['natix.command'] ?? ''}`.trim(), ...(commit ? {'mlflow.source.git.commit': commit} : {}), ...tags},
  };
  if (extra.resumeFrom) {
    const previous = await recallRun(extra.resumeFrom);
    if (previous && previous.store === tracker.uri) {
      const resumed = await tracker.resumeRun(previous.runId, options);
      if (resumed) return resumed;
    }
    if (previous) options.tags = {...options.tags, 'natix.resumed_from_run': previous.runId};
  }
  return tracker.startRun(options);
}

/** One line saying where the run went: the store, or the spool when the server could not be reached. */
export function describeRun(run: TrackedRun): string {
  const {info} = run;
  if (info.spooled) return `MLflow run ${info.runId} for ${info.storeUri} (experiment "${info.experimentName}") is in the local spool: replay it with natix tracking sync`;
  return `Tracked as MLflow run ${info.runId} in experiment "${info.experimentName}" (id ${info.experimentId}) at ${info.storeUri}`;
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

/**
 * The `natix train` path for `model.from` (head training on a frozen backbone), kept out of the command file so the
 * zoo path stays as it is: --inspect, resume, SIGINT/SIGTERM (finish the step, checkpoint, exit 1), the console
 * line per epoch, MLflow tracking (params, per-epoch metrics, artifacts, the export with --register).
 */
import {existsSync} from 'node:fs';
import path from 'node:path';
import type {TrainConfig} from '../config/schemas/train.js';
import type {Progress} from '../cli/ui.js';
import {ExitCode, NatixError} from '../errors.js';
import {loadTfjs, type TfjsBackendChoice} from '../runtime/tfjs.js';
import {describeRun, rememberRun, startCommandRun} from '../tracking/commands.js';
import {flattenParams} from '../tracking/types.js';
import {describeBackbone, loadBackbone, type BackboneInfo} from './backbone.js';
import {describeBlocks, findBlocks, resolveTrainScope, scopeLabel, scopeStart} from './train-scope.js';
import {indexGraph, type Block} from '../onnx-exec/graph.js';
import {readHeadRunConfig, resolveHeadConfig, trainHead, type HeadTrainResult} from './head-trainer.js';
import {assertOutsideDataset} from '../data/safe-path.js';

export interface HeadCommandHost {
  flags: {
    resume: boolean;
    epochs?: number;
    'batch-size'?: number;
    seed?: number;
    'keep-last'?: number;
    'run-name'?: string;
    out: string;
    config?: string;
    backend: string;
    tracking: boolean;
    'tracking-uri'?: string;
    'tracking-timeout'?: number;
    experiment?: string;
    register?: string;
    alias?: string;
    inspect: boolean;
    device: string;
    threads: number;
    'gradient-threads'?: number;
  };
  json: boolean;
  progress(name: string, total: number): Progress;
  log(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  failCheck(): void;
}

export type HeadCommandResult = (Omit<HeadTrainResult, 'state'> & {backend: string; epochs: number; best: HeadTrainResult['state']['best']; trackingRunId?: string}) | {inspect: BackboneInfo; blocks: Block[]; trainFrom?: string};

function fmt(v: number | undefined, digits = 4): string {
  return v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits);
}

export async function runHeadTraining(host: HeadCommandHost, fileConfig: TrainConfig, root: string, lr: number | undefined): Promise<HeadCommandResult> {
  const {flags} = host;
  const settings = {device: flags.device as 'auto' | 'cpu' | 'cuda', threads: flags.threads};
  let cfg = resolveHeadConfig(fileConfig, {epochs: flags.epochs, batchSize: flags['batch-size'], lr, seed: flags.seed, keepLast: flags['keep-last'], runName: flags['run-name'], out: flags.out === 'checkpoints' || flags.out === fileConfig.out ? undefined : path.resolve(flags.out)}, root);
  for (const source of cfg.sources) assertOutsideDataset(path.join(cfg.out, cfg.runName), source.path, '--out');
  const {scope} = resolveTrainScope(fileConfig, cfg.lr);
  if (flags.inspect) {
    const backbone = await loadBackbone(cfg.model.from, {features: cfg.model.features, pool: cfg.model.pool, preprocessor: cfg.model.preprocessor, inspect: true, ...settings});
    await backbone.close();
    // The graph training splits: the model cut at its features, pooling appended (a classifier's old head is not in it).
    const graph = indexGraph(backbone.featureGraph, backbone.info.onnxFile);
    const blocks = findBlocks(graph);
    const start = scope.kind === 'head' ? undefined : scopeStart(graph, scope);
    for (const line of [...describeBackbone(backbone.info), ...describeBlocks(blocks)]) host.log(line);
    if (start !== undefined) host.log(`Trains from:   "${start}" to the end of the graph, then the head`);
    return {inspect: backbone.info, blocks, ...(start === undefined ? {} : {trainFrom: start})};
  }
  if (flags.resume) {
    const previous = await readHeadRunConfig(path.join(cfg.out, cfg.runName));
    if (!previous) throw new NatixError(`No head-training run "${cfg.runName}" in ${cfg.out} to resume`, {code: 'NO_CHECKPOINT', exitCode: ExitCode.Usage, actions: ['Pass the run name with --run-name.']});
    // The run's own config wins on resume, but a changed answer to "what trains" is an error, not silently ignored.
    const before = scopeLabel(previous.train?.scope ?? {kind: 'head'});
    if (before !== scopeLabel(scope)) {
      throw new NatixError(`Run ${cfg.runName} trained ${before}; the config now says ${scopeLabel(scope)}`, {
        code: 'TRAIN_SCOPE_CHANGED',
        exitCode: ExitCode.Usage,
        actions: ['Resume with the model.train / model.train-from the run started with.', 'Or start a new run (another --run-name), e.g. from this run\'s export.'],
      });
    }
    cfg = {...previous, epochs: flags.epochs ?? fileConfig.epochs ?? previous.epochs};
  }
  // Threads and the boundary cache are this machine's settings, not the run's (neither changes a result): on resume
  // too they come from the flag, else the config here, else auto.
  if (cfg.train) cfg = {...cfg, train: {...cfg.train, gradientThreads: flags['gradient-threads'] ?? fileConfig['gradient-threads'] ?? 'auto', boundaryCache: fileConfig['boundary-cache'] ?? 'auto'}};
  const {tf, backend, reason} = await loadTfjs(flags.backend as TfjsBackendChoice);
  host.info(`Head backend: ${backend} (${reason})`);
  let stopRequested: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested) process.exit(ExitCode.CheckFailed);
    stopRequested = signal;
    process.stderr.write(`\n${signal}: finishing the current step and writing a checkpoint (press again to abort)...\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tracked = flags.tracking
    ? await startCommandRun({trackingUri: flags['tracking-uri'], experiment: flags.experiment, cwd: process.cwd(), env: process.env, warn: (m) => host.warn(m), timeoutMs: flags['tracking-timeout']}, 'natix-train', cfg.runName, {
        'natix.command': 'train',
        'natix.mode': 'head',
        'natix.train': scopeLabel(cfg.train?.scope ?? {kind: 'head'}),
        'natix.backend': backend,
        ...(flags.resume ? {'natix.resumed': 'true'} : {}),
      }, {resumeFrom: flags.resume ? path.join(cfg.out, cfg.runName) : undefined})
    : undefined;
  if (tracked) await tracked.logParams(flattenParams(cfg));
  const bars: Partial<Record<string, Progress>> = {};
  let result: HeadTrainResult;
  try {
    result = await trainHead(
      tf,
      backend,
      cfg,
      flags.resume,
      {
        info: (m) => host.info(m),
        warn: (m) => host.warn(m),
        shouldStop: () => stopRequested !== undefined,
        onProgress: (phase, done, total) => {
          const bar = (bars[phase] ??= host.progress(phase, total));
          bar.setTotal(total);
          bar.increment(0, {value: done});
          if (done >= total) bar.stop();
        },
        onData: async (fingerprint) => {
          if (!tracked) return;
          await tracked.setTags({'natix.dataset.fingerprint': fingerprint});
          await rememberRun(path.join(cfg.out, cfg.runName), tracked); // so --resume continues this MLflow run
        },
        onEpoch: async (r) => {
          const {epoch, ...values} = r;
          await tracked?.logMetrics(values, epoch!);
          const exits = cfg.exitThresholds.map((t) => `exit@${t} ${fmt(r[`val_exit_coverage_${t}`], 3)}/${fmt(r[`val_exit_accuracy_${t}`], 3)}`).join('  ');
          host.log(
            `epoch ${String(r.epoch).padStart(3)}/${cfg.epochs}  loss ${fmt(r.loss)}  mcc ${fmt(r.mcc)}  val_loss ${fmt(r.val_loss)}  val_acc ${fmt(r.val_accuracy)}  val_mcc ${fmt(r.val_mcc)}  gap ${fmt(r.gap_mcc, 3)}  ece ${fmt(r.val_ece, 3)}  auc ${fmt(r.val_auc, 3)}  ${exits}  lr ${r.lr!.toExponential(2)}  ${r.seconds!.toFixed(2)} s`,
          );
        },
      },
      settings,
    );
  } catch (error) {
    await tracked?.end('FAILED');
    throw error;
  } finally {
    for (const bar of Object.values(bars)) bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (tracked) {
    for (const file of ['history.csv', 'curves.svg', 'config.json', 'calibration.json', 'run.json']) {
      if (existsSync(path.join(result.runDir, file))) await tracked.logArtifacts(path.join(result.runDir, file));
    }
    if (!result.interrupted && result.bestCheckpoint) {
      const {exportHeadRun} = await import('../export/export-head.js');
      const out = path.join(result.runDir, 'export');
      await exportHeadRun(tf, result.bestCheckpoint, {out, version: '1.0.0', modelName: cfg.runName, verify: true, tolerance: 1e-4});
      await tracked.logArtifacts(out, 'model');
      if (flags.register) await tracked.registerModel(flags.register, 'model/export', flags.alias);
    }
    await tracked.end(result.interrupted ? 'KILLED' : 'FINISHED');
    host.info(describeRun(tracked));
  }
  if (result.interrupted) {
    host.warn(`Interrupted${result.lastCheckpoint ? `: checkpoint ${path.basename(result.lastCheckpoint)} written` : ' during feature extraction (complete shards are kept)'}. Resume with: natix train --config ${flags.config} --run-name ${cfg.runName} --resume`);
    host.failCheck();
  } else {
    const t = result.timings;
    host.log(`Finished ${cfg.runName}: best ${result.state.best.metric} ${fmt(result.state.best.value ?? undefined)} at epoch ${result.state.best.epoch ?? '-'}; run folder ${result.runDir}`);
    host.log(`Time: hashing ${(t.hashMs / 1000).toFixed(1)} s, feature extraction ${(t.extractMs / 1000).toFixed(1)} s, training ${(t.trainMs / 1000).toFixed(1)} s, total ${(t.wallMs / 1000).toFixed(1)} s`);
    host.log(`Export it: natix export ${result.runDir}`);
  }
  const {state, ...rest} = result;
  return {...rest, backend, epochs: state.epoch, best: state.best, ...(tracked ? {trackingRunId: tracked.info.runId} : {})};
}

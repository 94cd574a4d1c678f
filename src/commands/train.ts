import path from 'node:path';
import {Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {LIMITS} from '../lib/cli/numeric-flags.js';
import {trainConfigSchema, type TrainConfig} from '../lib/config/schemas/train.js';
import {openDataset, type FormatChoice} from '../lib/data/open.js';
import {ExitCode, NatixError} from '../lib/errors.js';
import {loadTfjs, type TfjsBackendChoice} from '../lib/runtime/tfjs.js';
import {existsSync} from 'node:fs';
import type {Progress} from '../lib/cli/ui.js';
import type {Dataset} from '../lib/data/sample.js';
import {exportCheckpoint} from '../lib/export/export-checkpoint.js';
import type {Tf} from '../lib/runtime/tfjs.js';
import {describeRun, rememberRun, startCommandRun} from '../lib/tracking/commands.js';
import {flattenParams, type TrackedRun} from '../lib/tracking/types.js';
import type {HeadCommandHost} from '../lib/train/head-command.js';
import {readRunConfig, resolveTrainConfig, train, type ResolvedTrainConfig, type TrainResult} from '../lib/train/trainer.js';

export default class Train extends NatixCommand<typeof Train> {
  static summary = 'Train a roadwork classifier with crash-safe checkpoints that can be resumed.';
  static description = `Trains a model from the built-in zoo (tiny-cnn, small-cnn, with a width multiplier) or fine-tunes one (model.init) on any
dataset natix reads. Every epoch writes checkpoints/<run>/epoch-NNNN/ (weights, optimizer state, trainer state,
manifest.json with SHA-256) atomically, updates last.json and best.json (by validation MCC unless best-metric says
otherwise), history.csv and curves.svg. Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint
and exits 1 with the command to resume. --resume continues from the newest checkpoint whose checksums verify;
--epochs may change on resume. The backend is the best one present: tfjs-node-gpu, tfjs-node, then wasm.`;

  static examples = [
    '<%= config.bin %> train --config train.yaml',
    '<%= config.bin %> train --config train.yaml --epochs 30 --run-name fast-64',
    '<%= config.bin %> train --config train.yaml --run-name fast-64 --resume --epochs 40',
  ];

  static configSchema = trainConfigSchema;

  static flags = {
    'run-name': Flags.string({description: 'Run folder name under --out (default: config run-name, else architecture + time).'}),
    out: Flags.string({description: 'Checkpoints root.', default: 'checkpoints'}),
    epochs: Flags.integer({description: 'Epoch budget (may be changed on --resume).', min: 1, max: 100_000}),
    'batch-size': Flags.integer({description: 'Batch size.', min: 1, max: 65_536}),
    lr: Flags.string({description: 'Learning rate.'}),
    seed: Flags.integer({description: 'Seed: weights, data order and augmentation.', min: 0, max: LIMITS.seed}),
    backend: Flags.option({description: 'Training backend.', options: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const, default: 'auto'})(),
    'keep-last': Flags.integer({description: 'Keep this many epoch checkpoints (best is always kept).', min: 1, max: 100_000}),
    resume: Flags.boolean({description: 'Continue the run named by --run-name / run-name from its newest valid checkpoint.', default: false}),
    tracking: Flags.boolean({description: 'Log the run to MLflow (default: sqlite:///mlflow.db in the working folder).', default: true, allowNo: true, helpGroup: 'TRACKING'}),
    'tracking-uri': Flags.string({description: 'MLflow store: sqlite:///mlflow.db (default), a folder / file: URI (mlruns file store) or an http(s) server; default MLFLOW_TRACKING_URI.', helpGroup: 'TRACKING'}),
    experiment: Flags.string({description: 'MLflow experiment (default MLFLOW_EXPERIMENT_NAME, else natix-train).', helpGroup: 'TRACKING'}),
    register: Flags.string({description: 'Export the best checkpoint and register it as a new version of this MLflow model.', helpGroup: 'TRACKING'}),
    alias: Flags.string({description: 'Alias for the registered version (e.g. champion).', helpGroup: 'TRACKING', dependsOn: ['register']}),
    inspect: Flags.boolean({description: 'With model.from: print the backbone (inputs, outputs, feature tensor and size, pooling, preprocessing) and exit.', default: false}),
    device: Flags.option({description: 'With model.from: onnxruntime device for the frozen backbone.', options: ['auto', 'cpu', 'cuda'] as const, default: 'auto'})(),
    threads: Flags.integer({description: 'With model.from: onnxruntime intra-op threads (0 = its default).', default: 0, min: 0, max: LIMITS.concurrency}),
  };

  private stopRequested: NodeJS.Signals | undefined;

  /** What the head-training path (src/lib/train/head-command.ts) needs of this command. */
  get host(): HeadCommandHost {
    return {
      flags: this.flags,
      json: this.jsonEnabled(),
      progress: (name, total) => this.ui.progress(name, total),
      log: (m) => this.log(m),
      info: (m) => this.info(m),
      warn: (m) => this.warn(m),
      failCheck: () => this.failCheck(),
    };
  }

  async run(): Promise<Omit<TrainResult, 'state'> & {backend: string; epochs: number; best: TrainResult['state']['best']; trackingRunId?: string}> {
    const {flags} = this;
    if (!flags.config) throw new NatixError('natix train needs --config FILE (see docs/train.md)', {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['Write a train.yaml with at least dataset.path.']});
    const fileConfig = this.fileConfig as unknown as TrainConfig;
    const lr = flags.lr === undefined ? undefined : Number(flags.lr);
    if (lr !== undefined && !(lr > 0 && lr <= 10)) throw new NatixError(`--lr must be a number in (0, 10], got ${flags.lr}`, {code: 'USAGE', exitCode: ExitCode.Usage});
    // Paths in the config file (out, dataset.path, model.init) are relative to the file; --out to the cwd.
    const root = path.dirname(path.resolve(flags.config));
    if (fileConfig.model?.from) return (await import('../lib/train/head-command.js')).runHeadTraining(this.host, fileConfig, root, lr) as never;
    let cfg = resolveTrainConfig(fileConfig, {epochs: flags.epochs, batchSize: flags['batch-size'], lr, seed: flags.seed, keepLast: flags['keep-last'], runName: flags['run-name'], out: flags.out === 'checkpoints' || flags.out === fileConfig.out ? undefined : path.resolve(flags.out)}, root);
    if (flags.resume) {
      const previous = await readRunConfig(path.join(cfg.out, cfg.runName));
      if (!previous) throw new NatixError(`No run "${cfg.runName}" in ${cfg.out} to resume`, {code: 'NO_CHECKPOINT', exitCode: ExitCode.Usage, actions: ['Pass the run name with --run-name.']});
      // The run keeps its own settings; only the epoch budget may change on resume.
      cfg = {...previous, epochs: flags.epochs ?? fileConfig.epochs ?? previous.epochs};
    }
    const {tf, backend, reason} = await loadTfjs(flags.backend as TfjsBackendChoice);
    this.info(`Backend: ${backend} (${reason})`);
    const dataset = await openDataset(cfg.dataset.path, cfg.dataset.format as FormatChoice);
    const onSignal = (signal: NodeJS.Signals): void => {
      if (this.stopRequested) process.exit(ExitCode.CheckFailed); // a second signal: stop now
      this.stopRequested = signal;
      process.stderr.write(`\n${signal}: finishing the current step and writing a checkpoint (press again to abort)...\n`);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const tracked = flags.tracking
      ? await startCommandRun({trackingUri: flags['tracking-uri'], experiment: flags.experiment, cwd: process.cwd(), env: process.env, warn: (m) => this.warn(m)}, 'natix-train', cfg.runName, {
          'natix.command': 'train',
          'natix.backend': backend,
          ...(flags.resume ? {'natix.resumed': 'true'} : {}),
        }, {resumeFrom: flags.resume ? path.join(cfg.out, cfg.runName) : undefined})
      : undefined;
    if (tracked) await tracked.logParams(flattenParams(cfg));
    const progress = this.ui.progress('train', 1);
    let result: TrainResult;
    try {
      result = await this.trainWithTracking(tf, backend, dataset, cfg, progress, tracked);
    } catch (error) {
      await tracked?.end('FAILED');
      throw error;
    }
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (tracked) await this.finishTracking(tracked, result, cfg.runName, tf);
    if (result.interrupted) {
      this.warn(`Interrupted: checkpoint ${path.basename(result.lastCheckpoint)} written. Resume with: natix train --config ${flags.config} --run-name ${cfg.runName} --resume`);
      this.failCheck();
    } else {
      this.log(`Finished ${cfg.runName}: best ${result.state.best.metric} ${result.state.best.value?.toFixed(4) ?? 'n/a'} at epoch ${result.state.best.epoch ?? '-'}; run folder ${result.runDir}`);
      this.log(`Export it: natix export ${result.runDir}`);
    }
    return {runDir: result.runDir, interrupted: result.interrupted, lastCheckpoint: result.lastCheckpoint, bestCheckpoint: result.bestCheckpoint, history: result.history, skippedImages: result.skippedImages, backend, epochs: result.state.epoch, best: result.state.best, ...(tracked ? {trackingRunId: tracked.info.runId} : {})};
  }

  private trainWithTracking(tf: Tf, backend: string, dataset: Dataset, cfg: ResolvedTrainConfig, progress: Progress, tracked: TrackedRun | undefined): Promise<TrainResult> {
    const {flags} = this;
    return train(tf, backend, dataset, cfg, flags.resume, {
      info: (m) => this.info(m),
      warn: (m) => this.warn(m),
      shouldStop: () => this.stopRequested !== undefined,
      onProgress: (phase, done, total) => {
        if (phase === 'train') {
          progress.setTotal(total);
          progress.increment(0);
        }
        void done;
      },
      onData: async (fingerprint) => {
        if (!tracked) return;
        await tracked.setTags({'natix.dataset.fingerprint': fingerprint});
        await rememberRun(path.join(cfg.out, cfg.runName), tracked); // so --resume continues this MLflow run
      },
      onEpoch: async (r) => {
        const {epoch, ...values} = r;
        await tracked?.logMetrics(values, epoch!);
        this.log(
          `epoch ${String(r.epoch).padStart(3)}/${cfg.epochs}  loss ${r.loss!.toFixed(4)}  acc ${r.accuracy!.toFixed(4)}  val_loss ${r.val_loss!.toFixed(4)}  val_acc ${r.val_accuracy!.toFixed(4)}  val_mcc ${r.val_mcc!.toFixed(4)}  lr ${r.lr!.toExponential(2)}  ${r.seconds!.toFixed(1)} s`,
        );
      },
    });
  }

  /** Artifacts at the end (history, curves, config, and the exported best model with --register), then status. */
  private async finishTracking(tracked: TrackedRun, result: TrainResult, runName: string, tf: Tf): Promise<void> {
    for (const file of ['history.csv', 'curves.svg', 'config.json']) {
      if (existsSync(path.join(result.runDir, file))) await tracked.logArtifacts(path.join(result.runDir, file));
    }
    if (!result.interrupted && result.bestCheckpoint) {
      // The exported best model is part of the tracked run (and what --register registers).
      const out = path.join(result.runDir, 'export');
      await exportCheckpoint(tf, result.bestCheckpoint, {out, version: '1.0.0', modelName: runName, verify: true, tolerance: 1e-4});
      await tracked.logArtifacts(out, 'model');
      if (this.flags.register) {
        const registered = await tracked.registerModel(this.flags.register, 'model/export', this.flags.alias);
        if (registered) this.info(`Registered ${this.flags.register} version ${registered.version}${this.flags.alias ? ` (alias ${this.flags.alias})` : ''}`);
      }
    }
    await tracked.end(result.interrupted ? 'KILLED' : 'FINISHED');
    this.info(describeRun(tracked));
  }
}

import {resolveTrainScope} from '../lib/train/train-scope.js';
import path from 'node:path';
import {Flags} from '@oclif/core';
import {NatixCommand} from '../lib/cli/base-command.js';
import {LIMITS, trackingTimeoutFlag} from '../lib/cli/numeric-flags.js';
import {RUN_NAME_MAX_LENGTH, RUN_NAME_PATTERN, trainConfigSchema, type TrainConfig} from '../lib/config/schemas/train.js';
import {openDataset, type FormatChoice} from '../lib/data/open.js';
import {ExitCode, NatixError} from '../lib/errors.js';
import {loadTfjs, type TfjsBackendChoice} from '../lib/runtime/tfjs.js';
import {existsSync} from 'node:fs';
import {shellQuote} from '../lib/cli/shell.js';
import {epochSummary, TrainDisplay} from '../lib/cli/train-progress.js';
import type {Dataset} from '../lib/data/sample.js';
import {exportCheckpoint} from '../lib/export/export-checkpoint.js';
import type {Tf} from '../lib/runtime/tfjs.js';
import {describeRun, rememberRun, startCommandRun} from '../lib/tracking/commands.js';
import {flattenParams, type TrackedRun} from '../lib/tracking/types.js';
import {listCheckpoints} from '../lib/train/checkpoint.js';
import {StopController, type StopSignal} from '../lib/train/loop-control.js';
import type {HeadCommandHost} from '../lib/train/head-command.js';
import {readRunConfig, resolveTrainConfig, train, type ResolvedTrainConfig, type TrainResult} from '../lib/train/trainer.js';
import {assertOutsideDataset} from '../lib/data/safe-path.js';

export default class Train extends NatixCommand<typeof Train> {
  static summary = 'Train a roadwork classifier with crash-safe checkpoints that can be resumed.';
  static description = `Trains a model from the built-in zoo (tiny-cnn, small-cnn, with a width multiplier) or fine-tunes one (model.init) on any
dataset natix reads. Every epoch writes checkpoints/<run>/epoch-NNNN/ (weights, optimizer state, trainer state,
manifest.json with SHA-256) atomically, updates last.json and best.json (by validation MCC unless best-metric says
otherwise), history.csv and curves.svg. Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint
(epoch-NNNN-step-NNNNNN mid-epoch) and exits 1 with the command to resume; a second Ctrl-C aborts at once.
--resume continues from the newest checkpoint whose checksums verify, in the run folder --out/--run-name points at;
--epochs may change on resume. A training split with one class is refused unless --allow-one-class. The backend is the best one present: tfjs-node-gpu, tfjs-node, then wasm.`;

  static examples = [
    '<%= config.bin %> train --config train.yaml',
    '<%= config.bin %> train --config train.yaml --epochs 30 --run-name fast-64',
    '<%= config.bin %> train --config train.yaml --run-name fast-64 --resume --epochs 40',
    '<%= config.bin %> train --config train.yaml --out /data/runs --run-name fast-64 --resume',
  ];

  static configSchema = trainConfigSchema;

  static flags = {
    'run-name': Flags.string({
      description: `Run folder name under --out (default: config run-name, else architecture + time): letters, digits, . _ -, at most ${RUN_NAME_MAX_LENGTH} characters.`,
      parse: async (value) => checkRunName(value),
    }),
    out: Flags.string({description: 'Checkpoints root.', default: 'checkpoints'}),
    epochs: Flags.integer({description: 'Epoch budget (may be changed on --resume).', min: 1, max: 100_000}),
    'batch-size': Flags.integer({description: 'Batch size.', min: 1, max: 65_536}),
    lr: Flags.string({description: 'Learning rate.'}),
    seed: Flags.integer({description: 'Seed: weights, data order and augmentation.', min: 0, max: LIMITS.seed}),
    backend: Flags.option({description: 'Training backend.', options: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const, default: 'auto'})(),
    'keep-last': Flags.integer({description: 'Keep this many epoch checkpoints (best is always kept).', min: 1, max: 100_000}),
    resume: Flags.boolean({description: 'Continue the run in --out/--run-name (where it is now, even if it was moved) from its newest valid checkpoint.', default: false}),
    'allow-one-class': Flags.boolean({description: 'Train even when the training split has one class only (refused otherwise).', default: false}),
    tracking: Flags.boolean({description: 'Log the run to MLflow (default: sqlite:///mlflow.db in the working folder).', default: true, allowNo: true, helpGroup: 'TRACKING'}),
    'tracking-uri': Flags.string({description: 'MLflow store: sqlite:///mlflow.db (default), a folder / file: URI (mlruns file store) or an http(s) server; default MLFLOW_TRACKING_URI.', helpGroup: 'TRACKING'}),
    'tracking-timeout': trackingTimeoutFlag(),
    experiment: Flags.string({description: 'MLflow experiment (default MLFLOW_EXPERIMENT_NAME, else natix-train).', helpGroup: 'TRACKING'}),
    register: Flags.string({description: 'Export the best checkpoint and register it as a new version of this MLflow model.', helpGroup: 'TRACKING'}),
    alias: Flags.string({description: 'Alias for the registered version (e.g. champion).', helpGroup: 'TRACKING', dependsOn: ['register']}),
    inspect: Flags.boolean({description: 'With model.from: print the backbone (inputs, outputs, feature tensor and size, pooling, preprocessing) and exit.', default: false}),
    device: Flags.option({description: 'With model.from: onnxruntime device for the frozen backbone.', options: ['auto', 'cpu', 'cuda'] as const, default: 'auto'})(),
    threads: Flags.integer({description: 'With model.from: onnxruntime intra-op threads (0 = its default).', default: 0, min: 0, max: LIMITS.concurrency}),
    'gradient-threads': Flags.integer({description: 'Fine-tuning on wasm / cpu: threads sharing out each batch\'s gradients (default: config gradient-threads, else one per core up to 4). Never changes a result; may differ on --resume.', min: 1, max: 64}),
  };

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

  async run(): Promise<Omit<TrainResult, 'state'> & {backend: string; epochs: number; best: TrainResult['state']['best']; trackingRunId?: string; resumeCommand: string}> {
    const {flags} = this;
    if (!flags.config) throw new NatixError('natix train needs --config FILE (see docs/train.md)', {code: 'USAGE', exitCode: ExitCode.Usage, actions: ['Write a train.yaml with at least dataset.path.']});
    if ((this.fileConfig as unknown as TrainConfig).model?.from) {
      const lr = flags.lr === undefined ? undefined : Number(flags.lr);
      if (lr !== undefined && !(lr > 0 && lr <= 10)) throw new NatixError(`--lr must be a number in (0, 10], got ${flags.lr}`, {code: 'USAGE', exitCode: ExitCode.Usage});
      return (await import('../lib/train/head-command.js')).runHeadTraining(this.host, this.fileConfig as unknown as TrainConfig, path.dirname(path.resolve(flags.config)), lr) as never;
    }
    let display: TrainDisplay | undefined;
    let resumeCommand = '';
    // Listen before any slow work: a Ctrl-C while the backend loads or images decode stops cleanly too.
    const stop = new StopController({
      onFirst: (signal) => this.ui.print('stderr', `${signal}: finishing the current step and writing a checkpoint (press Ctrl-C again to abort at once)...`),
      onSecond: (signal) => {
        display?.stop();
        process.stderr.write(`${signal} again: aborting now. Checkpoints already written are intact${resumeCommand ? `; resume with: ${resumeCommand}` : ''}\n`);
        process.exit(ExitCode.CheckFailed);
      },
    }).install();
    try {
      const fileConfig = this.fileConfig as unknown as TrainConfig;
      resolveTrainScope(fileConfig, 1); // exit 2 for model.train / train-from / backbone-lr without model.from
      const lr = flags.lr === undefined ? undefined : Number(flags.lr);
      if (lr !== undefined && !(lr > 0 && lr <= 10)) throw new NatixError(`--lr must be a number in (0, 10], got ${flags.lr}`, {code: 'USAGE', exitCode: ExitCode.Usage});
      // Paths in the config file (out, dataset.path, model.init) are relative to the file; --out to the cwd.
      const root = path.dirname(path.resolve(flags.config));
      let cfg = resolveTrainConfig(fileConfig, {epochs: flags.epochs, batchSize: flags['batch-size'], lr, seed: flags.seed, keepLast: flags['keep-last'], runName: flags['run-name'], out: flags.out === 'checkpoints' || flags.out === fileConfig.out ? undefined : path.resolve(flags.out)}, root);
      if (flags.resume) cfg = await this.resumedConfig(cfg, fileConfig);
      assertOutsideDataset(path.join(cfg.out, cfg.runName), cfg.dataset.path, '--out');
      resumeCommand = resumeCommandFor(flags.config, cfg);
      // An existing run is refused before the backend and the data load (the trainer checks again).
      if (!flags.resume && (await listCheckpoints(path.join(cfg.out, cfg.runName))).length > 0) {
        throw new NatixError(`Run ${cfg.runName} already has checkpoints in ${path.join(cfg.out, cfg.runName)}`, {code: 'RUN_EXISTS', exitCode: ExitCode.Usage, actions: [`Resume it: ${resumeCommand}`, 'Or choose another --run-name.']});
      }
      const {tf, backend, reason} = await loadTfjs(flags.backend as TfjsBackendChoice);
      this.info(`Backend: ${backend} (${reason})`);
      const dataset = await openDataset(cfg.dataset.path, cfg.dataset.format as FormatChoice);
      const tracked = flags.tracking
        ? await startCommandRun({trackingUri: flags['tracking-uri'], experiment: flags.experiment, cwd: process.cwd(), env: process.env, warn: (m) => this.warn(m), timeoutMs: flags['tracking-timeout']}, 'natix-train', cfg.runName, {
            'natix.command': 'train',
            'natix.backend': backend,
            ...(flags.resume ? {'natix.resumed': 'true'} : {}),
          }, {resumeFrom: flags.resume ? path.join(cfg.out, cfg.runName) : undefined})
        : undefined;
      if (tracked) await tracked.logParams(flattenParams(cfg));
      display = new TrainDisplay(this.ui, {print: (line) => this.log(line)});
      let result: TrainResult;
      try {
        result = await this.trainWithTracking(tf, backend, dataset, cfg, display, stop, tracked, resumeCommand);
      } catch (error) {
        await tracked?.end('FAILED');
        throw error;
      } finally {
        display.stop();
      }
      if (tracked) await this.finishTracking(tracked, result, cfg.runName, tf);
      if (result.interrupted) {
        this.warn(
          result.lastCheckpoint
            ? `Interrupted: checkpoint ${path.basename(result.lastCheckpoint)} written (epoch ${result.state.epoch}, step ${result.state.stepInEpoch}). Resume with: ${resumeCommand}`
            : `Interrupted before the first checkpoint: nothing was trained yet. Start again with: ${resumeCommand}`,
        );
        this.failCheck();
      } else {
        this.log(`Finished ${cfg.runName}: best ${result.state.best.metric} ${result.state.best.value?.toFixed(4) ?? 'n/a'} at epoch ${result.state.best.epoch ?? '-'}; run folder ${result.runDir}`);
        this.log(`Export it: natix export ${shellQuote(result.runDir)}`);
      }
      return {runDir: result.runDir, interrupted: result.interrupted, lastCheckpoint: result.lastCheckpoint, bestCheckpoint: result.bestCheckpoint, history: result.history, skippedImages: result.skippedImages, backend, epochs: result.state.epoch, best: result.state.best, resumeCommand, ...(result.startedFresh ? {startedFresh: true} : {}), ...(tracked ? {trackingRunId: tracked.info.runId} : {})};
    } finally {
      stop.dispose();
    }
  }

  /**
   * The settings of a run being resumed: its own config.json, except where it lives (the folder the user pointed
   * at, so a copied or moved run never writes into its old place) and the epoch budget (which may change).
   */
  private async resumedConfig(cfg: ResolvedTrainConfig, fileConfig: TrainConfig): Promise<ResolvedTrainConfig> {
    const runDir = path.join(cfg.out, cfg.runName);
    const previous = await readRunConfig(runDir);
    if (!previous) {
      if (existsSync(runDir)) {
        this.info(`${runDir} has no config.json (the run was stopped as it started): starting it from the beginning with the current settings`);
        return cfg;
      }
      throw new NatixError(`No run "${cfg.runName}" in ${cfg.out} to resume`, {code: 'NO_CHECKPOINT', exitCode: ExitCode.Usage, actions: ['Pass the run name with --run-name and its checkpoints root with --out.']});
    }
    const moved = path.resolve(previous.out, previous.runName) !== path.resolve(runDir);
    if (moved) this.info(`The run was started in ${path.join(previous.out, previous.runName)}; resuming it where it is now: ${runDir}`);
    return {...previous, out: cfg.out, runName: cfg.runName, epochs: this.flags.epochs ?? fileConfig.epochs ?? previous.epochs};
  }

  private trainWithTracking(tf: Tf, backend: string, dataset: Dataset, cfg: ResolvedTrainConfig, display: TrainDisplay, stop: StopSignal, tracked: TrackedRun | undefined, resumeCommand: string): Promise<TrainResult> {
    const {flags} = this;
    return train(tf, backend, dataset, cfg, {resume: flags.resume, allowOneClass: flags['allow-one-class'], resumeCommand}, {
      info: (m) => this.info(m),
      warn: (m) => this.warn(m),
      shouldStop: () => stop.requested !== undefined,
      onProgress: (phase, done) => {
        if (phase === 'decode') display.decoding(done);
      },
      onEpochStart: (_epoch, steps) => display.epochStart(steps),
      onStep: (r) => display.step(r),
      onStatus: (text) => display.status(text),
      onData: async (fingerprint) => {
        if (!tracked) return;
        await tracked.setTags({'natix.dataset.fingerprint': fingerprint});
        await rememberRun(path.join(cfg.out, cfg.runName), tracked); // so --resume continues this MLflow run
      },
      onEpoch: async (r) => {
        const {epoch, ...values} = r;
        await tracked?.logMetrics(values, epoch!);
        display.epochEnd(epochSummary(r, cfg.epochs));
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

/** Throws a usage error unless `value` is a valid run folder name (the config key's pattern and length limit). */
export function checkRunName(value: string): string {
  if (value.length > RUN_NAME_MAX_LENGTH || !new RegExp(RUN_NAME_PATTERN).test(value)) {
    throw new NatixError(`--run-name must be one folder name of letters, digits, ".", "_" or "-" (not "." or ".."), at most ${RUN_NAME_MAX_LENGTH} characters; got "${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`, {
      code: 'USAGE',
      exitCode: ExitCode.Usage,
      actions: ['Choose another --run-name; --out chooses where runs are written.'],
    });
  }
  return value;
}

/** The command that resumes this run, exactly: the same config, where the run lives, and its epoch budget. */
export function resumeCommandFor(configFile: string, cfg: ResolvedTrainConfig): string {
  return ['natix', 'train', '--config', configFile, '--out', cfg.out, '--run-name', cfg.runName, '--resume', '--epochs', String(cfg.epochs)].map(shellQuote).join(' ');
}


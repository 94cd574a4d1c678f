/**
 * The training loop: data decoded once, seeded model, per-epoch validation through the shared metrics, history and
 * curves, a crash-safe checkpoint every epoch (and on interruption, mid-epoch, within a step of the signal: see
 * loop-control.ts), best/last pointers, pruning, early stopping, and resume from the newest checkpoint that
 * verifies. Randomness comes from (seed, epoch, index), so a run killed and resumed sees the same data order and
 * augmentations as one that never stopped.
 */
import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import type {TrainConfig} from '../config/schemas/train.js';
import type {Dataset} from '../data/sample.js';
import {ExitCode, NatixError} from '../errors.js';
import {ConfusionMatrix, classificationMetrics} from '../metrics/classification.js';
import type {Tf} from '../runtime/tfjs.js';
import {natixVersion} from '../runtime/environment.js';
import {SeededRandom} from '../util/random.js';
import {sha256, writeFileAtomic} from '../util/fs.js';
import {cleanStaleTemporaries, latestValidCheckpoint, listCheckpoints, pruneCheckpoints, readCheckpoint, readPointer, resolveCheckpointDir, writeCheckpoint, writePointer, type NamedArray, type TrainerState} from './checkpoint.js';
import type {Resampler} from '../image/preprocess.js';
import {epochLength, epochOrder, fillAugmented, loadSplits, validatorAugmented, type Augmentation, type ImageSet} from './data.js';
import {writeHistory, type EpochRecord} from './history.js';
import {yieldToEventLoop, type StepReport} from './loop-control.js';
import {buildModel, type Architecture} from './zoo.js';
import {readUserFile, UserFileError} from '../util/user-files.js';

/** The settings every run has, whatever it trains (flags override the config file). */
export interface RunSettings {
  runName: string;
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  keepLast: number;
  earlyStopping?: {patience: number; monitor: string; mode: 'max' | 'min'};
  bestMetric: string;
}

export type RunOverrides = Partial<Pick<RunSettings, 'epochs' | 'batchSize' | 'lr' | 'seed' | 'keepLast' | 'runName' | 'out'>>;

/** Run settings with defaults: `defaults` differ by trainer (the zoo trains longer on smaller batches). */
export function resolveRunSettings(c: TrainConfig, overrides: RunOverrides, root: string, defaults: {runName: string; epochs: number; batchSize: number}): RunSettings {
  const es = c['early-stopping'];
  return {
    runName: overrides.runName ?? c['run-name'] ?? `${defaults.runName}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`,
    out: path.resolve(root, overrides.out ?? c.out ?? 'checkpoints'),
    epochs: overrides.epochs ?? c.epochs ?? defaults.epochs,
    batchSize: overrides.batchSize ?? c['batch-size'] ?? defaults.batchSize,
    lr: overrides.lr ?? c.lr ?? 0.001,
    seed: overrides.seed ?? c.seed ?? 1,
    keepLast: overrides.keepLast ?? c['keep-last'] ?? 3,
    earlyStopping: es ? {patience: es.patience ?? 5, monitor: es.monitor ?? 'val_mcc', mode: es.mode ?? (es.monitor?.endsWith('loss') || es.monitor === 'val_ece' ? 'min' : 'max')} : undefined,
    bestMetric: c['best-metric'] ?? 'val_mcc',
  };
}

/** Every setting with its default filled in: what the run folder records as `config.json`. */
export interface ResolvedTrainConfig extends RunSettings {
  dataset: {path: string; format: string; trainSplit: string; valSplit: string; splitRatios: [number, number]; imageSize: number; resampler: Resampler};
  model: {architecture: Architecture; width: number; init?: string; freeze?: number | string[]};
  optimizer: {name: 'adam' | 'sgd'; momentum: number; weightDecay: number; schedule: 'constant' | 'step' | 'cosine'; warmupEpochs: number; stepSize: number; gamma: number};
  balance: 'none' | 'sampling';
  augmentation: Augmentation;
}

export function resolveTrainConfig(c: TrainConfig, overrides: RunOverrides, root: string): ResolvedTrainConfig {
  const arch = (c.model?.architecture ?? 'small-cnn') as Architecture;
  if (Array.isArray(c.dataset)) {
    throw new NatixError('A list of dataset sources needs model.from (head training on a backbone); the zoo trains on one dataset', {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage, actions: ['Give dataset as {path: ...}, or set model.from.']});
  }
  const dataset = c.dataset;
  return {
    ...resolveRunSettings(c, overrides, root, {runName: arch, epochs: 10, batchSize: 32}),
    dataset: {
      path: path.resolve(root, dataset.path),
      format: dataset.format ?? 'auto',
      trainSplit: dataset['train-split'] ?? 'train',
      valSplit: dataset['val-split'] ?? 'val',
      splitRatios: (dataset['split-ratios'] as [number, number] | undefined) ?? [0.8, 0.2],
      imageSize: dataset['image-size'] ?? 64,
      resampler: dataset.resampler ?? 'pillow',
    },
    model: {architecture: arch, width: c.model?.width ?? 1, init: c.model?.init ? path.resolve(root, c.model.init) : undefined, freeze: c.model?.freeze as number | string[] | undefined},
    optimizer: {
      // adamw is the head trainer's optimizer; the zoo's Adam has the weight decay as an L2 term.
      name: c.optimizer?.name === 'adamw' ? 'adam' : (c.optimizer?.name ?? 'adam'),
      momentum: c.optimizer?.momentum ?? 0.9,
      weightDecay: c.optimizer?.['weight-decay'] ?? 0,
      schedule: c.optimizer?.schedule ?? 'constant',
      warmupEpochs: c.optimizer?.['warmup-epochs'] ?? 0,
      stepSize: c.optimizer?.['step-size'] ?? 10,
      gamma: c.optimizer?.gamma ?? 0.1,
    },
    balance: c.balance ?? 'none',
    augmentation: {flip: c.augmentation?.flip ?? true, colorJitter: c.augmentation?.['color-jitter'] ?? 0.1, randomCrop: c.augmentation?.['random-crop'] ?? 1, rotation: c.augmentation?.rotation ?? 0, validator: c.augmentation?.validator ?? false},
  };
}

/** Learning rate of an epoch: linear warm-up, then constant, step decay or cosine to 0. */
export function learningRate(cfg: ResolvedTrainConfig, epoch: number): number {
  const o = cfg.optimizer;
  if (epoch < o.warmupEpochs) return (cfg.lr * (epoch + 1)) / (o.warmupEpochs + 1);
  const e = epoch - o.warmupEpochs;
  const total = Math.max(1, cfg.epochs - o.warmupEpochs);
  if (o.schedule === 'step') return cfg.lr * Math.pow(o.gamma, Math.floor(e / o.stepSize));
  if (o.schedule === 'cosine') return cfg.lr * 0.5 * (1 + Math.cos((Math.PI * e) / total));
  return cfg.lr;
}

export interface TrainHooks {
  info(message: string): void;
  warn(message: string): void;
  onEpoch?(record: EpochRecord, state: TrainerState): void | Promise<void>;
  /** Called once the data is loaded, with a fingerprint of the training and validation sets. */
  onData?(fingerprint: string): void | Promise<void>;
  onProgress?(phase: 'decode' | 'train', done: number, total: number): void;
  /** An epoch starts (0-based), with its number of steps and the first step to run (> 0 when resumed mid-epoch). */
  onEpochStart?(epoch: number, steps: number, firstStep: number): void;
  /** After every training step. */
  onStep?(report: StepReport): void;
  /** A phase without steps (validation, checkpoint) begins. */
  onStatus?(text: string): void;
  /** Polled after every step (and while decoding and validating): true when SIGINT/SIGTERM asked to stop. */
  shouldStop(): boolean;
}

export interface TrainOptions {
  /** Continue the run in cfg.out/cfg.runName from its newest checkpoint that verifies. */
  resume: boolean;
  /** Train even when the training split has a single class (otherwise refused: the model could only learn a constant). */
  allowOneClass?: boolean;
  /** The command that resumes this run, for messages. */
  resumeCommand?: string;
}

export interface TrainResult {
  runDir: string;
  state: TrainerState;
  interrupted: boolean;
  /** Empty when the run was stopped before its first checkpoint. */
  lastCheckpoint: string;
  bestCheckpoint?: string;
  history: EpochRecord[];
  skippedImages: number;
  /** --resume found no checkpoint (killed before the first one) and started the run from the beginning. */
  startedFresh?: boolean;
}

async function modelWeights(model: import('@tensorflow/tfjs').LayersModel): Promise<NamedArray[]> {
  return Promise.all(model.weights.map(async (w) => ({name: w.originalName, shape: w.shape as number[], data: (await w.read().data()) as Float32Array})));
}

async function optimizerWeights(optimizer: import('@tensorflow/tfjs').Optimizer): Promise<NamedArray[]> {
  const named = await optimizer.getWeights();
  return Promise.all(named.map(async (n) => ({name: n.name, shape: n.tensor.shape as number[], data: Float32Array.from((await n.tensor.data()) as ArrayLike<number>)})));
}

/**
 * Adam keeps beta^t as a running float32 product, but its setWeights() recomputes it with pow(), which rounds
 * differently: a resumed run would drift from an uninterrupted one. Replay the product exactly (float32 multiply
 * is exactly Math.fround of the double product) so resume is bit-identical on IEEE backends (wasm, cpu).
 */
function restoreAdamPowers(tf: Tf, optimizer: import('@tensorflow/tfjs').Optimizer): void {
  const adam = optimizer as unknown as {beta1?: number; beta2?: number; iterations_?: number; accBeta1?: import('@tensorflow/tfjs').Variable; accBeta2?: import('@tensorflow/tfjs').Variable};
  if (adam.accBeta1 === undefined || adam.accBeta2 === undefined || adam.beta1 === undefined || adam.beta2 === undefined) return;
  const replay = (beta: number): number => {
    const b = Math.fround(beta);
    let acc = b;
    for (let i = 0; i < (adam.iterations_ ?? 0); i++) acc = Math.fround(acc * b);
    return acc;
  };
  tf.tidy(() => {
    adam.accBeta1!.assign(tf.scalar(replay(adam.beta1!)));
    adam.accBeta2!.assign(tf.scalar(replay(adam.beta2!)));
  });
}

function setModelWeights(tf: Tf, model: import('@tensorflow/tfjs').LayersModel, arrays: NamedArray[], strict: boolean): void {
  const byName = new Map(arrays.map((a) => [a.name, a]));
  const values = model.weights.map((w) => {
    const a = byName.get(w.originalName);
    if (!a || a.shape.join('x') !== (w.shape as number[]).join('x')) {
      if (strict) throw new NatixError(`checkpoint has no weight "${w.originalName}" of shape [${w.shape.join(', ')}]`, {code: 'CHECKPOINT_MISMATCH', exitCode: ExitCode.Usage});
      return w.read().clone();
    }
    return tf.tensor(a.data, a.shape);
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** Validation loss and metrics; undefined when a stop was requested part-way (checked between batches). */
async function evaluate(tf: Tf, model: import('@tensorflow/tfjs').LayersModel, set: ImageSet, size: number, batch: number, shouldStop: () => boolean): Promise<{loss: number; metrics: ReturnType<typeof classificationMetrics>} | undefined> {
  const cm = new ConfusionMatrix(2);
  let loss = 0;
  for (let start = 0; start < set.images.length; start += batch) {
    await yieldToEventLoop();
    if (shouldStop()) return undefined;
    const n = Math.min(batch, set.images.length - start);
    const x = new Float32Array(n * size * size * 3);
    for (let i = 0; i < n; i++) fillAugmented(x, i * size * size * 3, set.images[start + i]!, size, undefined, undefined);
    const probs = tf.tidy(() => (model.predict(tf.tensor4d(x, [n, size, size, 3])) as import('@tensorflow/tfjs').Tensor).dataSync());
    const classes = probs.length / n;
    for (let i = 0; i < n; i++) {
      const label = set.labels[start + i]!;
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[i * classes + c]! > probs[i * classes + best]!) best = c;
      // Binary models decide like the subnet: roadwork iff p(roadwork) > 0.5.
      const predicted = classes === 2 ? (probs[i * 2 + 1]! > 0.5 ? 1 : 0) : best;
      cm.add(label, predicted);
      loss -= Math.log(Math.max(1e-7, probs[i * classes + label]!));
    }
  }
  return {loss: set.images.length ? loss / set.images.length : Number.NaN, metrics: classificationMetrics(cm)};
}

/** The checkpoint to resume from; undefined when the run has none yet (it was stopped before its first one). */
async function findResumePoint(runDir: string, hooks: TrainHooks): Promise<Awaited<ReturnType<typeof latestValidCheckpoint>>> {
  const cleaned = await cleanStaleTemporaries(runDir);
  if (cleaned.length > 0) hooks.info(`Removed ${cleaned.length} temporary file(s) left by an interrupted write: ${cleaned.join(', ')}`);
  const resumed = await latestValidCheckpoint(runDir, hooks.warn);
  if (resumed) {
    hooks.info(`Resuming from ${path.basename(resumed.dir)} (epoch ${resumed.state.epoch}, step ${resumed.state.stepInEpoch})`);
    return resumed;
  }
  if ((await listCheckpoints(runDir)).length > 0) {
    throw new NatixError(`Nothing to resume in ${runDir}: no checkpoint verifies`, {code: 'NO_CHECKPOINT', exitCode: ExitCode.Usage, actions: ['Start a new run under another --run-name.', `Or remove ${runDir} and start again.`]});
  }
  hooks.info(`No checkpoint in ${runDir} yet (the run was stopped before its first one): starting it from the beginning`);
  return undefined;
}

export async function train(tf: Tf, backend: string, dataset: Dataset, cfg: ResolvedTrainConfig, options: TrainOptions, hooks: TrainHooks): Promise<TrainResult> {
  const runDir = path.join(cfg.out, cfg.runName);
  await mkdir(runDir, {recursive: true});
  let resumed: Awaited<ReturnType<typeof latestValidCheckpoint>>;
  if (options.resume) {
    resumed = await findResumePoint(runDir, hooks);
  } else if ((await readPointer(runDir, 'last')) !== undefined || (await listCheckpoints(runDir)).length > 0) {
    throw new NatixError(`Run ${cfg.runName} already has checkpoints in ${runDir}`, {code: 'RUN_EXISTS', exitCode: ExitCode.Usage, actions: [options.resumeCommand ? `Resume it: ${options.resumeCommand}` : 'Resume it with --resume.', 'Or choose another --run-name.']});
  }
  await writeFileAtomic(path.join(runDir, 'config.json'), `${JSON.stringify({natix: natixVersion(), backend, ...cfg}, null, 2)}\n`);

  const size = cfg.dataset.imageSize;
  const stopped = (): TrainResult => ({runDir, state: resumed?.state ?? emptyState(cfg, backend), interrupted: true, lastCheckpoint: resumed?.dir ?? '', history: resumed?.state.history ?? [], skippedImages: 0, startedFresh: options.resume && !resumed});
  // Validator-style augmentation crops and rotates: keep the training images larger (shorter side 256).
  const data = await loadSplits(dataset, {
    size,
    trainSplit: cfg.dataset.trainSplit,
    valSplit: cfg.dataset.valSplit,
    splitRatios: cfg.dataset.splitRatios,
    seed: cfg.seed,
    sourceSide: cfg.augmentation.validator ? 256 : undefined,
    resampler: cfg.dataset.resampler ?? 'vips',
    onProgress: (d) => hooks.onProgress?.('decode', d, 0),
    shouldStop: hooks.shouldStop,
    checkSplits: (train) => checkClasses(train.map((s) => s.label!), cfg, options.allowOneClass === true, hooks),
  });
  if (hooks.shouldStop()) return stopped();
  for (const s of data.skipped.slice(0, 5)) hooks.warn(`skipped unreadable image ${s.path}: ${s.error}`);
  if (data.train.images.length === 0) throw new NatixError(`No training images in split "${cfg.dataset.trainSplit}" of ${cfg.dataset.path}`, {code: 'DATASET_EMPTY', exitCode: ExitCode.Usage});
  await hooks.onData?.(sha256(JSON.stringify([data.train.ids, data.train.labels, data.val.ids, data.val.labels, size])).slice(0, 16));
  hooks.info(`Data: ${data.train.images.length} train / ${data.val.images.length} val images at ${size}x${size}, decoded once and cached`);

  const classes = Math.max(2, ...data.train.labels.map((l) => l + 1));
  const model = buildModel(tf, {architecture: cfg.model.architecture, size, width: cfg.model.width, classes, seed: cfg.seed, weightDecay: cfg.optimizer.weightDecay});
  if (cfg.model.init) {
    const init = await readCheckpoint(await resolveCheckpointDir(cfg.model.init));
    setModelWeights(tf, model, init.weights, false);
    hooks.info(`Initialised from ${init.dir}`);
  }
  if (cfg.model.freeze !== undefined) {
    model.layers.forEach((layer, i) => {
      if (typeof cfg.model.freeze === 'number' ? i < cfg.model.freeze : cfg.model.freeze!.includes(layer.name)) layer.trainable = false;
    });
  }
  const optimizer = cfg.optimizer.name === 'sgd' ? tf.train.momentum(cfg.lr, cfg.optimizer.momentum) : tf.train.adam(cfg.lr);
  model.compile({optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy']});

  let state: TrainerState = resumed?.state ?? emptyState(cfg, backend);
  if (resumed) {
    setModelWeights(tf, model, resumed.weights, true);
    if (resumed.optimizer.length > 0) {
      await optimizer.setWeights(resumed.optimizer.map((a) => ({name: a.name, tensor: tf.tensor(a.data, a.shape)})));
      restoreAdamPowers(tf, optimizer);
    }
    state = {...state, epochsPlanned: cfg.epochs, backend};
  }

  const steps = Math.ceil(epochLength(data.train.labels, cfg.balance) / cfg.batchSize);
  let lastCheckpoint = resumed?.dir ?? '';
  let bestCheckpoint = await readPointer(runDir, 'best');
  let sinceBest = 0;
  const better = (a: number, b: number | null, metric: string): boolean => b === null || (metric.endsWith('loss') ? a < b : a > b);
  for (let epoch = state.epoch; epoch < cfg.epochs; epoch++) {
    const started = performance.now();
    const lr = learningRate(cfg, epoch);
    (optimizer as unknown as {learningRate: number}).learningRate = lr;
    const order = epochOrder(data.train.labels, cfg.seed, epoch, cfg.balance);
    // A resumed epoch continues its running sums, so its history record covers every step.
    const partial = epoch === state.epoch && state.stepInEpoch > 0 ? state.partial : undefined;
    let lossSum = partial?.lossSum ?? 0;
    let accSum = partial?.accSum ?? 0;
    let counted = partial?.counted ?? 0;
    const secondsBefore = partial?.seconds ?? 0;
    // A mid-epoch checkpoint (`epoch-NNNN-step-NNNNNN`): written when a stop is asked between steps or during validation.
    const interrupt = async (stepInEpoch: number): Promise<TrainResult> => {
      hooks.onStatus?.('writing checkpoint...');
      state = {...state, epoch, stepInEpoch, partial: {lossSum, accSum, counted, seconds: secondsBefore + (performance.now() - started) / 1000}};
      lastCheckpoint = await writeCheckpoint(runDir, await modelWeights(model), await optimizerWeights(optimizer), state);
      await writePointer(runDir, 'last', lastCheckpoint, {interrupted: true});
      return {runDir, state, interrupted: true, lastCheckpoint, bestCheckpoint, history: state.history, skippedImages: data.skipped.length, startedFresh: options.resume && !resumed};
    };
    // The next batch is assembled (decoding/augmenting, partly on libvips threads) while this one trains.
    const makeBatch = async (step: number): Promise<{x: Float32Array; y: Float32Array; n: number}> => {
      const idx = order.slice(step * cfg.batchSize, (step + 1) * cfg.batchSize);
      const x = new Float32Array(idx.length * size * size * 3);
      const y = new Float32Array(idx.length * classes);
      for (const [i, k] of idx.entries()) {
        const rng = new SeededRandom(`${cfg.seed}:aug:${epoch}:${k}:${step}`);
        const src = cfg.augmentation.validator && data.train.sources ? await validatorAugmented(data.train.sources[k]!, size, rng, cfg.dataset.resampler ?? 'vips') : data.train.images[k]!;
        fillAugmented(x, i * size * size * 3, src, size, cfg.augmentation, rng);
        y[i * classes + data.train.labels[k]!] = 1;
      }
      return {x, y, n: idx.length};
    };
    const first = epoch === state.epoch ? state.stepInEpoch : 0;
    hooks.onEpochStart?.(epoch, steps, first);
    let next = first < steps ? makeBatch(first) : undefined;
    for (let step = first; step < steps; step++) {
      const {x, y, n} = await next!;
      next = step + 1 < steps ? makeBatch(step + 1) : undefined;
      const xs = tf.tensor4d(x, [n, size, size, 3]);
      const ys = tf.tensor2d(y, [n, classes]);
      const [loss, acc] = (await model.trainOnBatch(xs, ys)) as number[];
      tf.dispose([xs, ys]);
      lossSum += loss! * n;
      accSum += acc! * n;
      counted += n;
      state.step++;
      hooks.onProgress?.('train', step + 1, steps);
      hooks.onStep?.({epoch, epochs: cfg.epochs, step: step + 1, steps, images: n, loss: lossSum / counted, lr});
      // TF.js steps resolve as microtasks: without this, a SIGINT handler would only run after the epoch.
      await yieldToEventLoop();
      if (hooks.shouldStop()) {
        await next?.catch(() => undefined);
        return interrupt(step + 1);
      }
    }
    hooks.onStatus?.(`epoch ${epoch + 1}/${cfg.epochs}: validating on ${data.val.images.length} images...`);
    const val = await evaluate(tf, model, data.val, size, cfg.batchSize * 2, hooks.shouldStop);
    if (!val) return interrupt(steps);
    const record: EpochRecord = {
      epoch: epoch + 1,
      lr,
      loss: counted ? lossSum / counted : Number.NaN,
      accuracy: counted ? accSum / counted : Number.NaN,
      val_loss: val.loss,
      val_accuracy: val.metrics.accuracy,
      val_mcc: val.metrics.mcc,
      val_precision: val.metrics.precision,
      val_recall: val.metrics.recall,
      seconds: secondsBefore + (performance.now() - started) / 1000,
    };
    const history = [...state.history, record];
    const value = record[cfg.bestMetric]!;
    const improved = Number.isFinite(value) && better(value, state.best.value, cfg.bestMetric);
    const {partial: _done, ...rest} = state;
    void _done;
    state = {...rest, epoch: epoch + 1, stepInEpoch: 0, history, best: improved ? {metric: cfg.bestMetric, value, epoch: epoch + 1} : state.best};
    lastCheckpoint = await writeCheckpoint(runDir, await modelWeights(model), await optimizerWeights(optimizer), state);
    await writePointer(runDir, 'last', lastCheckpoint, {epoch: epoch + 1});
    if (improved) {
      bestCheckpoint = lastCheckpoint;
      await writePointer(runDir, 'best', lastCheckpoint, {epoch: epoch + 1, metric: cfg.bestMetric, value});
    }
    await pruneCheckpoints(runDir, cfg.keepLast);
    await writeHistory(runDir, history, `${cfg.runName} (${cfg.model.architecture}, ${backend})`);
    await hooks.onEpoch?.(record, state);
    if (cfg.earlyStopping) {
      const monitored = record[cfg.earlyStopping.monitor]!;
      const ref = Math.max(...history.slice(0, -1).map((h) => (cfg.earlyStopping!.mode === 'max' ? h[cfg.earlyStopping!.monitor]! : -h[cfg.earlyStopping!.monitor]!)), -Infinity);
      sinceBest = (cfg.earlyStopping.mode === 'max' ? monitored : -monitored) > ref ? 0 : sinceBest + 1;
      if (sinceBest >= cfg.earlyStopping.patience) {
        state = {...state, stoppedEarly: true};
        hooks.info(`Early stopping: ${cfg.earlyStopping.monitor} has not improved for ${sinceBest} epochs`);
        break;
      }
    }
    if (hooks.shouldStop()) return {runDir, state, interrupted: true, lastCheckpoint, bestCheckpoint, history, skippedImages: data.skipped.length, startedFresh: options.resume && !resumed};
  }
  await writeFileAtomic(path.join(runDir, 'run.json'), `${JSON.stringify({status: 'finished', epochs: state.epoch, best: state.best, backend, natix: natixVersion()}, null, 2)}\n`);
  return {runDir, state, interrupted: false, lastCheckpoint, bestCheckpoint, history: state.history, skippedImages: data.skipped.length, startedFresh: options.resume && !resumed};
}

function emptyState(cfg: ResolvedTrainConfig, backend: string): TrainerState {
  return {
    epoch: 0,
    stepInEpoch: 0,
    step: 0,
    rng: {seed: cfg.seed, scheme: 'seed-epoch-index'},
    best: {metric: cfg.bestMetric, value: null, epoch: null},
    history: [],
    epochsPlanned: cfg.epochs,
    natixVersion: natixVersion(),
    backend,
  };
}

/** A training split with one class can only teach a constant: refused unless asked for (`--allow-one-class`). */
function checkClasses(labels: number[], cfg: ResolvedTrainConfig, allowed: boolean, hooks: TrainHooks): void {
  const present = [...new Set(labels)].sort();
  if (present.length >= 2 || labels.length === 0) return;
  const message = `The training split "${cfg.dataset.trainSplit}" of ${cfg.dataset.path} has one class only (label ${present[0]}, ${labels.length} images): the model can only learn to answer that class, and validation MCC will be 0`;
  if (allowed) {
    hooks.warn(message);
    return;
  }
  throw new NatixError(message, {code: 'ONE_CLASS', exitCode: ExitCode.Usage, actions: ['Add images of the other class (natix validate-data shows the class balance).', 'Or pass --allow-one-class to train anyway.']});
}

/** The resolved config a run was started with (for resume). */
export async function readRunConfig(runDir: string): Promise<ResolvedTrainConfig | undefined> {
  try {
    return JSON.parse(await readUserFile(path.join(runDir, 'config.json'), 'utf8')) as ResolvedTrainConfig;
  } catch (error) {
    // Missing or not JSON: no usable config. A FIFO, a folder or an unreadable file: say so (never waited on).
    if (error instanceof UserFileError && error.reason !== 'missing') throw error;
    return undefined;
  }
}

/**
 * `natix train` with `model.from`: a frozen backbone's features are extracted once into the run's feature cache,
 * then a head is trained on them. Per epoch: loss, accuracy and MCC for train and val, the train-val MCC gap, val
 * ECE, val AUC and exit coverage / accuracy at each exit threshold (overall and per source for val). Checkpoints
 * (checkpoint.ts: atomic, SHA-256 manifest, best/last, keep-last) hold only the head, its AdamW state and EMA, and
 * the backbone's sha256, verified on resume. Randomness is derived from (seed, epoch, step), so a run killed at any
 * point and resumed gives the same result as one that never stopped. After training: temperature scaling on the
 * best checkpoint's validation logits (calibration.json), used by the export.
 */
import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import type {TrainConfig} from '../config/schemas/train.js';
import {ExitCode, NatixError} from '../errors.js';
import {rocAuc} from '../metrics/auc.js';
import {ConfusionMatrix, classificationMetrics} from '../metrics/classification.js';
import {natixVersion} from '../runtime/environment.js';
import type {Tf} from '../runtime/tfjs.js';
import {sha256, writeFileAtomic} from '../util/fs.js';
import {SeededRandom} from '../util/random.js';
import {loadBackbone, type Backbone, type PoolChoice} from './backbone.js';
import {expectedCalibrationError, exitMetrics, fitTemperature, nll, softmaxRows} from './calibration.js';
import {checkpointName, latestValidCheckpoint, pruneCheckpoints, readCheckpoint, readPointer, writeCheckpoint, writePointer, type NamedArray, type TrainerState} from './checkpoint.js';
import {contentHash, extractFeatures, itemKey, type CacheItem, type ExtractionStats, type ViewSpec} from './feature-cache.js';
import {Head, headShapes, type HeadSpec, type OptimizerSpec} from './head.js';
import {writeHistory, type EpochRecord} from './history.js';
import {epochSampleOrder, loadSources, resolveSources, type ResolvedSource, type SourceCounts, type SourcedSample} from './sources.js';
import {learningRate, type ResolvedTrainConfig} from './trainer.js';
import {yieldToEventLoop} from './loop-control.js';
import {readUserFile} from '../util/user-files.js';

export interface ResolvedHeadConfig {
  mode: 'head';
  runName: string;
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  keepLast: number;
  sources: ResolvedSource[];
  model: {from: string; features: string; pool: PoolChoice; preprocessor?: string; sha256?: string};
  head: {type: 'linear' | 'mlp'; hidden: number; dropout: number};
  features: {views: number; batchSize: number; shardSize: number};
  optimizer: {name: 'adamw'; weightDecay: number; beta1: number; beta2: number; schedule: 'constant' | 'step' | 'cosine'; warmupEpochs: number; stepSize: number; gamma: number};
  classWeights: 'none' | 'auto' | number[];
  labelSmoothing: number;
  ema: number;
  maxGradNorm: number;
  exitThresholds: number[];
  earlyStopping?: {patience: number; monitor: string; mode: 'max' | 'min'};
  bestMetric: string;
  augmentation: {validator: boolean};
}

export function resolveHeadConfig(c: TrainConfig, overrides: Partial<{epochs: number; batchSize: number; lr: number; seed: number; keepLast: number; runName: string; out: string}>, root: string): ResolvedHeadConfig {
  const from = path.resolve(root, c.model!.from!);
  const es = c['early-stopping'];
  const exit = c['exit-threshold'];
  return {
    mode: 'head',
    runName: overrides.runName ?? c['run-name'] ?? `head-${path.basename(from).replace(/\.onnx$/, '')}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`,
    out: path.resolve(root, overrides.out ?? c.out ?? 'checkpoints'),
    epochs: overrides.epochs ?? c.epochs ?? 20,
    batchSize: overrides.batchSize ?? c['batch-size'] ?? 256,
    lr: overrides.lr ?? c.lr ?? 0.001,
    seed: overrides.seed ?? c.seed ?? 1,
    keepLast: overrides.keepLast ?? c['keep-last'] ?? 3,
    sources: resolveSources(c.dataset, root),
    model: {from, features: c.model?.features ?? 'auto', pool: c.model?.pool ?? 'auto', ...(c.model?.preprocessor ? {preprocessor: path.resolve(root, c.model.preprocessor)} : {})},
    head: {type: c.head?.type ?? 'linear', hidden: c.head?.hidden ?? 768, dropout: c.head?.dropout ?? (c.head?.type === 'mlp' ? 0.3 : 0)},
    features: {views: c.features?.views ?? 1, batchSize: c.features?.['batch-size'] ?? 32, shardSize: c.features?.['shard-size'] ?? 512},
    optimizer: {
      name: 'adamw',
      weightDecay: c.optimizer?.['weight-decay'] ?? 1e-4,
      beta1: c.optimizer?.beta1 ?? 0.9,
      beta2: c.optimizer?.beta2 ?? 0.999,
      schedule: c.optimizer?.schedule ?? 'cosine',
      warmupEpochs: c.optimizer?.['warmup-epochs'] ?? 0,
      stepSize: c.optimizer?.['step-size'] ?? 10,
      gamma: c.optimizer?.gamma ?? 0.1,
    },
    classWeights: (c['class-weights'] as ResolvedHeadConfig['classWeights'] | undefined) ?? 'none',
    labelSmoothing: c['label-smoothing'] ?? 0,
    ema: c.ema ?? 0,
    maxGradNorm: c['max-grad-norm'] ?? 0,
    exitThresholds: exit === undefined ? [0.9] : Array.isArray(exit) ? [...exit] : [exit],
    earlyStopping: es ? {patience: es.patience ?? 5, monitor: es.monitor ?? 'val_mcc', mode: es.mode ?? (es.monitor?.endsWith('loss') || es.monitor === 'val_ece' ? 'min' : 'max')} : undefined,
    bestMetric: c['best-metric'] ?? 'val_mcc',
    augmentation: {validator: c.augmentation?.validator ?? false},
  };
}

export interface HeadTrainHooks {
  info(message: string): void;
  warn(message: string): void;
  onEpoch?(record: EpochRecord, state: TrainerState): void | Promise<void>;
  onData?(fingerprint: string): void | Promise<void>;
  onProgress?(phase: 'hash' | 'extract' | 'train', done: number, total: number): void;
  shouldStop(): boolean;
}

export interface HeadTrainResult {
  runDir: string;
  state: TrainerState;
  interrupted: boolean;
  lastCheckpoint: string;
  bestCheckpoint?: string;
  history: EpochRecord[];
  skippedImages: number;
  counts: SourceCounts[];
  extraction: ExtractionStats;
  calibration?: Calibration;
  timings: {hashMs: number; extractMs: number; trainMs: number; wallMs: number};
}

export interface Calibration {
  checkpoint: string;
  temperature: number;
  eceBefore: number;
  eceAfter: number;
  nllBefore: number;
  nllAfter: number;
  exits: Array<{threshold: number; coverage: number; accuracy: number}>;
  perSource: Record<string, {n: number; mcc: number; accuracy: number}>;
}

export function classWeightsFor(choice: ResolvedHeadConfig['classWeights'], labels: number[], classes: number): number[] {
  if (choice === 'none') return Array.from({length: classes}, () => 1);
  if (Array.isArray(choice)) {
    if (choice.length !== classes) throw new NatixError(`class-weights has ${choice.length} entries for ${classes} classes`, {code: 'CONFIG_INVALID', exitCode: ExitCode.Usage});
    return choice;
  }
  const counts = Array.from({length: classes}, (_, c) => labels.filter((l) => l === c).length);
  return counts.map((n) => (n ? labels.length / (classes * n) : 0));
}

/** Validation metrics of logits (n x classes) against labels. */
export function evaluateLogits(logits: Float32Array, labels: number[], classes: number, thresholds: number[], sources?: {names: string[]; of: number[]}): EpochRecord {
  const probs = softmaxRows(logits, classes);
  const cm = new ConfusionMatrix(classes);
  const predictions = labels.map((_, i) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[i * classes + c]! > probs[i * classes + best]!) best = c;
    return best;
  });
  labels.forEach((l, i) => cm.add(l, predictions[i]!));
  const m = classificationMetrics(cm);
  const record: EpochRecord = {
    loss: nll(logits, labels, classes),
    accuracy: m.accuracy,
    mcc: m.mcc,
    precision: m.precision,
    recall: m.recall,
    ece: expectedCalibrationError(probs, labels, classes),
    auc: classes === 2 ? rocAuc(labels, Array.from({length: labels.length}, (_, i) => probs[i * 2 + 1]!)) : Number.NaN,
  };
  for (const t of thresholds) {
    const e = exitMetrics(probs, labels, classes, t);
    record[`exit_coverage_${t}`] = e.coverage;
    record[`exit_accuracy_${t}`] = e.accuracy;
  }
  if (sources && sources.names.length > 1) {
    sources.names.forEach((name, s) => {
      const idx = labels.map((_, i) => i).filter((i) => sources.of[i] === s);
      if (idx.length === 0) return;
      const c = new ConfusionMatrix(classes);
      for (const i of idx) c.add(labels[i]!, predictions[i]!);
      const ms = classificationMetrics(c);
      record[`mcc.${name}`] = ms.mcc;
      record[`accuracy.${name}`] = ms.accuracy;
    });
  }
  return record;
}

function prefixed(prefix: string, r: EpochRecord): EpochRecord {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [`${prefix}${k}`, v]));
}

export function historyColumns(cfg: ResolvedHeadConfig, sourceNames: string[]): string[] {
  return [
    'epoch',
    'lr',
    'loss',
    'accuracy',
    'mcc',
    'val_loss',
    'val_accuracy',
    'val_mcc',
    'gap_mcc',
    'val_ece',
    'val_auc',
    'val_precision',
    'val_recall',
    ...cfg.exitThresholds.flatMap((t) => [`val_exit_coverage_${t}`, `val_exit_accuracy_${t}`]),
    ...(sourceNames.length > 1 ? sourceNames.flatMap((n) => [`val_mcc.${n}`, `val_accuracy.${n}`]) : []),
    'seconds',
  ];
}

interface HeadState extends TrainerState {
  head: {backboneSha256: string; inputDim: number; classes: number; feature: string; pool: string};
}

function checkResumable(checkpoint: {weights: NamedArray[]; state: TrainerState}, spec: HeadSpec, sha: string): void {
  const state = checkpoint.state as HeadState;
  if (state.head && state.head.backboneSha256 !== sha) {
    throw new NatixError(`The backbone changed since this run started (sha256 ${sha.slice(0, 12)}... now, ${state.head.backboneSha256.slice(0, 12)}... in the checkpoint)`, {
      code: 'MODEL_CHANGED',
      exitCode: ExitCode.Usage,
      actions: ['Restore the original model file, or start a new run (another --run-name).'],
    });
  }
  for (const s of headShapes(spec)) {
    const w = checkpoint.weights.find((a) => a.name === s.name);
    if (!w || w.shape.join('x') !== s.shape.join('x')) {
      throw new NatixError(`The checkpoint's head ${s.name} is [${w?.shape.join(', ') ?? 'absent'}] but the backbone now gives ${spec.inputDim} features for ${spec.classes} classes ([${s.shape.join(', ')}])`, {
        code: 'HEAD_DIMENSION_MISMATCH',
        exitCode: ExitCode.Usage,
        actions: ['Resume with the model.features / model.pool the run started with, or start a new run.'],
        data: {checkpoint: w?.shape, expected: s.shape},
      });
    }
  }
}

/** Runs a head training; `tf` is the TF.js module with its backend ready. */
export async function trainHead(tf: Tf, backendName: string, cfg: ResolvedHeadConfig, resume: boolean, hooks: HeadTrainHooks, settings: {device: 'auto' | 'cpu' | 'cuda'; threads: number}): Promise<HeadTrainResult> {
  const wallStart = performance.now();
  const runDir = path.join(cfg.out, cfg.runName);
  await mkdir(runDir, {recursive: true});
  let resumed: Awaited<ReturnType<typeof latestValidCheckpoint>>;
  if (resume) {
    resumed = await latestValidCheckpoint(runDir, hooks.warn);
    if (resumed) hooks.info(`Resuming from ${path.basename(resumed.dir)} (epoch ${resumed.state.epoch}, step ${resumed.state.stepInEpoch})`);
    else hooks.info('Resuming: no head checkpoint yet, continuing the feature extraction');
  } else if ((await readPointer(runDir, 'last')) !== undefined) {
    throw new NatixError(`Run ${cfg.runName} already has checkpoints in ${runDir}`, {code: 'RUN_EXISTS', exitCode: ExitCode.Usage, actions: ['Resume it with --resume.', 'Or choose another --run-name.']});
  }
  const backbone: Backbone = await loadBackbone(cfg.model.from, {features: cfg.model.features, pool: cfg.model.pool, preprocessor: cfg.model.preprocessor, device: settings.device, threads: settings.threads, graphFile: path.join(runDir, 'backbone-features.onnx')});
  try {
    if (cfg.model.sha256 && cfg.model.sha256 !== backbone.info.sha256) {
      throw new NatixError(`The backbone ${backbone.info.onnxFile} changed since this run started (sha256 ${backbone.info.sha256.slice(0, 12)}... now, ${cfg.model.sha256.slice(0, 12)}... recorded)`, {
        code: 'MODEL_CHANGED',
        exitCode: ExitCode.Usage,
        actions: ['Restore the original model file, or start a new run (another --run-name).'],
      });
    }
    cfg = {...cfg, model: {...cfg.model, sha256: backbone.info.sha256}};
    await writeFileAtomic(path.join(runDir, 'config.json'), `${JSON.stringify({natix: natixVersion(), backend: backendName, ...cfg}, null, 2)}\n`);
    hooks.info(`Backbone: ${backbone.info.feature.how}, pool ${backbone.info.pool} -> ${backbone.info.dim} features; onnxruntime on ${backbone.device}${backbone.fallbackReason ? ` (${backbone.fallbackReason})` : ''}`);

    // Data: sources, content hashes, cache items (train x views, then val plain; shared keys computed once).
    const t0 = performance.now();
    const data = await loadSources(cfg.sources, cfg.seed);
    for (const c of data.counts) hooks.info(`Source ${c.name} (weight ${c.weight}): ${c.train} train [${c.trainByLabel.join('/')}], ${c.val} val [${c.valByLabel.join('/')}] by label`);
    if (data.train.length === 0) throw new NatixError('No labelled training images in the dataset sources', {code: 'DATASET_EMPTY', exitCode: ExitCode.Usage});
    const hashes = await hashAll([...data.train, ...data.val], (d, n) => hooks.onProgress?.('hash', d, n));
    const hashMs = performance.now() - t0;
    const viewSpec: ViewSpec = {views: cfg.features.views, validator: cfg.augmentation.validator, seed: cfg.seed};
    const items: CacheItem[] = [];
    const rowOf = new Map<string, number>();
    const addItem = (s: SourcedSample, hash: string, view: number): number => {
      const key = itemKey({hash, view}, viewSpec);
      let row = rowOf.get(key);
      if (row === undefined) {
        row = items.length;
        rowOf.set(key, row);
        items.push({hash, view, sample: s.sample});
      }
      return row;
    };
    const trainRows = data.train.map((s, i) => Array.from({length: cfg.features.views}, (_, v) => addItem(s, hashes[i]!, v)));
    const valRows = data.val.map((s, i) => addItem(s, hashes[data.train.length + i]!, 0));
    await hooks.onData?.(sha256(JSON.stringify([backbone.info.sha256, hashes, data.train.map((s) => s.label), data.val.map((s) => s.label)])).slice(0, 16));

    const t1 = performance.now();
    const {features, stats} = await extractFeatures(backbone, items, {
      cacheDir: path.join(runDir, 'features'),
      batchSize: cfg.features.batchSize,
      shardSize: cfg.features.shardSize,
      viewSpec,
      warn: hooks.warn,
      onProgress: (d, n) => hooks.onProgress?.('extract', d, n),
      shouldStop: hooks.shouldStop,
    });
    const extractMs = performance.now() - t1;
    hooks.info(`Features: ${stats.items} (${stats.cached} cached, ${stats.computed} computed) in ${(stats.wallMs / 1000).toFixed(1)} s; ${data.train.length} train x ${cfg.features.views} view(s), ${data.val.length} val`);
    const base = {runDir, counts: data.counts, extraction: stats, skippedImages: 0};
    const emptyState: TrainerState = {epoch: 0, stepInEpoch: 0, step: 0, rng: {seed: cfg.seed, scheme: 'seed-epoch-index'}, best: {metric: cfg.bestMetric, value: null, epoch: null}, history: [], epochsPlanned: cfg.epochs, natixVersion: natixVersion(), backend: backendName};
    if (stats.interrupted) {
      return {...base, state: resumed?.state ?? emptyState, interrupted: true, lastCheckpoint: resumed?.dir ?? '', history: resumed?.state.history ?? [], timings: {hashMs, extractMs, trainMs: 0, wallMs: performance.now() - wallStart}};
    }

    // The head.
    const dim = backbone.info.dim;
    const classes = Math.max(2, ...data.train.map((s) => s.label + 1), ...data.val.map((s) => s.label + 1));
    const trainLabels = data.train.map((s) => s.label);
    const spec: HeadSpec = {type: cfg.head.type, hidden: cfg.head.hidden, dropout: cfg.head.dropout, inputDim: dim, classes, seed: cfg.seed};
    const optimizer: OptimizerSpec = {weightDecay: cfg.optimizer.weightDecay, beta1: cfg.optimizer.beta1, beta2: cfg.optimizer.beta2, epsilon: 1e-8, maxGradNorm: cfg.maxGradNorm, ema: cfg.ema, labelSmoothing: cfg.labelSmoothing, classWeights: classWeightsFor(cfg.classWeights, trainLabels, classes)};
    if (resumed) checkResumable(resumed, spec, backbone.info.sha256);
    const head = new Head(tf, spec, optimizer, resumed?.weights);
    if (resumed) head.restoreOptimizer(resumed.optimizer);
    const headInfo = {backboneSha256: backbone.info.sha256, inputDim: dim, classes, feature: backbone.info.feature.name, pool: backbone.info.pool};
    let state: HeadState = {...(resumed?.state ?? emptyState), epochsPlanned: cfg.epochs, backend: backendName, head: headInfo};
    const valX = new Float32Array(valRows.length * dim);
    valRows.forEach((r, i) => valX.set(features.subarray(r * dim, (r + 1) * dim), i * dim));
    const valLabels = data.val.map((s) => s.label);
    const sourceNames = cfg.sources.map((s) => s.name);
    const valSources = {names: sourceNames, of: data.val.map((s) => s.source)};
    const columns = historyColumns(cfg, sourceNames);
    const weights = cfg.sources.map((s) => s.weight);
    const steps = Math.ceil(data.train.length / cfg.batchSize);
    const lrConfig = {lr: cfg.lr, epochs: cfg.epochs, optimizer: cfg.optimizer} as unknown as ResolvedTrainConfig;
    let lastCheckpoint = resumed?.dir ?? '';
    // The state is the truth: a kill between a checkpoint and its best.json leaves the pointer one epoch behind.
    let bestCheckpoint = state.best.epoch ? path.join(runDir, checkpointName(state.best.epoch, 0)) : await readPointer(runDir, 'best');
    if (resumed && state.best.epoch && bestCheckpoint && (await readPointer(runDir, 'best')) !== bestCheckpoint) {
      await writePointer(runDir, 'best', bestCheckpoint, {epoch: state.best.epoch, metric: state.best.metric, value: state.best.value});
    }
    let sinceBest = 0;
    const better = (a: number, b: number | null, metric: string): boolean => b === null || (metric.endsWith('loss') || metric === 'val_ece' ? a < b : a > b);
    const t2 = performance.now();
    let interrupted = false;
    for (let epoch = state.epoch; epoch < cfg.epochs; epoch++) {
      const started = performance.now();
      const lr = learningRate(lrConfig, epoch);
      const order = epochSampleOrder(data.train, weights, cfg.seed, epoch);
      const viewRng = new SeededRandom(`${cfg.seed}:views:${epoch}`);
      const views = order.map(() => (cfg.features.views > 1 ? viewRng.int(cfg.features.views) : 0));
      // Training metrics accumulate over the epoch; a resumed mid-epoch run keeps them in the state.
      const acc = (state as HeadState & {partial?: {lossSum: number; n: number; logits: number[]; labels: number[]}}).partial ?? {lossSum: 0, n: 0, logits: [] as number[], labels: [] as number[]};
      const first = epoch === state.epoch ? state.stepInEpoch : 0;
      for (let step = first; step < steps; step++) {
        const idx = order.slice(step * cfg.batchSize, (step + 1) * cfg.batchSize);
        const x = new Float32Array(idx.length * dim);
        const labels = idx.map((k) => data.train[k]!.label);
        idx.forEach((k, i) => {
          const row = trainRows[k]![views[step * cfg.batchSize + i]!]!;
          x.set(features.subarray(row * dim, (row + 1) * dim), i * dim);
        });
        const r = head.step(x, labels, lr, state.step + 1, `${cfg.seed}:dropout:${state.step}`);
        state.step++;
        acc.lossSum += r.loss * idx.length;
        acc.n += idx.length;
        for (const v of r.logits) acc.logits.push(v);
        acc.labels.push(...labels);
        hooks.onProgress?.('train', step + 1, steps);
        await yieldToEventLoop();
        if (hooks.shouldStop() && step + 1 < steps) {
          state = {...state, epoch, stepInEpoch: step + 1, partial: acc} as HeadState;
          lastCheckpoint = await writeCheckpoint(runDir, head.checkpointWeights(), head.optimizerState(), state);
          await writePointer(runDir, 'last', lastCheckpoint, {interrupted: true});
          interrupted = true;
          break;
        }
      }
      if (interrupted) break;
      const trainEval = evaluateLogits(Float32Array.from(acc.logits), acc.labels, classes, []);
      const val = evaluateLogits(head.predict(valX, valLabels.length), valLabels, classes, cfg.exitThresholds, valSources);
      const record: EpochRecord = {
        epoch: epoch + 1,
        lr,
        loss: acc.n ? acc.lossSum / acc.n : Number.NaN,
        accuracy: trainEval.accuracy!,
        mcc: trainEval.mcc!,
        ...prefixed('val_', val),
        gap_mcc: trainEval.mcc! - val.mcc!,
        seconds: (performance.now() - started) / 1000,
      };
      const history = [...state.history, record];
      const value = record[cfg.bestMetric]!;
      const improved = Number.isFinite(value) && better(value, state.best.value, cfg.bestMetric);
      const {partial: _drop, ...rest} = state as HeadState & {partial?: unknown};
      void _drop;
      state = {...rest, epoch: epoch + 1, stepInEpoch: 0, history, best: improved ? {metric: cfg.bestMetric, value, epoch: epoch + 1} : state.best};
      lastCheckpoint = await writeCheckpoint(runDir, head.checkpointWeights(), head.optimizerState(), state);
      await writePointer(runDir, 'last', lastCheckpoint, {epoch: epoch + 1});
      if (improved) {
        bestCheckpoint = lastCheckpoint;
        await writePointer(runDir, 'best', lastCheckpoint, {epoch: epoch + 1, metric: cfg.bestMetric, value});
      }
      await pruneCheckpoints(runDir, cfg.keepLast);
      await writeHistory(runDir, history, `${cfg.runName} (${cfg.head.type} head on ${path.basename(cfg.model.from)}, ${backendName})`, columns);
      await hooks.onEpoch?.(record, state);
      if (cfg.earlyStopping) {
        const es = cfg.earlyStopping;
        const monitored = record[es.monitor]!;
        const ref = Math.max(...history.slice(0, -1).map((h) => (es.mode === 'max' ? h[es.monitor]! : -h[es.monitor]!)), -Infinity);
        sinceBest = (es.mode === 'max' ? monitored : -monitored) > ref ? 0 : sinceBest + 1;
        if (sinceBest >= es.patience) {
          state = {...state, stoppedEarly: true};
          hooks.info(`Early stopping: ${es.monitor} has not improved for ${sinceBest} epochs`);
          break;
        }
      }
      if (hooks.shouldStop() && epoch + 1 < cfg.epochs) {
        interrupted = true;
        break;
      }
    }
    const trainMs = performance.now() - t2;
    head.dispose();
    const timings = (): HeadTrainResult['timings'] => ({hashMs, extractMs, trainMs, wallMs: performance.now() - wallStart});
    if (interrupted) return {...base, state, interrupted: true, lastCheckpoint, bestCheckpoint, history: state.history, timings: timings()};

    // Temperature scaling on the best checkpoint's validation logits.
    let calibration: Calibration | undefined;
    const bestDir = bestCheckpoint ?? lastCheckpoint;
    if (bestDir && valLabels.length > 0) {
      const best = await readCheckpoint(bestDir);
      const bestHead = new Head(tf, spec, optimizer, best.weights);
      const logits = bestHead.predict(valX, valLabels.length);
      bestHead.dispose();
      const temperature = fitTemperature(logits, valLabels, classes);
      const scaled = Float32Array.from(logits, (v) => v / temperature);
      const after = evaluateLogits(scaled, valLabels, classes, cfg.exitThresholds, valSources);
      calibration = {
        checkpoint: path.basename(bestDir),
        temperature,
        eceBefore: expectedCalibrationError(softmaxRows(logits, classes), valLabels, classes),
        eceAfter: after.ece!,
        nllBefore: nll(logits, valLabels, classes),
        nllAfter: after.loss!,
        exits: cfg.exitThresholds.map((t) => ({threshold: t, coverage: after[`exit_coverage_${t}`]!, accuracy: after[`exit_accuracy_${t}`]!})),
        perSource: Object.fromEntries(sourceNames.filter((n) => after[`mcc.${n}`] !== undefined).map((n) => [n, {n: data.val.filter((s) => sourceNames[s.source] === n).length, mcc: after[`mcc.${n}`]!, accuracy: after[`accuracy.${n}`]!}])),
      };
      await writeFileAtomic(path.join(runDir, 'calibration.json'), `${JSON.stringify(calibration, null, 2)}\n`);
      hooks.info(`Temperature scaling: T = ${temperature.toFixed(4)}, val ECE ${calibration.eceBefore.toFixed(4)} -> ${calibration.eceAfter.toFixed(4)}, NLL ${calibration.nllBefore.toFixed(4)} -> ${calibration.nllAfter.toFixed(4)}`);
    }
    await writeFileAtomic(
      path.join(runDir, 'run.json'),
      `${JSON.stringify({status: 'finished', mode: 'head', epochs: state.epoch, best: state.best, backend: backendName, natix: natixVersion(), sources: data.counts, extraction: stats, calibration, timings: timings()}, null, 2)}\n`,
    );
    return {...base, state, interrupted: false, lastCheckpoint, bestCheckpoint, history: state.history, calibration, timings: timings()};
  } finally {
    await backbone.close();
  }
}

async function hashAll(list: SourcedSample[], onProgress: (done: number, total: number) => void): Promise<string[]> {
  const out: string[] = new Array(list.length);
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({length: 8}, async () => {
      while (next < list.length) {
        const i = next++;
        out[i] = await contentHash(list[i]!.sample);
        onProgress(++done, list.length);
      }
    }),
  );
  return out;
}

/** Whether a run folder holds a head run (config.json mode 'head'). */
export async function readHeadRunConfig(runDir: string): Promise<ResolvedHeadConfig | undefined> {
  try {
    const cfg = JSON.parse(await readUserFile(path.join(runDir, 'config.json'), 'utf8')) as ResolvedHeadConfig;
    return cfg.mode === 'head' ? cfg : undefined;
  } catch {
    return undefined;
  }
}

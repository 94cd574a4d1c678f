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
import {contentHash, extractFeatures, itemKey, viewInput, type CacheItem, type ExtractionStats, type ViewSpec} from './feature-cache.js';
import {FineTuner, fineTunedModel, modelLogits, selectionOf} from './fine-tune.js';
import {resolveGradientThreads} from './gradient-workers.js';
import {microBatches, type ModelInput} from './tuned-model.js';
import {cachedBoundaryInput, openBoundaryCache, type BoundaryCache, type BoundaryCacheStats} from './boundary-cache.js';
import {Head, headShapes, type HeadSpec, type OptimizerSpec, type StepResult} from './head.js';
import {writeHistory, type EpochRecord} from './history.js';
import {epochSampleOrder, loadSources, resolveSources, type ResolvedSource, type SourceCounts, type SourcedSample} from './sources.js';
import {learningRate, resolveRunSettings, type ResolvedTrainConfig, type RunOverrides, type RunSettings} from './trainer.js';
import {yieldToEventLoop} from './loop-control.js';
import {resolveTrainScope, scopeLabel, type TrainScope} from './train-scope.js';
import type {InputTensor} from '../image/preprocess.js';
import type {TrainableGraph} from '../onnx-exec/trainable-graph.js';
import {readUserFile} from '../util/user-files.js';

export interface ResolvedHeadConfig extends RunSettings {
  mode: 'head';
  sources: ResolvedSource[];
  model: {from: string; features: string; pool: PoolChoice; preprocessor?: string; sha256?: string};
  head: {type: 'linear' | 'mlp'; hidden: number; dropout: number};
  /** What trains: the head alone, or also the end of the backbone (absent in runs made before fine-tuning existed). */
  train?: {scope: TrainScope; backboneLr?: number; microBatch: number; gradientThreads?: number | 'auto'; boundaryCache?: boolean | 'auto'};
  features: {views: number; batchSize: number; shardSize: number};
  optimizer: {name: 'adamw'; weightDecay: number; beta1: number; beta2: number; schedule: 'constant' | 'step' | 'cosine'; warmupEpochs: number; stepSize: number; gamma: number};
  classWeights: 'none' | 'auto' | number[];
  labelSmoothing: number;
  ema: number;
  maxGradNorm: number;
  exitThresholds: number[];
  augmentation: {validator: boolean};
}

export function resolveHeadConfig(c: TrainConfig, overrides: RunOverrides, root: string): ResolvedHeadConfig {
  const from = path.resolve(root, c.model!.from!);
  const exit = c['exit-threshold'];
  return {
    mode: 'head',
    ...resolveRunSettings(c, overrides, root, {runName: `head-${path.basename(from).replace(/\.onnx$/, '')}`, epochs: 20, batchSize: 256}),
    sources: resolveSources(c.dataset, root),
    model: {from, features: c.model?.features ?? 'auto', pool: c.model?.pool ?? 'auto', ...(c.model?.preprocessor ? {preprocessor: path.resolve(root, c.model.preprocessor)} : {})},
    head: {type: c.head?.type ?? 'linear', hidden: c.head?.hidden ?? 768, dropout: c.head?.dropout ?? (c.head?.type === 'mlp' ? 0.3 : 0)},
    train: (() => {
      const {scope, backboneLr} = resolveTrainScope(c, overrides.lr ?? c.lr ?? 0.001);
      return {scope, ...(backboneLr === undefined ? {} : {backboneLr}), microBatch: c['micro-batch'] ?? 8, gradientThreads: c['gradient-threads'] ?? 'auto', boundaryCache: c['boundary-cache'] ?? 'auto'};
    })(),
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
  /** What trained: `head`, or a fine-tuning scope with the value it starts from and the backbone parameters it trained. */
  train: {scope: string; trainFrom?: string; backboneParameters?: number; prefixDevice?: 'cpu' | 'cuda' | 'none' | 'tfjs'; microBatch?: number; backboneLr?: number; gradientThreads?: number; boundaryCache?: BoundaryCacheStats | 'off'};
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
  head: {backboneSha256: string; inputDim: number; classes: number; feature: string; pool: string; trainFrom?: string};
}

/** A batch of training rows: indices into the training list, the view of each, and their labels. */
interface TrainBatch {
  idx: number[];
  views: number[];
  labels: number[];
}

/**
 * What the epoch loop trains: the head on cached features, or (fine-tuning) the end of the backbone with the head
 * on decoded images. Both checkpoint, evaluate and calibrate the same way.
 */
interface Learner {
  /** Starts preparing a batch that a later `step` will take (decoding overlaps the current step). */
  prefetch(batch: TrainBatch): void;
  step(batch: TrainBatch, lr: number, backboneLr: number, t: number, dropoutSeed: string): Promise<StepResult>;
  /** Validation logits of the weights to evaluate (EMA when on). */
  valLogits(): Promise<Float32Array>;
  /** Validation logits of a stored checkpoint's weights (temperature scaling). */
  checkpointValLogits(weights: NamedArray[]): Promise<Float32Array>;
  checkpointWeights(): NamedArray[];
  optimizerState(): NamedArray[];
  dispose(): Promise<void>;
}

function headLearner(tf: Tf, head: Head, features: Float32Array, dim: number, trainRows: number[][], valRows: number[]): Learner {
  const valX = new Float32Array(valRows.length * dim);
  valRows.forEach((r, i) => valX.set(features.subarray(r * dim, (r + 1) * dim), i * dim));
  return {
    prefetch: () => undefined,
    async step(batch, lr, _backboneLr, t, seed) {
      const x = new Float32Array(batch.idx.length * dim);
      batch.idx.forEach((k, i) => {
        const row = trainRows[k]![batch.views[i]!]!;
        x.set(features.subarray(row * dim, (row + 1) * dim), i * dim);
      });
      return head.step(x, batch.labels, lr, t, seed);
    },
    valLogits: async () => head.predict(valX, valRows.length),
    async checkpointValLogits(weights) {
      const stored = new Head(tf, head.spec, head.optimizer, weights);
      const logits = stored.predict(valX, valRows.length);
      stored.dispose();
      return logits;
    },
    checkpointWeights: () => head.checkpointWeights(),
    optimizerState: () => head.optimizerState(),
    dispose: async () => head.dispose(),
  };
}

/** Preprocessed validation images fine-tuning keeps in memory between epochs (a 224 px float image is 602 KB). */
const VAL_CACHE_BYTES = 512 * 1024 * 1024;

function fineTuneLearner(tuner: FineTuner, backbone: Backbone, trainItems: CacheItem[][], valItems: CacheItem[], viewSpec: ViewSpec, settings: {device: 'auto' | 'cpu' | 'cuda'; threads: number}, ema: boolean, boundaryCache: BoundaryCache | undefined): Learner {
  const p = backbone.info.preprocessing;
  const perImage = 3 * p.width * p.height;
  const pending = new Map<string, Promise<ModelInput>>();
  const keyOf = (b: TrainBatch): string => `${b.idx.join(',')}|${b.views.join(',')}`;
  // A batch's input: its images (the frozen prefix runs in the step), or their boundary values from the cache.
  const prepare = async (b: TrainBatch): Promise<ModelInput> => {
    const items = b.idx.map((k, i) => trainItems[k]![b.views[i]!]!);
    if (boundaryCache) return cachedBoundaryInput(boundaryCache, tuner.graph, items, viewSpec, p);
    const packed = new Float32Array(b.idx.length * perImage);
    await Promise.all(items.map(async (item, i) => packed.set((await viewInput(item, viewSpec, p)).data, i * perImage)));
    return {images: packed};
  };
  // Validation runs every epoch on the same images: keep their tensors when they fit in VAL_CACHE_BYTES, else decode again.
  const keep = valItems.length * perImage * 4 <= VAL_CACHE_BYTES;
  const kept = new Map<number, Promise<InputTensor>>();
  const valInput = (i: number): Promise<InputTensor> => {
    const cached = kept.get(i);
    if (cached) return cached;
    const made = viewInput(valItems[i]!, viewSpec, p);
    if (keep) kept.set(i, made);
    return made;
  };
  const valImages = {count: valItems.length, batch: (start: number, end: number): Promise<InputTensor[]> => Promise.all(Array.from({length: end - start}, (_, k) => valInput(start + k)))};
  const classes = tuner.head.spec.classes;
  return {
    prefetch(batch) {
      const key = keyOf(batch);
      if (!pending.has(key)) pending.set(key, prepare(batch));
    },
    async step(batch, lr, backboneLr, t, seed) {
      const key = keyOf(batch);
      const input = await (pending.get(key) ?? prepare(batch));
      pending.delete(key);
      return tuner.step(input, batch.labels, lr, backboneLr, t, seed);
    },
    valLogits: () => modelLogits(tuner.currentModel(), backbone.info, valImages, settings, classes),
    checkpointValLogits: (weights) => modelLogits(fineTunedModel(backbone, weights, ema, tuner.head, 1), backbone.info, valImages, settings, classes),
    checkpointWeights: () => tuner.checkpointWeights(),
    optimizerState: () => tuner.optimizerState(),
    async dispose() {
      await Promise.allSettled(pending.values());
      tuner.head.dispose();
      await tuner.dispose();
    },
  };
}

function checkResumable(checkpoint: {weights: NamedArray[]; state: TrainerState}, spec: HeadSpec, sha: string, trainFrom: string | undefined): void {
  const state = checkpoint.state as HeadState;
  if (state.head && (state.head.trainFrom ?? undefined) !== trainFrom) {
    const what = (v: string | undefined): string => (v === undefined ? 'the head only' : `the backbone from "${v}"`);
    throw new NatixError(`This run trained ${what(state.head.trainFrom)}; the config now trains ${what(trainFrom)}`, {
      code: 'TRAIN_SCOPE_CHANGED',
      exitCode: ExitCode.Usage,
      actions: ['Resume with the model.train / model.train-from the run started with, or start a new run (another --run-name).'],
    });
  }
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
  const scope: TrainScope = cfg.train?.scope ?? {kind: 'head'};
  // Fine-tuning feeds images to the split graph; only the head path extracts (in a worker thread).
  const backbone: Backbone = await loadBackbone(cfg.model.from, {features: cfg.model.features, pool: cfg.model.pool, preprocessor: cfg.model.preprocessor, device: settings.device, threads: settings.threads, ...(scope.kind === 'head' ? {graphFile: path.join(runDir, 'backbone-features.onnx')} : {})});
  let split: TrainableGraph | undefined;
  const microBatch = Math.min(cfg.train?.microBatch ?? 8, cfg.batchSize);
  const asked = cfg.train?.gradientThreads ?? 'auto';
  const {count: gradientThreadCount, note: threadsNote} = resolveGradientThreads(asked, backendName, microBatches(cfg.batchSize, microBatch).length);
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

    // Fine-tuning: split the graph now, so an unsupported op or a missing boundary is reported before any data is read.
    // With gradient threads, each thread runs its own prefix session with one onnxruntime thread (no oversubscription).
    split = scope.kind === 'head' ? undefined : await FineTuner.split(tf, backbone, selectionOf(scope), settings.device, gradientThreadCount > 1 ? 1 : settings.threads);
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
    const {features, stats} = scope.kind !== 'head' ? {features: new Float32Array(0), stats: noExtraction()} : await extractFeatures(backbone, items, {
      cacheDir: path.join(runDir, 'features'),
      batchSize: cfg.features.batchSize,
      shardSize: cfg.features.shardSize,
      viewSpec,
      warn: hooks.warn,
      onProgress: (d, n) => hooks.onProgress?.('extract', d, n),
      shouldStop: hooks.shouldStop,
    });
    const extractMs = performance.now() - t1;
    if (scope.kind === 'head') hooks.info(`Features: ${stats.items} (${stats.cached} cached, ${stats.computed} computed) in ${(stats.wallMs / 1000).toFixed(1)} s; ${data.train.length} train x ${cfg.features.views} view(s), ${data.val.length} val`);
    const base = {runDir, counts: data.counts, extraction: stats, skippedImages: 0, train: {scope: scopeLabel(scope)} as HeadTrainResult['train']};
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
    const trainFrom = split?.cut.from;
    if (resumed) checkResumable(resumed, spec, backbone.info.sha256, trainFrom);
    // Fine-tuning: the EMA of every trained value lives in the FineTuner, so the head keeps none of its own.
    const head = new Head(tf, spec, scope.kind === 'head' ? optimizer : {...optimizer, ema: 0}, resumed?.weights);
    let learner: Learner;
    if (scope.kind === 'head') {
      if (resumed) head.restoreOptimizer(resumed.optimizer);
      learner = headLearner(tf, head, features, dim, trainRows, valRows);
    } else {
      if (threadsNote) hooks.info(threadsNote);
      const gradientThreads = {count: gradientThreadCount, backend: backendName as 'wasm' | 'cpu', warn: hooks.warn};
      const tuner = await FineTuner.create(tf, backbone, head, {selection: selectionOf(scope), optimizer, device: settings.device, microBatch, gradientThreads}, resumed?.weights, split).catch((error: unknown) => {
        head.dispose();
        throw error;
      });
      split = undefined; // the tuner owns it now
      base.train = {scope: scopeLabel(scope), trainFrom, backboneParameters: tuner.backboneParameters.elements, prefixDevice: tuner.graph.prefixDevice, microBatch, backboneLr: cfg.train!.backboneLr, gradientThreads: tuner.gradientThreads};
      if (resumed) tuner.restoreOptimizer(resumed.optimizer);
      hooks.info(tuner.describe());
      if (tuner.graph.fallbackReason) hooks.warn(tuner.graph.fallbackReason);
      hooks.info(`Learning rates: head ${cfg.lr}, backbone ${cfg.train!.backboneLr}; ${microBatch} images per forward/backward pass (micro-batch), gradients accumulated to ${cfg.batchSize} on ${tuner.gradientThreads} thread(s)`);
      const trainItems = data.train.map((s, i) => Array.from({length: cfg.features.views}, (_, v) => ({hash: hashes[i]!, view: v, sample: s.sample})));
      const valItems = data.val.map((s, i) => ({hash: hashes[data.train.length + i]!, view: 0, sample: s.sample}));
      const {cache: boundaryCache, note} = await openBoundaryCache(tuner.graph, cfg.train!.boundaryCache ?? 'auto', {root: path.join(runDir, 'boundary'), backboneSha256: backbone.info.sha256, preprocessing: backbone.info.preprocessing, views: viewSpec, items: trainItems.length * cfg.features.views, warn: hooks.warn});
      hooks.info(note);
      base.train.boundaryCache = boundaryCache ? boundaryCache.stats : 'off';
      learner = fineTuneLearner(tuner, backbone, trainItems, valItems, viewSpec, settings, cfg.ema > 0, boundaryCache);
    }
    const headInfo = {backboneSha256: backbone.info.sha256, inputDim: dim, classes, feature: backbone.info.feature.name, pool: backbone.info.pool, ...(trainFrom === undefined ? {} : {trainFrom})};
    let state: HeadState = {...(resumed?.state ?? emptyState), epochsPlanned: cfg.epochs, backend: backendName, head: headInfo};
    const valLabels = data.val.map((s) => s.label);
    const sourceNames = cfg.sources.map((s) => s.name);
    const valSources = {names: sourceNames, of: data.val.map((s) => s.source)};
    const columns = historyColumns(cfg, sourceNames);
    const weights = cfg.sources.map((s) => s.weight);
    const steps = Math.ceil(data.train.length / cfg.batchSize);
    const lrConfig = {lr: cfg.lr, epochs: cfg.epochs, optimizer: cfg.optimizer} as unknown as ResolvedTrainConfig;
    const backboneLrConfig = {...lrConfig, lr: cfg.train?.backboneLr ?? 0};
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
      const backboneLr = learningRate(backboneLrConfig, epoch);
      const order = epochSampleOrder(data.train, weights, cfg.seed, epoch);
      const viewRng = new SeededRandom(`${cfg.seed}:views:${epoch}`);
      const views = order.map(() => (cfg.features.views > 1 ? viewRng.int(cfg.features.views) : 0));
      // Training metrics accumulate over the epoch; a resumed mid-epoch run keeps them in the state.
      const acc = (state as HeadState & {partial?: {lossSum: number; n: number; logits: number[]; labels: number[]}}).partial ?? {lossSum: 0, n: 0, logits: [] as number[], labels: [] as number[]};
      const first = epoch === state.epoch ? state.stepInEpoch : 0;
      const batchAt = (step: number): TrainBatch => {
        const idx = order.slice(step * cfg.batchSize, (step + 1) * cfg.batchSize);
        return {idx, views: idx.map((_, i) => views[step * cfg.batchSize + i]!), labels: idx.map((k) => data.train[k]!.label)};
      };
      for (let step = first; step < steps; step++) {
        const batch = batchAt(step);
        if (step + 1 < steps) learner.prefetch(batchAt(step + 1));
        const r = await learner.step(batch, lr, backboneLr, state.step + 1, `${cfg.seed}:dropout:${state.step}`);
        state.step++;
        acc.lossSum += r.loss * batch.idx.length;
        acc.n += batch.idx.length;
        for (const v of r.logits) acc.logits.push(v);
        acc.labels.push(...batch.labels);
        hooks.onProgress?.('train', step + 1, steps);
        await yieldToEventLoop();
        if (hooks.shouldStop() && step + 1 < steps) {
          state = {...state, epoch, stepInEpoch: step + 1, partial: acc} as HeadState;
          lastCheckpoint = await writeCheckpoint(runDir, learner.checkpointWeights(), learner.optimizerState(), state);
          await writePointer(runDir, 'last', lastCheckpoint, {interrupted: true});
          interrupted = true;
          break;
        }
      }
      if (interrupted) break;
      const trainEval = evaluateLogits(Float32Array.from(acc.logits), acc.labels, classes, []);
      const val = evaluateLogits(await learner.valLogits(), valLabels, classes, cfg.exitThresholds, valSources);
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
      lastCheckpoint = await writeCheckpoint(runDir, learner.checkpointWeights(), learner.optimizerState(), state);
      await writePointer(runDir, 'last', lastCheckpoint, {epoch: epoch + 1});
      if (improved) {
        bestCheckpoint = lastCheckpoint;
        await writePointer(runDir, 'best', lastCheckpoint, {epoch: epoch + 1, metric: cfg.bestMetric, value});
      }
      await pruneCheckpoints(runDir, cfg.keepLast);
      await writeHistory(runDir, history, `${cfg.runName} (${cfg.head.type} head on ${path.basename(cfg.model.from)}${scope.kind === 'head' ? '' : `, ${scopeLabel(scope)} fine-tuned`}, ${backendName})`, columns);
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
    const timings = (): HeadTrainResult['timings'] => ({hashMs, extractMs, trainMs, wallMs: performance.now() - wallStart});
    if (interrupted) {
      await learner.dispose();
      return {...base, state, interrupted: true, lastCheckpoint, bestCheckpoint, history: state.history, timings: timings()};
    }

    // Temperature scaling on the best checkpoint's validation logits.
    let calibration: Calibration | undefined;
    const bestDir = bestCheckpoint ?? lastCheckpoint;
    if (bestDir && valLabels.length > 0) {
      const best = await readCheckpoint(bestDir);
      const logits = await learner.checkpointValLogits(best.weights);
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
    await learner.dispose();
    await writeFileAtomic(
      path.join(runDir, 'run.json'),
      `${JSON.stringify({status: 'finished', mode: 'head', train: scopeLabel(scope), ...(trainFrom === undefined ? {} : {trainFrom}), epochs: state.epoch, best: state.best, backend: backendName, natix: natixVersion(), sources: data.counts, extraction: stats, calibration, timings: timings()}, null, 2)}\n`,
    );
    return {...base, state, interrupted: false, lastCheckpoint, bestCheckpoint, history: state.history, calibration, timings: timings()};
  } finally {
    await split?.dispose();
    await backbone.close();
  }
}

function noExtraction(): ExtractionStats {
  return {items: 0, cached: 0, computed: 0, shardsWritten: 0, shardsRejected: 0, wallMs: 0, inferenceMs: 0, decodeMs: 0, preprocessMs: 0, interrupted: false};
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

/**
 * Export of a head-training run: the ORIGINAL backbone graph (cut at the feature tensor, so a classifier's old head
 * is dropped), the same pooling nodes the extraction ran, the trained head (EMA weights when on) as Gemm nodes,
 * the logits divided by the fitted temperature T inside the graph (output `logits`), and their softmax (output
 * `probabilities`). Beside it: config.json (id2label {0: None, 1: Roadwork}), the backbone's own
 * preprocessor_config.json byte for byte, and model_card.json. Verification runs the export in onnxruntime on real
 * validation images and compares its LOGITS with the training path (cached features -> TF.js head / T).
 */
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {ExitCode, NatixError} from '../errors.js';
import {preprocessForModel, type InputTensor} from '../image/preprocess.js';
import {encodeOnnxModel} from '../onnx/model.js';
import type {Tf} from '../runtime/tfjs.js';
import {loadBackbone} from '../train/backbone.js';
import type {Calibration} from '../train/head-trainer.js';
import {readCheckpoint, resolveCheckpointDir} from '../train/checkpoint.js';
import {contentHash, extractFeatures, type CacheItem} from '../train/feature-cache.js';
import {FineTuner, fineTunedModel, modelLogits, selectionOf} from '../train/fine-tune.js';
import {scopeLabel} from '../train/train-scope.js';
import {Head, type HeadSpec} from '../train/head.js';
import {readHeadRunConfig} from '../train/head-trainer.js';
import {loadSources} from '../train/sources.js';
import {stitchHead} from './stitch-head.js';
import type {ExportOptions, ExportResult} from './types.js';
import {readUserFile, UserFileError} from '../util/user-files.js';

const SS58 = /^[1-9A-HJ-NP-Za-km-z]{46,48}$/;

export interface HeadExportResult extends ExportResult {
  temperature: number;
  backbone: {file: string; sha256: string; feature: string; pool: string; dim: number};
}

export async function exportHeadRun(tf: Tf, target: string, options: ExportOptions): Promise<HeadExportResult> {
  if (!/^\d+\.\d+\.\d+$/.test(options.version)) throw new NatixError(`--version must be X.Y.Z, got ${options.version}`, {code: 'USAGE', exitCode: ExitCode.Usage});
  if (options.hotkey && !SS58.test(options.hotkey)) throw new NatixError(`--hotkey does not look like an ss58 address: ${options.hotkey}`, {code: 'USAGE', exitCode: ExitCode.Usage});
  const dir = await resolveCheckpointDir(target);
  const runDir = path.dirname(dir);
  const cfg = await readHeadRunConfig(runDir);
  if (!cfg) throw new NatixError(`${runDir} is not a head-training run`, {code: 'CHECKPOINT_MISMATCH', exitCode: ExitCode.Usage});
  const checkpoint = await readCheckpoint(dir);
  const state = checkpoint.state as typeof checkpoint.state & {head: {inputDim: number; classes: number; trainFrom?: string}};
  const calibration = JSON.parse(await readUserFile(path.join(runDir, 'calibration.json'), 'utf8').catch((error: unknown) => (error instanceof UserFileError && error.reason === 'missing' ? 'null' : Promise.reject(error)))) as Calibration | null;
  const temperature = calibration && calibration.checkpoint === path.basename(dir) ? calibration.temperature : 1;
  const backbone = await loadBackbone(cfg.model.from, {features: cfg.model.features, pool: cfg.model.pool, preprocessor: cfg.model.preprocessor, device: 'cpu', threads: 0});
  try {
    if (cfg.model.sha256 && backbone.info.sha256 !== cfg.model.sha256) {
      throw new NatixError(`The backbone ${backbone.info.onnxFile} changed since the run was trained`, {code: 'MODEL_CHANGED', exitCode: ExitCode.Usage, actions: ['Restore the model file the run was trained on.']});
    }
    const classes = state.head.classes;
    const spec: HeadSpec = {type: cfg.head.type, hidden: cfg.head.hidden, dropout: cfg.head.dropout, inputDim: state.head.inputDim, classes, seed: cfg.seed};
    const frozenOptimizer = {weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 0, ema: cfg.ema, labelSmoothing: 0, classWeights: []};
    const head = new Head(tf, spec, frozenOptimizer, checkpoint.weights);
    const info = backbone.info;
    const scope = cfg.train?.scope ?? {kind: 'head' as const};
    // Fine-tuned runs: the feature graph with the trained initializers replaced by name, then the same stitching.
    const graph = scope.kind === 'head' ? stitchHead(backbone.spec, info.feature.name, info.feature.rank!, info.pool as 'cls' | 'mean' | 'none', info.opset, head.exportWeights(), cfg.head.type, temperature, classes) : fineTunedModel(backbone, checkpoint.weights, cfg.ema > 0, head, temperature);
    const onnx = encodeOnnxModel(graph);
    await mkdir(options.out, {recursive: true});
    const id2label: Record<string, string> = classes === 2 ? {0: 'None', 1: 'Roadwork'} : Object.fromEntries(Array.from({length: classes}, (_, i) => [i, ['None', 'Roadwork', 'Street_Signs'][i] ?? `class_${i}`]));
    const files: Record<string, string | Uint8Array> = {
      'model.onnx': onnx,
      'config.json': JSON.stringify(
        {
          architectures: [`natix-${cfg.head.type}-head`],
          id2label,
          label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)])),
          num_labels: classes,
          natix: {run: cfg.runName, checkpoint: path.basename(dir), epoch: state.epoch, best: state.best, backbone: {file: path.basename(info.onnxFile), sha256: info.sha256, feature: info.feature.name, pool: info.pool, dim: info.dim, train: scopeLabel(scope), ...(state.head.trainFrom ? {trainFrom: state.head.trainFrom} : {})}, head: cfg.head, temperature, calibration},
        },
        null,
        2,
      ),
      'model_card.json': JSON.stringify(
        {
          model_name: options.modelName ?? cfg.runName,
          description: options.description ?? `natix ${cfg.head.type} head on ${path.basename(cfg.model.from)}${scope.kind === 'head' ? '' : ` (${scopeLabel(scope)} fine-tuned)`} (${info.feature.name}, ${info.pool} pooling, ${info.dim} features); best ${state.best.metric} ${state.best.value ?? 'n/a'}; temperature ${temperature.toFixed(4)}`,
          version: options.version,
          submitted_by: options.hotkey ?? '',
          submission_time: Math.floor(Date.now() / 1000),
        },
        null,
        2,
      ),
    };
    for (const [name, data] of Object.entries(files)) await writeFile(path.join(options.out, name), data);
    await writeFile(path.join(options.out, 'preprocessor_config.json'), await readUserFile(info.preprocessorFile));
    const result: HeadExportResult = {out: options.out, checkpoint: dir, files: [...Object.keys(files), 'preprocessor_config.json'], inputSize: info.preprocessing.width, classes, temperature, backbone: {file: info.onnxFile, sha256: info.sha256, feature: info.feature.name, pool: info.pool, dim: info.dim}};
    if (options.verify) {
      const expected: TrainingPathLogits =
        scope.kind === 'head'
          ? async (items) => {
              const {features} = await extractFeatures(backbone, items, {cacheDir: path.join(runDir, 'features'), batchSize: cfg.features.batchSize, shardSize: cfg.features.shardSize, viewSpec: {views: 1, validator: false, seed: cfg.seed}, warn: () => undefined});
              return head.predict(features, items.length);
            }
          : async (_items, inputs) => {
              const tuner = await FineTuner.create(tf, backbone, new Head(tf, spec, {...frozenOptimizer, ema: 0}, checkpoint.weights), {selection: selectionOf(scope), optimizer: {...frozenOptimizer, ema: cfg.ema}, device: 'cpu', microBatch: cfg.train?.microBatch ?? 8}, checkpoint.weights);
              try {
                const perImage = inputs[0]!.data.length;
                const packed = new Float32Array(inputs.length * perImage);
                inputs.forEach((t, i) => packed.set(t.data, i * perImage));
                return await tuner.logits(packed, inputs.length);
              } finally {
                tuner.head.dispose();
                await tuner.dispose();
              }
            };
      result.verification = await verifyHeadExport(onnx, backbone, classes, expected, cfg, temperature, options.tolerance);
    }
    head.dispose();
    return result;
  } finally {
    await backbone.close();
  }
}

/** The training path's logits (before temperature) of the chosen validation images (also given preprocessed). */
type TrainingPathLogits = (items: CacheItem[], inputs: InputTensor[]) => Promise<Float32Array>;

/**
 * The export's logits on real validation images (up to 32) vs the training path (cached features through the TF.js
 * head, or for fine-tuned runs the onnxruntime prefix + TF.js tail + head), divided by T. Max |diff| <= tolerance.
 */
async function verifyHeadExport(onnx: Uint8Array, backbone: Awaited<ReturnType<typeof loadBackbone>>, classes: number, trainingPath: TrainingPathLogits, cfg: NonNullable<Awaited<ReturnType<typeof readHeadRunConfig>>>, temperature: number, tolerance: number): Promise<NonNullable<ExportResult['verification']>> {
  const data = await loadSources(cfg.sources, cfg.seed);
  const chosen = (data.val.length > 0 ? data.val : data.train).slice(0, 32);
  const items: CacheItem[] = await Promise.all(chosen.map(async (s) => ({hash: await contentHash(s.sample), view: 0, sample: s.sample})));
  // Each image is decoded and preprocessed once, for both paths.
  const inputs = await Promise.all(items.map((item) => preprocessForModel(item.sample.bytes ?? item.sample.absPath!, backbone.info.preprocessing)));
  const expected = (await trainingPath(items, inputs)).map((v) => v / temperature);
  const logits = await modelLogits(onnx, backbone.info, {count: inputs.length, batch: async (start, end) => inputs.slice(start, end)}, {device: 'cpu', threads: 0}, classes, 8);
  let maxAbsDiff = 0;
  logits.forEach((v, k) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - expected[k]!))));
  return {inputs: items.length, maxAbsDiff, tolerance, passed: maxAbsDiff <= tolerance, compared: 'logits', images: data.val.length > 0 ? 'validation' : 'training'};
}

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
import * as ort from 'onnxruntime-node';
import {ExitCode, NatixError} from '../errors.js';
import {preprocessForModel} from '../image/preprocess.js';
import {encodeOnnxModel, floatTensor, type OnnxModelSpec, type OnnxNode} from '../onnx/model.js';
import {natixVersion} from '../runtime/environment.js';
import type {Tf} from '../runtime/tfjs.js';
import {cutGraph, FEATURES_VALUE, loadBackbone, poolingNodes} from '../train/backbone.js';
import type {Calibration} from '../train/head-trainer.js';
import {readCheckpoint, resolveCheckpointDir, type NamedArray} from '../train/checkpoint.js';
import {contentHash, extractFeatures} from '../train/feature-cache.js';
import {Head, type HeadSpec} from '../train/head.js';
import {readHeadRunConfig} from '../train/head-trainer.js';
import {loadSources} from '../train/sources.js';
import type {ExportOptions, ExportResult} from './types.js';
import {readUserFile, UserFileError} from '../util/user-files.js';

const SS58 = /^[1-9A-HJ-NP-Za-km-z]{46,48}$/;

/** The backbone graph + pooling + head + temperature: outputs `logits` (already / T) and `probabilities`. */
export function stitchHead(spec: OnnxModelSpec, feature: string, rank: number, pool: 'cls' | 'mean' | 'none', opset: number, head: NamedArray[], type: 'linear' | 'mlp', temperature: number, classes: number): OnnxModelSpec {
  const cut = cutGraph(spec, [feature]);
  const taken = new Set(cut.nodes.flatMap((n) => n.outputs));
  for (const name of ['logits', 'probabilities', FEATURES_VALUE]) {
    if (taken.has(name)) throw new NatixError(`The backbone already has a value named "${name}" before its features`, {code: 'EXPORT_NAME_CLASH', exitCode: ExitCode.Usage});
  }
  const pooling = poolingNodes(feature, rank, pool, opset, FEATURES_VALUE);
  const w = (name: string): NamedArray => head.find((a) => a.name === name)!;
  const init = (name: string): ReturnType<typeof floatTensor> => floatTensor(`natix_${name.replace('/', '_')}`, w(name).shape, w(name).data);
  const headNodes: OnnxNode[] = [];
  const headInits = [];
  if (type === 'linear') {
    headInits.push(init('head/W'), init('head/b'));
    headNodes.push({opType: 'Gemm', name: 'natix_head', inputs: [FEATURES_VALUE, 'natix_head_W', 'natix_head_b'], outputs: ['natix_logits_raw']});
  } else {
    headInits.push(init('head/W1'), init('head/b1'), init('head/W2'), init('head/b2'));
    headNodes.push(
      {opType: 'Gemm', name: 'natix_head_fc1', inputs: [FEATURES_VALUE, 'natix_head_W1', 'natix_head_b1'], outputs: ['natix_hidden']},
      {opType: 'Relu', name: 'natix_head_relu', inputs: ['natix_hidden'], outputs: ['natix_hidden_relu']},
      {opType: 'Gemm', name: 'natix_head_fc2', inputs: ['natix_hidden_relu', 'natix_head_W2', 'natix_head_b2'], outputs: ['natix_logits_raw']},
    );
  }
  headInits.push(floatTensor('natix_temperature', [], [temperature]));
  headNodes.push(
    {opType: 'Div', name: 'natix_temperature_scaling', inputs: ['natix_logits_raw', 'natix_temperature'], outputs: ['logits']},
    {opType: 'Softmax', name: 'natix_softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: {axis: 1}},
  );
  return {
    ...spec,
    nodes: [...cut.nodes, ...pooling.nodes, ...headNodes],
    initializers: [...cut.initializers, ...pooling.initializers, ...headInits],
    inputs: cut.inputs,
    outputs: [
      {name: 'logits', type: 'float', shape: ['batch_size', classes]},
      {name: 'probabilities', type: 'float', shape: ['batch_size', classes]},
    ],
    valueInfo: undefined,
    producerName: 'natix',
    producerVersion: natixVersion(),
    docString: `natix head on ${spec.producerName ?? 'an ONNX'} backbone`,
  };
}

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
  const state = checkpoint.state as typeof checkpoint.state & {head: {inputDim: number; classes: number}};
  const calibration = JSON.parse(await readUserFile(path.join(runDir, 'calibration.json'), 'utf8').catch((error: unknown) => (error instanceof UserFileError && error.reason === 'missing' ? 'null' : Promise.reject(error)))) as Calibration | null;
  const temperature = calibration && calibration.checkpoint === path.basename(dir) ? calibration.temperature : 1;
  const backbone = await loadBackbone(cfg.model.from, {features: cfg.model.features, pool: cfg.model.pool, preprocessor: cfg.model.preprocessor, device: 'cpu', threads: 0});
  try {
    if (cfg.model.sha256 && backbone.info.sha256 !== cfg.model.sha256) {
      throw new NatixError(`The backbone ${backbone.info.onnxFile} changed since the run was trained`, {code: 'MODEL_CHANGED', exitCode: ExitCode.Usage, actions: ['Restore the model file the run was trained on.']});
    }
    const classes = state.head.classes;
    const spec: HeadSpec = {type: cfg.head.type, hidden: cfg.head.hidden, dropout: cfg.head.dropout, inputDim: state.head.inputDim, classes, seed: cfg.seed};
    const head = new Head(tf, spec, {weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 0, ema: cfg.ema, labelSmoothing: 0, classWeights: []}, checkpoint.weights);
    const weights = head.exportWeights();
    const info = backbone.info;
    const graph = stitchHead(backbone.spec, info.feature.name, info.feature.rank!, info.pool as 'cls' | 'mean' | 'none', info.opset, weights, cfg.head.type, temperature, classes);
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
          natix: {run: cfg.runName, checkpoint: path.basename(dir), epoch: state.epoch, best: state.best, backbone: {file: path.basename(info.onnxFile), sha256: info.sha256, feature: info.feature.name, pool: info.pool, dim: info.dim}, head: cfg.head, temperature, calibration},
        },
        null,
        2,
      ),
      'model_card.json': JSON.stringify(
        {
          model_name: options.modelName ?? cfg.runName,
          description: options.description ?? `natix ${cfg.head.type} head on ${path.basename(cfg.model.from)} (${info.feature.name}, ${info.pool} pooling, ${info.dim} features); best ${state.best.metric} ${state.best.value ?? 'n/a'}; temperature ${temperature.toFixed(4)}`,
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
    if (options.verify) result.verification = await verifyHeadExport(onnx, backbone, head, cfg, runDir, temperature, options.tolerance);
    head.dispose();
    return result;
  } finally {
    await backbone.close();
  }
}

/**
 * The export's logits on real validation images (up to 32) vs the training path: the run's cached features of the
 * same images through the TF.js head, divided by T. Max |diff| must be <= tolerance.
 */
async function verifyHeadExport(onnx: Uint8Array, backbone: Awaited<ReturnType<typeof loadBackbone>>, head: Head, cfg: NonNullable<Awaited<ReturnType<typeof readHeadRunConfig>>>, runDir: string, temperature: number, tolerance: number): Promise<NonNullable<ExportResult['verification']>> {
  const data = await loadSources(cfg.sources, cfg.seed);
  const chosen = (data.val.length > 0 ? data.val : data.train).slice(0, 32);
  const items = await Promise.all(chosen.map(async (s) => ({hash: await contentHash(s.sample), view: 0, sample: s.sample})));
  const {features} = await extractFeatures(backbone, items, {cacheDir: path.join(runDir, 'features'), batchSize: cfg.features.batchSize, shardSize: cfg.features.shardSize, viewSpec: {views: 1, validator: false, seed: cfg.seed}, warn: () => undefined});
  const expected = head.predict(features, items.length).map((v) => v / temperature);
  const p = backbone.info.preprocessing;
  const session = await ort.InferenceSession.create(onnx);
  const perImage = 3 * p.width * p.height;
  const classes = head.spec.classes;
  let maxAbsDiff = 0;
  try {
    for (let start = 0; start < items.length; start += 8) {
      const batch = items.slice(start, start + 8);
      const packed = p.dtype === 'uint8' ? new Uint8Array(batch.length * perImage) : new Float32Array(batch.length * perImage);
      for (const [i, item] of batch.entries()) packed.set((await preprocessForModel(item.sample.bytes ?? item.sample.absPath!, p)).data, i * perImage);
      const dims = p.layout === 'nchw' ? [batch.length, 3, p.height, p.width] : [batch.length, p.height, p.width, 3];
      const tensor = packed instanceof Uint8Array ? new ort.Tensor('uint8', packed, dims) : new ort.Tensor('float32', packed, dims);
      const logits = (await session.run({[backbone.info.inputName]: tensor}, ['logits'])).logits!.data as Float32Array;
      for (let k = 0; k < batch.length * classes; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[k]! - expected[start * classes + k]!));
    }
  } finally {
    await session.release();
  }
  return {inputs: items.length, maxAbsDiff, tolerance, passed: maxAbsDiff <= tolerance, compared: 'logits', images: data.val.length > 0 ? 'validation' : 'training'};
}

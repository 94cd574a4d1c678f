/**
 * `natix export`: a checkpoint -> a Hugging Face-style model directory that test-inference and bench accept as is:
 * `model.onnx`, `config.json` (id2label / label2id), `preprocessor_config.json` (the training preprocessing),
 * `model_card.json` (the subnet's submission card), and a verification that TF.js and onnxruntime agree.
 */
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {ExitCode, NatixError} from '../errors.js';
import {natixVersion} from '../runtime/environment.js';
import type {Tf} from '../runtime/tfjs.js';
import {readCheckpoint, resolveCheckpointDir} from '../train/checkpoint.js';
import {readRunConfig} from '../train/trainer.js';
import {buildModel} from '../train/zoo.js';
import {openDataset, type FormatChoice} from '../data/open.js';
import {preprocessForModel} from '../image/preprocess.js';
import {trainingPreprocessing} from '../train/data.js';
import type {Sample} from '../data/sample.js';
import {readHeadRunConfig} from '../train/head-trainer.js';
import type {ResolvedTrainConfig} from '../train/trainer.js';
import {tfjsToOnnx} from './onnx-export.js';
import type {ExportOptions, ExportResult} from './types.js';

export type {ExportOptions, ExportResult} from './types.js';

const SS58 = /^[1-9A-HJ-NP-Za-km-z]{46,48}$/;

export async function exportCheckpoint(tf: Tf, target: string, options: ExportOptions): Promise<ExportResult> {
  if (!/^\d+\.\d+\.\d+$/.test(options.version)) throw new NatixError(`--version must be X.Y.Z, got ${options.version}`, {code: 'USAGE', exitCode: ExitCode.Usage});
  if (options.hotkey && !SS58.test(options.hotkey)) throw new NatixError(`--hotkey does not look like an ss58 address: ${options.hotkey}`, {code: 'USAGE', exitCode: ExitCode.Usage});
  const dir = await resolveCheckpointDir(target);
  if (await readHeadRunConfig(path.dirname(dir))) return (await import('./export-head.js')).exportHeadRun(tf, dir, options);
  const checkpoint = await readCheckpoint(dir);
  const config = await readRunConfig(path.dirname(dir));
  if (!config) throw new NatixError(`No config.json beside ${dir}: cannot tell the architecture`, {code: 'CHECKPOINT_MISMATCH', exitCode: ExitCode.Usage});
  const classes = checkpoint.weights.find((w) => w.name.endsWith('head/bias'))?.shape[0] ?? 2;
  const model = buildModel(tf, {architecture: config.model.architecture, size: config.dataset.imageSize, width: config.model.width, classes, seed: config.seed});
  const byName = new Map(checkpoint.weights.map((w) => [w.name, w]));
  const values = model.weights.map((w) => {
    const a = byName.get(w.originalName);
    if (!a) throw new NatixError(`checkpoint lacks weight ${w.originalName}`, {code: 'CHECKPOINT_MISMATCH', exitCode: ExitCode.Usage});
    return tf.tensor(a.data, a.shape);
  });
  model.setWeights(values);
  tf.dispose(values);
  const graph = await tfjsToOnnx(model, natixVersion());
  await mkdir(options.out, {recursive: true});
  const id2label: Record<string, string> = classes === 2 ? {0: 'None', 1: 'Roadwork'} : Object.fromEntries(Array.from({length: classes}, (_, i) => [i, ['None', 'Roadwork', 'Street_Signs'][i] ?? `class_${i}`]));
  const files: Record<string, string | Uint8Array> = {
    'model.onnx': graph.onnx,
    'config.json': JSON.stringify({architectures: [`natix-${config.model.architecture}`], model_type: 'natix-cnn', id2label, label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)])), num_labels: classes, natix: {run: config.runName, checkpoint: path.basename(dir), epoch: checkpoint.state.epoch, best: checkpoint.state.best}}, null, 2),
    // natix_resampler: how training resized the images (runs from before it was recorded used libvips), so inference
    // resizes the same way (src/lib/image/hf-processor.ts).
    'preprocessor_config.json': JSON.stringify({image_processor_type: 'natix', do_resize: true, size: {height: graph.inputSize, width: graph.inputSize}, resample: 2, do_rescale: true, rescale_factor: 1 / 255, do_normalize: false, image_mean: [0, 0, 0], image_std: [1, 1, 1], natix_resampler: (config.dataset.resampler as string | undefined) ?? 'vips'}, null, 2),
    'model_card.json': JSON.stringify({model_name: options.modelName ?? config.runName, description: options.description ?? `natix ${config.model.architecture} (width ${config.model.width}) trained at ${graph.inputSize}x${graph.inputSize}; best ${checkpoint.state.best.metric} ${checkpoint.state.best.value ?? 'n/a'}`, version: options.version, submitted_by: options.hotkey ?? '', submission_time: Math.floor(Date.now() / 1000)}, null, 2),
  };
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(options.out, name), data);
  const result: ExportResult = {out: options.out, checkpoint: dir, files: Object.keys(files), inputSize: graph.inputSize, classes};
  if (options.verify) result.verification = await verifyZooExport(tf, model, graph.onnx, config, options.tolerance);
  model.dispose();
  return result;
}

/** Up to `n` labelled images of the run's validation split (else of the dataset), for the verification. */
async function verificationSamples(config: ResolvedTrainConfig, n: number): Promise<{samples: Sample[]; images: 'validation' | 'training'}> {
  const dataset = await openDataset(config.dataset.path, config.dataset.format as FormatChoice);
  const val: Sample[] = [];
  const any: Sample[] = [];
  for await (const s of dataset.samples()) {
    if (s.label === null) continue;
    if (s.split === config.dataset.valSplit && val.length < n) val.push(s);
    if (any.length < n) any.push(s);
    if (val.length >= n) break;
  }
  return val.length > 0 ? {samples: val, images: 'validation'} : {samples: any, images: 'training'};
}

/**
 * The zoo export's logits (onnxruntime) vs TF.js's on real images of the run's dataset, decoded as training decodes
 * them (stretched to the training size). TF.js logits are the head's input times its kernel plus bias (the layer
 * applies softmax after): comparing probabilities of a saturated model proves nothing.
 */
async function verifyZooExport(tf: Tf, model: import('@tensorflow/tfjs').LayersModel, onnx: Uint8Array, config: ResolvedTrainConfig, tolerance: number): Promise<NonNullable<ExportResult['verification']>> {
  const s = config.dataset.imageSize;
  const {samples, images} = await verificationSamples(config, 16);
  const n = samples.length;
  const nhwc = new Float32Array(n * s * s * 3);
  for (const [i, sample] of samples.entries()) {
    const rgb = (await preprocessForModel(sample.bytes ?? sample.absPath!, trainingPreprocessing(s, config.dataset.resampler ?? 'vips'))).data;
    for (let k = 0; k < s * s * 3; k++) nhwc[i * s * s * 3 + k] = rgb[k]! / 255;
  }
  const nchw = new Float32Array(nhwc.length);
  for (let b = 0; b < n; b++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) for (let c = 0; c < 3; c++) nchw[((b * 3 + c) * s + y) * s + x] = nhwc[((b * s + y) * s + x) * 3 + c]!;
  const head = model.getLayer('head');
  const [kernel, bias] = head.getWeights();
  const trunk = tf.model({inputs: model.inputs, outputs: head.input as import('@tensorflow/tfjs').SymbolicTensor});
  const expected = tf.tidy(() => tf.add(tf.matMul(trunk.predict(tf.tensor4d(nhwc, [n, s, s, 3])) as import('@tensorflow/tfjs').Tensor2D, kernel!), bias!).dataSync());
  const session = await ort.InferenceSession.create(onnx);
  const logits = (await session.run({pixel_values: new ort.Tensor('float32', nchw, [n, 3, s, s])})).logits!.data as Float32Array;
  await session.release();
  let maxAbsDiff = 0;
  for (let k = 0; k < logits.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[k]! - expected[k]!));
  return {inputs: n, maxAbsDiff, tolerance, passed: n > 0 && maxAbsDiff <= tolerance, compared: 'logits', images};
}

/**
 * natix's trainer vs plain `model.fit` on the same decoded data, model and backend, in one run: one epoch each
 * (train + validation), their ratio (goal <= 1.15), and the time to write one checkpoint.
 *
 *   npx tsx bench/train-overhead.ts [image-size=48]
 */
import {mkdtemp} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {openDataset} from '../src/lib/data/open.js';
import {loadTfjs} from '../src/lib/runtime/tfjs.js';
import {writeCheckpoint} from '../src/lib/train/checkpoint.js';
import {fillAugmented, loadSplits} from '../src/lib/train/data.js';
import {resolveTrainConfig, train} from '../src/lib/train/trainer.js';
import {buildModel} from '../src/lib/train/zoo.js';

const size = Number(process.argv[2] ?? 48);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sample = path.join(root, 'datasets', 'sample');
const {tf, backend} = await loadTfjs('auto');
const dataset = await openDataset(sample);
const data = await loadSplits(dataset, {size, trainSplit: 'train', valSplit: 'val', splitRatios: [0.8, 0.2], seed: 1});
const toTensors = (set: typeof data.train): [import('@tensorflow/tfjs').Tensor4D, import('@tensorflow/tfjs').Tensor2D] => {
  const x = new Float32Array(set.images.length * size * size * 3);
  set.images.forEach((img, i) => fillAugmented(x, i * size * size * 3, img, size, undefined, undefined));
  const y = new Float32Array(set.labels.length * 2);
  set.labels.forEach((l, i) => (y[i * 2 + l] = 1));
  return [tf.tensor4d(x, [set.images.length, size, size, 3]), tf.tensor2d(y, [set.labels.length, 2])];
};

// (a) plain model.fit: one epoch with validation, no augmentation, no checkpoint.
const [xTrain, yTrain] = toTensors(data.train);
const [xVal, yVal] = toTensors(data.val);
const plain = buildModel(tf, {architecture: 'tiny-cnn', size, width: 1, classes: 2, seed: 1});
plain.compile({optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
await plain.fit(xTrain, yTrain, {epochs: 1, batchSize: 32, shuffle: false, validationData: [xVal, yVal], verbose: 0}); // warm-up
let t0 = performance.now();
await plain.fit(xTrain, yTrain, {epochs: 1, batchSize: 32, shuffle: true, validationData: [xVal, yVal], verbose: 0});
const plainSeconds = (performance.now() - t0) / 1000;

// (b) natix's trainer: two epochs (the first warms up), timed by its own per-epoch record (train + validation);
// decoding happens before the epochs and is not included, as for model.fit.
const out = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-train-'));
const cfg = resolveTrainConfig({dataset: {path: sample, 'image-size': size}, model: {architecture: 'tiny-cnn'}, augmentation: {flip: false, 'color-jitter': 0}}, {epochs: 2, batchSize: 32, lr: 0.001, seed: 1, runName: 'bench', out, keepLast: 5}, root);
const result = await train(tf, backend, dataset, cfg, {resume: false}, {info() {}, warn() {}, shouldStop: () => false});
const natixSeconds = result.history[1]!.seconds!;

// One checkpoint write (weights + optimizer + state, fsynced, renamed).
const weights = await Promise.all(plain.weights.map(async (w) => ({name: w.originalName, shape: w.shape as number[], data: (await w.read().data()) as Float32Array})));
t0 = performance.now();
await writeCheckpoint(out, weights, weights, result.state);
const checkpointMs = performance.now() - t0;

console.log(`backend ${backend}, tiny-cnn at ${size}x${size}, ${data.train.images.length} train / ${data.val.images.length} val images, batch 32`);
console.log(`  plain model.fit, 1 epoch + validation : ${plainSeconds.toFixed(2)} s`);
console.log(`  natix trainer, 1 epoch + validation   : ${natixSeconds.toFixed(2)} s`);
console.log(`  ratio natix / fit                     : ${(natixSeconds / plainSeconds).toFixed(3)} (goal <= 1.15)`);
console.log(`  one checkpoint write                   : ${checkpointMs.toFixed(1)} ms`);

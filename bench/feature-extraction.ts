/**
 * Feature extraction (natix's path: read + hash + decode + the model's own preprocessing, overlapped with the
 * backbone's session.run, shards written) vs a bare loop of session.run on already-preprocessed tensors of the same
 * model and batch size, in one run. Prints images/s of both, their ratio (goal >= 0.9) and the decode /
 * preprocess / inference shares. The backbone is a ViT-S-shaped stand-in (bench/backbone-model.ts).
 *
 *   npx tsx bench/feature-extraction.ts [images=96] [batch=16] [blocks=4] [ort-threads=0]
 *
 * With onnxruntime on every core (threads 0) a CPU-only machine has no core left to decode on, so overlap cannot
 * hide the decoding; threads 1 leaves the other cores to decoding (or run the backbone on CUDA).
 */
import {mkdtemp, readdir} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {openSession, ort} from '../src/lib/cascade/onnx-session.js';
import {decodeImage} from '../src/lib/image/decode.js';
import {decodeOptionsFor, preprocessForModel} from '../src/lib/image/preprocess.js';
import {encodeOnnxModel} from '../src/lib/onnx/model.js';
import {loadBackbone} from '../src/lib/train/backbone.js';
import {contentHash, extractFeatures, type CacheItem} from '../src/lib/train/feature-cache.js';
import {writeVitLikeBackbone} from './backbone-model.js';

const n = Number(process.argv[2] ?? 96);
const batch = Number(process.argv[3] ?? 16);
const blocks = Number(process.argv[4] ?? 4);
const threads = Number(process.argv[5] ?? 0);
const base = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-features-'));
const modelDir = await writeVitLikeBackbone(path.join(base, 'backbone'), blocks);
const imagesDir = path.join(base, 'images');
// 640x480 JPEGs (a typical street image size, scaled down) with varied content.
await import('node:fs/promises').then((fs) => fs.mkdir(imagesDir, {recursive: true}));
for (let i = 0; i < n; i++) {
  const svg = `<svg width="640" height="480"><rect width="640" height="480" fill="rgb(${(i * 37) % 255},${(i * 91) % 255},${(i * 53) % 255})"/><circle cx="${(i * 47) % 640}" cy="${(i * 29) % 480}" r="${40 + (i % 90)}" fill="#ff7a00"/><rect x="${(i * 13) % 500}" y="300" width="120" height="40" fill="#eee"/></svg>`;
  await sharp(Buffer.from(svg)).jpeg({quality: 90}).toFile(path.join(imagesDir, `${String(i).padStart(4, '0')}.jpg`));
}
const files = (await readdir(imagesDir)).map((f) => path.join(imagesDir, f));
const backbone = await loadBackbone(modelDir, {features: 'auto', pool: 'auto', device: 'auto', threads, graphFile: path.join(base, 'cache', 'backbone-features.onnx')});
const p = backbone.info.preprocessing;
const perImage = 3 * p.width * p.height;
// The bare reference: the same cut graph in an in-process session, same device and threads.
const {session} = await openSession(encodeOnnxModel(backbone.featureGraph), {device: 'auto', threads});

// (a) bare session.run on preprocessed tensors, same batches.
const tensors = await Promise.all(files.map((f) => preprocessForModel(f, p)));
const packed: Float32Array[] = [];
for (let s = 0; s < n; s += batch) {
  const k = Math.min(batch, n - s);
  const x = new Float32Array(k * perImage);
  for (let i = 0; i < k; i++) x.set(tensors[s + i]!.data as Float32Array, i * perImage);
  packed.push(x);
}
const bare = async (): Promise<number> => {
  const t0 = performance.now();
  for (const x of packed) await session.run({[backbone.info.inputName]: new ort.Tensor('float32', x, [x.length / perImage, 3, p.height, p.width])});
  return performance.now() - t0;
};
await bare(); // warm-up
const bareBefore = await bare();

// Per-image costs, one at a time: decode (full resolution for the Pillow-exact path) and preprocessing.
let decodeMs = 0;
let preprocessMs = 0;
for (const f of files.slice(0, 32)) {
  const t0 = performance.now();
  const image = await decodeImage(f, decodeOptionsFor([p]));
  const t1 = performance.now();
  await preprocessForModel(image, p);
  decodeMs += t1 - t0;
  preprocessMs += performance.now() - t1;
}
decodeMs /= Math.min(32, n);
preprocessMs /= Math.min(32, n);

// (b) natix's extraction, fresh cache.
const items: CacheItem[] = await Promise.all(files.map(async (f) => ({hash: await contentHash({absPath: f}), view: 0, sample: {absPath: f, path: path.basename(f)}})));
const {stats} = await extractFeatures(backbone, items, {cacheDir: path.join(base, 'cache'), batchSize: batch, shardSize: 4 * batch, viewSpec: {views: 1, validator: false, seed: 1}, warn: console.warn});
// (c) the same again: every shard verifies and is read back.
const again = await extractFeatures(backbone, items, {cacheDir: path.join(base, 'cache'), batchSize: batch, shardSize: 4 * batch, viewSpec: {views: 1, validator: false, seed: 1}, warn: console.warn});
await backbone.close();
// Bare again after (the machine is shared: the reference is the mean of the runs before and after).
const bareMs = (bareBefore + (await bare())) / 2;
await session.release();

const rate = (ms: number): string => `${((n / ms) * 1000).toFixed(1)} img/s`;
console.log(`backbone: ViT-S-shaped stand-in, ${blocks} blocks, 224x224, ${backbone.device}; ${n} JPEGs 640x480, batch ${batch}, onnxruntime threads ${threads || 'default'}; cores ${os.availableParallelism()} (shared machine: figures vary)`);
console.log(`bare session.run on preprocessed tensors: ${bareMs.toFixed(0)} ms  ${rate(bareMs)}`);
console.log(`natix extraction (decode + preprocess overlapped, shards written): ${stats.wallMs.toFixed(0)} ms  ${rate(stats.wallMs)}`);
console.log(`ratio extraction / bare (images/s): ${(bareMs / stats.wallMs).toFixed(3)}  (goal >= 0.9)`);
const inferencePerImage = bareMs / n;
const perImage1 = decodeMs + preprocessMs + inferencePerImage;
console.log(`per image, one at a time: decode ${decodeMs.toFixed(1)} ms (${((100 * decodeMs) / perImage1).toFixed(1)}%), preprocess ${preprocessMs.toFixed(1)} ms (${((100 * preprocessMs) / perImage1).toFixed(1)}%), inference ${inferencePerImage.toFixed(1)} ms (${((100 * inferencePerImage) / perImage1).toFixed(1)}%)`);
console.log(`without overlap the ratio would be ${(inferencePerImage / perImage1).toFixed(3)}; backbone runtime: ${backbone.runtime}`);
console.log(`cached re-run: ${again.stats.cached}/${n} from verified shards in ${again.stats.wallMs.toFixed(0)} ms`);

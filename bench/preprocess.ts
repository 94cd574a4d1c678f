/**
 * Per-image preprocessing cost of the two resamplers, from JPEG bytes to the model's float32 tensor:
 * - pillow: full-resolution decode + ONE Pillow-exact resize (bit-identical to transformers + Pillow; its passes
 *   in WebAssembly SIMD, the JavaScript passes timed alongside);
 * - vips:   JPEG shrink-on-load to about the model size + libvips resize (the fast path).
 * At 640x360, 1920x1080 and 4000x3000 (synthetic street scenes, JPEG q90), for a ViT-style config (224x224
 * bilinear) and a ConvNeXt-style one (shorter side 256 bicubic, crop 224). Then the share of a cascade run they
 * are: a 224x224 conv net (~0.35 GMAC) in a Hugging Face directory, cascade.predict on 1920x1080 images, decode +
 * preprocess vs inference from the trace, for each resampler.
 *
 *   npm run bench:preprocess [-- seconds-per-measurement=1.5]
 */
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {loadCascade} from '../src/lib/cascade/index.js';
import {decodeImage} from '../src/lib/image/decode.js';
import {resolveHfProcessor} from '../src/lib/image/hf-processor.js';
import {pillowResize} from '../src/lib/image/pillow-resample.js';
import {geometryFor, preprocessForModel, type Preprocessing} from '../src/lib/image/preprocess.js';
import {renderScene} from '../src/lib/synth/render.js';
import {makeCamera, makeSceneSpec, ROADWORK_CLASSES} from '../src/lib/synth/scene.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {benchConvNet} from './conv-net.js';

const seconds = Number(process.argv[2] ?? 1.5);

/** Mean ms of `fn` over at least 3 runs and `seconds` of wall time (after one warm-up run). */
async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn();
  let n = 0;
  const t0 = performance.now();
  while (n < 3 || performance.now() - t0 < seconds * 1000) {
    await fn();
    n++;
  }
  return (performance.now() - t0) / n;
}

const VIT = {image_processor_type: 'ViTImageProcessor', size: {height: 224, width: 224}, resample: 2, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]};
const CONVNEXT = {image_processor_type: 'ConvNextImageProcessor', size: {shortest_edge: 224}, crop_pct: 0.875, resample: 3, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225]};

const classId = new Map<string, number>(ROADWORK_CLASSES.map((c, i) => [c, i]));
async function scene(width: number, height: number, seed: number): Promise<Uint8Array> {
  const r = new SeededRandom(`bench-preprocess-${seed}`);
  return (await renderScene(makeSceneSpec(r, width, height, seed % 2 === 0), makeCamera(r, 0), r, classId, 90)).jpeg;
}

const f = (v: number): string => v.toFixed(2).padStart(8);
console.log(`preprocessing per image, JPEG bytes -> float32 tensor (mean ms; ${seconds} s per measurement; machine: ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)})`);
console.log('size        config     vips ms   pillow ms  ratio   (pillow = full decode + wasm resize + rest; the JS resize instead)  |vips - pillow| in levels');
for (const [width, height] of [[640, 360], [1920, 1080], [4000, 3000]] as const) {
  const jpeg = await scene(width, height, width);
  const full = await decodeImage(jpeg);
  const decodeMs = await timeIt(() => decodeImage(jpeg));
  for (const [name, config] of [['ViT-224', VIT], ['ConvNeXt', CONVNEXT]] as const) {
    const pillow: Preprocessing = resolveHfProcessor(config).preprocessing;
    const vips: Preprocessing = {...pillow, resampler: 'vips'};
    const vipsMs = await timeIt(() => preprocessForModel(jpeg, vips));
    const pillowMs = await timeIt(() => preprocessForModel(jpeg, pillow));
    const g = geometryFor(full.width, full.height, pillow);
    const resizeMs = await timeIt(() => pillowResize(full, g.resize!.w, g.resize!.h, pillow.resample));
    const resizeJsMs = await timeIt(() => pillowResize(full, g.resize!.w, g.resize!.h, pillow.resample, 'js'));
    const a = (await preprocessForModel(jpeg, vips)).data as Float32Array;
    const b = (await preprocessForModel(jpeg, pillow)).data as Float32Array;
    let max = 0;
    let sum = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!) * 255 * pillow.std[Math.floor(i / (a.length / 3))]!;
      max = Math.max(max, d);
      sum += d;
    }
    console.log(`${`${width}x${height}`.padEnd(11)} ${name.padEnd(9)} ${f(vipsMs)} ${f(pillowMs)} ${(pillowMs / vipsMs).toFixed(2).padStart(6)}x  (${f(decodeMs)} + ${f(resizeMs)} + ${f(Math.max(0, pillowMs - decodeMs - resizeMs))}; resize in JS ${f(resizeJsMs)})  mean ${(sum / a.length).toFixed(2)} max ${max.toFixed(0)}`);
  }
}

// Share of a cascade run: a 224x224 conv net behind the ViT config, 1920x1080 images.
const rng = new SeededRandom('bench-preprocess-net');
const net = benchConvNet(rng);
const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-preprocess-'));
try {
  await mkdir(path.join(dir, 'vit'));
  await writeFile(path.join(dir, 'vit', 'model.onnx'), net);
  await writeFile(path.join(dir, 'vit', 'preprocessor_config.json'), JSON.stringify(VIT));
  await writeFile(path.join(dir, 'vips.yaml'), YAML.stringify({models: {vit: {path: 'vit', preprocess: {resampler: 'vips'}}}, stages: [{models: ['vit']}]}));
  const images = await Promise.all(Array.from({length: 8}, (_, i) => scene(1920, 1080, 100 + i)));
  console.log('\nshare of a cascade run (cascade.predict, 1920x1080 JPEG, 224x224 conv net ~0.35 GMAC; mean ms per image from the traces)');
  console.log('resampler   decode  preprocess  inference   total   decode+preprocess share');
  for (const [name, target] of [['vips', path.join(dir, 'vips.yaml')], ['pillow', path.join(dir, 'vit')]] as const) {
    const cascade = await loadCascade(target, {device: 'cpu'});
    for (const image of images.slice(0, 2)) await cascade.predict(image);
    const sums = {decode: 0, pre: 0, inf: 0, total: 0};
    const rounds = 3;
    for (let k = 0; k < rounds; k++) {
      for (const image of images) {
        const r = await cascade.predict(image);
        const m = r.stages[0]!.models[0]!;
        sums.decode += r.decodeMs;
        sums.pre += m.preprocessMs;
        sums.inf += m.inferenceMs;
        sums.total += r.totalMs;
      }
    }
    const n = rounds * images.length;
    console.log(`${name.padEnd(9)} ${f(sums.decode / n)} ${f(sums.pre / n)}   ${f(sums.inf / n)} ${f(sums.total / n)}   ${(((sums.decode + sums.pre) / sums.total) * 100).toFixed(0).padStart(6)}%`);
    await cascade.close();
  }
} finally {
  await rm(dir, {recursive: true, force: true});
}

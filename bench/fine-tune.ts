/**
 * What `natix train` costs per training image and epoch with model.train head / last:1 / last:2 / all, on a
 * ViT-shaped and a ResNet-shaped backbone at the given input size: the real command (decode, the frozen prefix in
 * onnxruntime, the tail and head on TF.js, validation in onnxruntime, checkpoints), timed by its own report.
 *
 *   npx tsx bench/fine-tune.ts [image-size=224] [train-images=32] [epochs=1] [vit-depth=4] [backend=auto]
 *
 * Prints ms per training image per epoch (the training phase's wall time, validation included, divided by
 * epochs x training images) and the ratio to `head` (whose per-epoch cost excludes the one-off feature extraction,
 * printed separately).
 */
import {spawnSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {encodeOnnxModel, type OnnxModelSpec} from '../src/lib/onnx/model.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {resnetGraph, vitGraph} from '../test/helpers/onnx-graphs.js';

const size = Number(process.argv[2] ?? 224);
const images = Number(process.argv[3] ?? 32);
const epochs = Number(process.argv[4] ?? 1);
const vitDepth = Number(process.argv[5] ?? 4);
const backend = process.argv[6] ?? 'auto';
const root = mkdtempSync(path.join(os.tmpdir(), 'natix-bench-fine-tune-'));
const bin = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'run.js');

// Images: noise with a class-dependent tint, `images` for training, a quarter of that for validation.
const rng = new SeededRandom(1);
for (const [split, n] of [['train', images / 2], ['val', Math.max(2, images / 8)]] as const) {
  for (const [label, cls] of ['none', 'roadwork'].entries()) {
    mkdirSync(path.join(root, 'data', split, cls), {recursive: true});
    for (let i = 0; i < n; i++) {
      const pixels = Buffer.alloc(size * size * 3);
      for (let k = 0; k < pixels.length; k++) pixels[k] = Math.max(0, Math.min(255, Math.round(110 + (k % 3 === label ? 30 : 0) + 40 * rng.normal())));
      await sharp(pixels, {raw: {width: size, height: size, channels: 3}}).jpeg({quality: 90}).toFile(path.join(root, 'data', split, cls, `${i}.jpg`));
    }
  }
}

function backbone(name: string, spec: OnnxModelSpec): string {
  const dir = path.join(root, name);
  mkdirSync(dir, {recursive: true});
  writeFileSync(path.join(dir, 'model.onnx'), encodeOnnxModel(spec));
  writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({do_resize: true, size: {height: size, width: size}, resample: 2, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]}));
  return dir;
}

const models = {
  [`ViT (${vitDepth} blocks, dim 192)`]: backbone('vit', vitGraph({image: size, patch: 16, dim: 192, depth: vitDepth, heads: 3, mlp: 768, classes: 2})),
  'ResNet-18-shaped': backbone('resnet', resnetGraph({image: size, widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], classes: 2})),
};

console.log(`natix train per training image and epoch: ${size} px, ${images} training images, ${epochs} epoch(s), backend ${backend}, load average ${os.loadavg()[0]!.toFixed(1)}`);
console.log('| model | model.train | ms / image / epoch | x head | feature extraction (head, once) ms / image |');
console.log('|---|---|---|---|---|');
for (const [name, dir] of Object.entries(models)) {
  let head = Number.NaN;
  for (const scope of ['head', 'last:1', 'last:2', 'all']) {
    const config = path.join(root, `${path.basename(dir)}-${scope.replace(':', '')}.yaml`);
    writeFileSync(config, `run-name: ${path.basename(config, '.yaml')}\nout: ${path.join(root, 'runs')}\nepochs: ${epochs}\nbatch-size: 8\nmicro-batch: 4\ndataset:\n  path: ${path.join(root, 'data')}\nmodel:\n  from: ${dir}\n  train: ${scope}\n`);
    const r = spawnSync(process.execPath, [bin, 'train', '--no-tracking', '--config', config, '--backend', backend, '--json'], {encoding: 'utf8', maxBuffer: 64 << 20});
    const result = JSON.parse(r.stdout || '{}') as {result?: {timings: {trainMs: number; extractMs: number}}; message?: string};
    if (!result.result) {
      console.log(`| ${name} | ${scope} | failed: ${result.message ?? r.stderr.split('\n')[0]} | | |`);
      continue;
    }
    const perImage = result.result.timings.trainMs / (epochs * images);
    if (scope === 'head') head = perImage;
    console.log(`| ${name} | ${scope} | ${perImage.toFixed(1)} | ${(perImage / head).toFixed(1)} | ${scope === 'head' ? (result.result.timings.extractMs / (images + Math.max(2, images / 8) * 2)).toFixed(1) : ''} |`);
  }
}

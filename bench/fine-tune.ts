/**
 * What `natix train` costs per training image and epoch with model.train head / last:1 / last:2 / all, on a
 * ViT-shaped and a ResNet-shaped backbone at the given input size: the real command (decode, the frozen prefix in
 * onnxruntime, the tail and head on TF.js, validation in onnxruntime, checkpoints), timed by its own report.
 *
 *   npx tsx bench/fine-tune.ts [image-size=224] [train-images=32] [epochs=1] [vit-depth=4] [backend=auto] [gradient-threads=auto]
 *
 * Prints ms per training image per epoch (the training phase's wall time, validation included, divided by
 * epochs x training images) and the ratio to `head` (whose per-epoch cost excludes the one-off feature extraction,
 * printed separately).
 */
import os from 'node:os';
import {fineTuneBench, trainOnce} from './fine-tune-setup.js';

const size = Number(process.argv[2] ?? 224);
const images = Number(process.argv[3] ?? 32);
const epochs = Number(process.argv[4] ?? 1);
const vitDepth = Number(process.argv[5] ?? 4);
const backend = process.argv[6] ?? 'auto';
const threads = process.argv[7] ?? 'auto';
const bench = await fineTuneBench(size, images, vitDepth);

console.log(`natix train per training image and epoch: ${size} px, ${images} training images, ${epochs} epoch(s), backend ${backend}, gradient threads ${threads}, load average ${os.loadavg()[0]!.toFixed(1)}`);
console.log('| model | model.train | ms / image / epoch | x head | feature extraction (head, once) ms / image |');
console.log('|---|---|---|---|---|');
for (const [name, dir] of Object.entries(bench.models)) {
  let head = Number.NaN;
  for (const scope of ['head', 'last:1', 'last:2', 'all']) {
    const run = trainOnce(bench, `${name.split(' ')[0]}-${scope.replace(':', '')}`, dir, scope, {epochs, batchSize: 8, microBatch: 4, backend, extra: `gradient-threads: ${threads}\n`});
    if (typeof run === 'string') {
      console.log(`| ${name} | ${scope} | failed: ${run} | | |`);
      continue;
    }
    const perImage = run.trainMs / (epochs * images);
    if (scope === 'head') head = perImage;
    console.log(`| ${name} | ${scope} | ${perImage.toFixed(1)} | ${(perImage / head).toFixed(1)} | ${scope === 'head' ? (run.extractMs / (images + bench.valImages)).toFixed(1) : ''} |`);
  }
}

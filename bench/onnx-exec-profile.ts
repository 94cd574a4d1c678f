/**
 * Where one training step of the ONNX executor spends its time: tf.profile's kernel table (time per TF.js kernel,
 * summed over the step, with call counts) for a ViT-, ResNet- or MobileNetV2-shaped graph, plus the wall and CPU
 * time of the step. The tool natix's wasm kernels were chosen with (see docs/fine-tune.md, Speed).
 *
 *   npx tsx bench/onnx-exec-profile.ts [vit|resnet|mobilenet=resnet] [all|last:N=all] [size=224] [batch=2] [vit-depth=12] [step|forward=step] [kernel name to list by input shape]
 */
import {loadavg} from 'node:os';
import * as tf from '@tensorflow/tfjs';
import {TrainableGraph} from '../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs} from '../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {mobilenetGraph, resnetGraph, vitGraph} from '../test/helpers/onnx-graphs.js';

const [model = 'resnet', trainArg = 'all', sizeArg = '224', batchArg = '2', depthArg = '12', mode = 'step', byShape] = process.argv.slice(2);
const size = Number(sizeArg);
const batch = Number(batchArg);
const {backend} = await loadTfjs('auto');
const spec =
  model === 'vit'
    ? vitGraph({image: size, patch: 16, dim: 192, depth: Number(depthArg), heads: 3, mlp: 768, classes: 2})
    : model === 'mobilenet'
      ? mobilenetGraph({image: size, blocks: [[1, 16, 1], [6, 24, 2], [6, 24, 1], [6, 32, 2], [6, 32, 1], [6, 64, 2], [6, 64, 1], [6, 96, 1], [6, 160, 2], [6, 320, 1]], classes: 2})
      : resnetGraph({image: size, widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], classes: 2});
const train = trainArg === 'all' ? ({all: true} as const) : {last: Number(trainArg.split(':')[1])};
const graph = await TrainableGraph.create(tf, spec, {train, model, device: 'cpu'});
const rng = new SeededRandom(1);
const dims = [batch, 3, size, size];
const feeds = await graph.prefix(tf, Float32Array.from({length: batch * 3 * size * size}, () => rng.normal()), dims);
const optimizer = tf.train.adam(1e-4);
const labels = tf.oneHot(tf.tensor1d(Array.from({length: batch}, (_, i) => i % 2), 'int32'), 2);
const variables = [...graph.variables.values()];
const step = async (): Promise<void> => {
  if (mode === 'forward') {
    const y = graph.forward(feeds);
    await y.data();
    y.dispose();
    return;
  }
  const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, graph.forward(feeds)) as tf.Scalar, true, variables);
  await loss!.data();
  loss!.dispose();
};
await step();
const c0 = process.cpuUsage();
const t0 = performance.now();
await step();
const wall = performance.now() - t0;
const c = process.cpuUsage(c0);
const cpu = (c.user + c.system) / 1000;
const profile = await tf.profile(step);
const ms = (k: (typeof profile.kernels)[number]): number => (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0);
const total = profile.kernels.reduce((s, k) => s + ms(k), 0);
const group = (key: (k: (typeof profile.kernels)[number]) => string | undefined): Array<[string, {ms: number; n: number}]> => {
  const by = new Map<string, {ms: number; n: number}>();
  for (const k of profile.kernels) {
    const name = key(k);
    if (name === undefined) continue;
    const e = by.get(name) ?? {ms: 0, n: 0};
    e.ms += ms(k);
    e.n++;
    by.set(name, e);
  }
  return [...by].sort((a, b) => b[1].ms - a[1].ms);
};
console.log(`${model} ${trainArg}, ${size}px, batch ${batch}, ${mode} on ${backend}: wall ${(wall / batch).toFixed(0)} ms/image, cpu ${(cpu / batch).toFixed(0)} ms/image; kernels ${total.toFixed(0)} ms in the profiled run; load ${loadavg()[0]!.toFixed(1)}`);
for (const [name, e] of group((k) => k.name).slice(0, 20)) console.log(`  ${name.padEnd(38)} ${e.ms.toFixed(0).padStart(7)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  x${e.n}`);
if (byShape) {
  console.log(`\n${byShape} by input shapes:`);
  for (const [shapes, e] of group((k) => (k.name === byShape ? JSON.stringify(k.inputShapes) : undefined)).slice(0, 15)) console.log(`  ${e.ms.toFixed(0).padStart(7)} ms x${e.n}  ${shapes}`);
}
process.exit(0);

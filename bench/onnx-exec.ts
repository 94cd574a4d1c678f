/**
 * The ONNX executor's speed, measured in one run (medians of interleaved repetitions):
 *  1. natix's wasm gradient kernels against the alternatives (tfjs' own Conv2DBackpropInput; an im2col
 *     Conv2DBackpropFilter against natix's per-tap one) on ResNet-sized layers;
 *  2. executor forward vs onnxruntime on the same graph and batch (ViT-Ti/16-shaped and ResNet-18-shaped);
 *  3. one training step (forward + backward + Adam) per image with last:2 and all, next to forward-only, the
 *     frozen prefix running in onnxruntime (never re-run on TF.js).
 *
 *   npx tsx bench/onnx-exec.ts [image-size=224] [batch=4] [vit-depth=12] [backend=auto]
 *
 * A PyTorch CPU reference for the same shapes: python3 bench/onnx-exec-torch.py [image-size] [batch] [vit-depth]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import {encodeOnnxModel, type OnnxModelSpec} from '../src/lib/onnx/model.js';
import {OnnxExecutor} from '../src/lib/onnx-exec/executor.js';
import {TrainableGraph} from '../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs, type TfjsBackendChoice} from '../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {resnetGraph, vitGraph} from '../test/helpers/onnx-graphs.js';

const size = Number(process.argv[2] ?? 224);
const batch = Number(process.argv[3] ?? 4);
const vitDepth = Number(process.argv[4] ?? 12);
const choice = (process.argv[5] ?? 'auto') as TfjsBackendChoice;
const REPS = 3;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function timeIt(f: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

// 1. Kernels (wasm only): capture tfjs' own Conv2DBackpropInput before natix replaces it.
await tf.setBackend('wasm');
await tf.ready();
const tfjsInput = tf.getKernel('Conv2DBackpropInput', 'wasm')!;
const {backend, reason} = await loadTfjs(choice);
console.log(`backend ${backend} (${reason}); image ${size}px, batch ${batch}; medians of ${REPS} interleaved runs; machine load ${(await import('node:os')).loadavg()[0]!.toFixed(1)} (2 cores)`);

/** The alternative natix measured for the filter gradient: one im2col matrix product over all taps. */
function im2colFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, k: number, stride: number): tf.Tensor {
  return tf.tidy(() => {
    const [n, h, w, ci] = x.shape;
    const [, oh, ow, co] = dy.shape;
    const p = Math.floor(k / 2);
    const padded = tf.pad(x, [[0, 0], [p, Math.max(0, (oh - 1) * stride + k - h - p)], [p, Math.max(0, (ow - 1) * stride + k - w - p)], [0, 0]]);
    const windows: tf.Tensor[] = [];
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) windows.push(tf.stridedSlice(padded, [0, i, j, 0], [n, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, ci], [1, stride, stride, 1]));
    return tf.matMul(tf.concat(windows, 3).reshape([n * oh * ow, k * k * ci]), dy.reshape([n * oh * ow, co]), true, false).reshape([k, k, ci, co]);
  });
}

if (backend === 'wasm') {
  const natixInput = tf.getKernel('Conv2DBackpropInput', 'wasm')!;
  const useInput = (k: typeof tfjsInput): void => {
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel(k);
  };
  console.log('\n1. wasm gradient kernels');
  for (const [h, c, stride] of [[size / 4, 64, 1], [size / 8, 128, 2]] as const) {
    const x = tf.randomNormal([batch, h * stride, h * stride, stride === 1 ? c : c / 2]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, x.shape[3], c]) as tf.Tensor4D;
    const dy = tf.randomNormal([batch, h, h, c]) as tf.Tensor4D;
    const inputGrad = (): void => void tf.tidy(() => tf.grad((i: tf.Tensor) => tf.conv2d(i as tf.Tensor4D, f, stride, 'same').mul(dy).sum())(x).dataSync());
    const filterPerTap = (): void => void tf.tidy(() => tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, stride, 'same').mul(dy).sum())(f).dataSync());
    const filterIm2col = (): void => void tf.tidy(() => im2colFilterGrad(x, dy, 3, stride).dataSync());
    const t = {inOld: [] as number[], inNew: [] as number[], fOld: [] as number[], fNew: [] as number[]};
    for (let r = 0; r < REPS; r++) {
      useInput(tfjsInput);
      t.inOld.push(await timeIt(inputGrad));
      useInput(natixInput);
      t.inNew.push(await timeIt(inputGrad));
      t.fOld.push(await timeIt(filterIm2col));
      t.fNew.push(await timeIt(filterPerTap));
    }
    const shape = `[${x.shape.join('x')}] 3x3 -> ${c}, stride ${stride}`;
    console.log(`  ${shape}: input gradient tfjs ${median(t.inOld).toFixed(0)} -> natix ${median(t.inNew).toFixed(0)} ms (x${(median(t.inOld) / median(t.inNew)).toFixed(1)}); filter gradient im2col ${median(t.fOld).toFixed(0)} vs per-tap (kept) ${median(t.fNew).toFixed(0)} ms (per-tap x${(median(t.fOld) / median(t.fNew)).toFixed(1)})`);
    tf.dispose([x, f, dy]);
  }
}

const graphs: Array<[string, OnnxModelSpec]> = [
  [`ViT-Ti/16-shaped (dim 192, depth ${vitDepth}, 3 heads)`, vitGraph({image: size, patch: 16, dim: 192, depth: vitDepth, heads: 3, mlp: 768, classes: 2})],
  ['ResNet-18-shaped (64-512, [2,2,2,2])', resnetGraph({image: size, widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], classes: 2})],
];
const rng = new SeededRandom(1);
const dims = [batch, 3, size, size];
const data = Float32Array.from({length: batch * 3 * size * size}, () => rng.normal());

console.log('\n2. forward, executor vs onnxruntime (same graph, same batch), ms per image');
for (const [name, spec] of graphs) {
  const exec = new OnnxExecutor(tf, spec, {model: name});
  const session = await ort.InferenceSession.create(encodeOnnxModel(spec), {graphOptimizationLevel: 'all'});
  const x = tf.tensor(data, dims);
  const runExec = async (): Promise<void> => {
    const out = exec.run({pixel_values: x});
    await out.logits!.data();
    tf.dispose(Object.values(out));
  };
  const runOrt = async (): Promise<void> => void (await session.run({pixel_values: new ort.Tensor('float32', data, dims)}));
  await runExec();
  await runOrt();
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < REPS; r++) {
    a.push(await timeIt(runExec));
    b.push(await timeIt(runOrt));
  }
  console.log(`  ${name}: executor (${backend}) ${(median(a) / batch).toFixed(1)}, onnxruntime cpu ${(median(b) / batch).toFixed(1)}, ratio ${(median(a) / median(b)).toFixed(2)}`);
  x.dispose();
  exec.dispose();
  await session.release();
}

console.log('\n3. training step (forward + backward + Adam) per image, frozen prefix in onnxruntime, ms per image');
for (const [name, spec] of graphs) {
  for (const train of [{last: 2}, {all: true}] as const) {
    const graph = await TrainableGraph.create(tf, spec, {train, model: name, device: 'cpu'});
    const optimizer = tf.train.adam(1e-4);
    const labels = tf.oneHot(tf.tensor1d(Array.from({length: batch}, (_, i) => i % 2), 'int32'), 2);
    const vars = [...graph.variables.values()];
    let feeds = await graph.prefix(tf, data, dims);
    const prefix = async (): Promise<void> => {
      tf.dispose(Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor));
      feeds = await graph.prefix(tf, data, dims);
    };
    const forward = async (): Promise<void> => {
      const y = graph.forward(feeds);
      await y.data();
      y.dispose();
    };
    const step = async (): Promise<void> => {
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, graph.forward(feeds)) as tf.Scalar, true, vars);
      await loss!.data();
      loss!.dispose();
    };
    await step();
    const t = {prefix: [] as number[], forward: [] as number[], step: [] as number[]};
    for (let r = 0; r < REPS; r++) {
      t.prefix.push(await timeIt(prefix));
      t.forward.push(await timeIt(forward));
      t.step.push(await timeIt(step));
    }
    const label = 'all' in train ? 'all' : `last:${train.last}`;
    const params = vars.reduce((s, v) => s + v.size, 0);
    console.log(`  ${name} ${label} (${(params / 1e6).toFixed(2)} M trainable): prefix ${graph.prefixDevice === 'none' ? '-' : (median(t.prefix) / batch).toFixed(1)} + tail forward ${(median(t.forward) / batch).toFixed(1)}; train step ${(median(t.step) / batch).toFixed(1)} (step / forward ${(median(t.step) / median(t.forward)).toFixed(2)}), TF.js tensors held ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MB`);
    tf.dispose([labels, ...Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor)]);
    optimizer.dispose();
    await graph.dispose();
  }
}
process.exit(0);

/**
 * The ONNX executor's speed, measured in one run (medians of interleaved repetitions; wall time and this process's
 * CPU time - on a shared machine the CPU time is the steadier of the two):
 *  1. natix's wasm gradient kernels against what tfjs-backend-wasm does (its own Conv2DBackpropInput and
 *     BatchMatMul; the filter gradient as per-tap strided gathers times tfjs' BatchMatMul, natix's previous form) on
 *     ResNet- and ViT-sized layers;
 *  2. executor forward vs onnxruntime on the same graph and batch (ViT-Ti/16-shaped and ResNet-18-shaped);
 *  3. one training step (forward + backward + Adam) per image with last:2 and all, next to forward-only, the
 *     frozen prefix running in onnxruntime (never re-run on TF.js);
 *  4. with --torch, the same through bench/onnx-exec-torch.py (PyTorch CPU) and natix / PyTorch ratios.
 *
 *   npx tsx bench/onnx-exec.ts [image-size=224] [batch=4] [vit-depth=12] [backend=auto] [--torch]
 *
 * The PyTorch script runs with $PYTHON (default python3), which needs torch.
 */
import {execFileSync} from 'node:child_process';
import {loadavg} from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import {encodeOnnxModel, type OnnxModelSpec} from '../src/lib/onnx/model.js';
import {OnnxExecutor} from '../src/lib/onnx-exec/executor.js';
import {TrainableGraph} from '../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs, type TfjsBackendChoice} from '../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../src/lib/util/random.js';
import {resnetGraph, vitGraph} from '../test/helpers/onnx-graphs.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const size = Number(positional[0] ?? 224);
const batch = Number(positional[1] ?? 4);
const vitDepth = Number(positional[2] ?? 12);
const choice = (positional[3] ?? 'auto') as TfjsBackendChoice;
const withTorch = process.argv.includes('--torch');
const REPS = 3;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Wall and CPU time of one call, ms. */
interface Timing {
  wall: number;
  cpu: number;
}
async function timeIt(f: () => Promise<void> | void): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return {wall, cpu: (c.user + c.system) / 1000};
}
/** Medians of wall and CPU time, per image. */
const perImage = (ts: Timing[]): Timing => ({wall: median(ts.map((t) => t.wall)) / batch, cpu: median(ts.map((t) => t.cpu)) / batch});
const fmt = (t: Timing): string => `${t.wall.toFixed(1)} (cpu ${t.cpu.toFixed(1)})`;
const load = (): string => loadavg()[0]!.toFixed(1);

// 1. Kernels (wasm only): capture tfjs' own kernels before natix replaces them.
await tf.setBackend('wasm');
await tf.ready();
const tfjsKernels = new Map(['Conv2DBackpropInput', 'BatchMatMul'].map((name) => [name, tf.getKernel(name, 'wasm')!]));
const {backend, reason} = await loadTfjs(choice);
console.log(`backend ${backend} (${reason}); image ${size}px, batch ${batch}; medians of ${REPS} interleaved runs, ms (cpu ms of this process); machine load ${load()} (2 cores)`);

/** Runs f with tfjs' own kernel `name` registered instead of natix's. */
function withTfjsKernel<T>(name: string, f: () => T): T {
  const natix = tf.getKernel(name, 'wasm')!;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel(tfjsKernels.get(name)!);
  try {
    return f();
  } finally {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(natix);
  }
}

/** natix's previous filter gradient: per tap, a strided gather of the input times dy on tfjs' BatchMatMul. */
function perTapFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, k: number, stride: number): tf.Tensor {
  return tf.tidy(() =>
    withTfjsKernel('BatchMatMul', () => {
      const [n, h, w, ci] = x.shape;
      const [, oh, ow, co] = dy.shape;
      const p = Math.floor(k / 2);
      const padded = tf.pad(x, [[0, 0], [p, Math.max(0, (oh - 1) * stride + k - h - p)], [p, Math.max(0, (ow - 1) * stride + k - w - p)], [0, 0]]);
      const d = dy.reshape([n * oh * ow, co]);
      const taps: tf.Tensor[] = [];
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) taps.push(tf.matMul(tf.stridedSlice(padded, [0, i, j, 0], [n, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, ci], [1, stride, stride, 1]).reshape([n * oh * ow, ci]), d, true, false));
      return tf.stack(taps).reshape([k, k, ci, co]);
    }),
  );
}

if (backend === 'wasm') {
  console.log('\n1. wasm gradient kernels, tfjs-backend-wasm (or natix before) -> natix, ms');
  const row = (label: string, before: Timing[], after: Timing[]): void => {
    const b = perImage(before);
    const a = perImage(after);
    console.log(`  ${label}: ${fmt(b)} -> ${fmt(a)} per image (x${(b.cpu / a.cpu).toFixed(1)} cpu)`);
  };
  for (const [h, c, stride] of [[size / 4, 64, 1], [size / 8, 128, 2], [size / 16, 256, 2], [size / 32, 512, 1]] as const) {
    const x = tf.randomNormal([batch, h * stride, h * stride, stride === 1 ? c : c / 2]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, x.shape[3], c]) as tf.Tensor4D;
    const dy = tf.randomNormal([batch, h, h, c]) as tf.Tensor4D;
    const inputGrad = (): void => tf.tidy(() => void tf.conv2dTranspose(dy, f, x.shape, stride, 'same').dataSync());
    const filterGrad = (): void => tf.tidy(() => void tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, stride, 'same').mul(dy).sum())(f).dataSync());
    const filterPerTap = (): void => tf.tidy(() => void perTapFilterGrad(x, dy, 3, stride).dataSync());
    const forward = (): void => tf.tidy(() => void tf.conv2d(x, f, stride, 'same').mul(dy).sum().dataSync());
    const t = {inOld: [] as Timing[], inNew: [] as Timing[], fOld: [] as Timing[], fNew: [] as Timing[], fwd: [] as Timing[]};
    for (let r = 0; r <= REPS; r++) {
      const keep = (list: Timing[], v: Timing): void => {
      if (r > 0) list.push(v);
    };
      keep(t.inOld, await timeIt(() => withTfjsKernel('Conv2DBackpropInput', inputGrad)));
      keep(t.inNew, await timeIt(inputGrad));
      keep(t.fOld, await timeIt(filterPerTap));
      keep(t.fwd, await timeIt(forward));
      const fNew = await timeIt(filterGrad);
      const fwd = t.fwd[t.fwd.length - 1];
      keep(t.fNew, fwd ? {wall: fNew.wall - fwd.wall, cpu: fNew.cpu - fwd.cpu} : fNew);
    }
    const shape = `[${x.shape.join('x')}] 3x3/${stride} -> ${c}`;
    row(`${shape} input gradient (tfjs)`, t.inOld, t.inNew);
    row(`${shape} filter gradient (natix before)`, t.fOld, t.fNew);
    console.log(`  ${shape} forward convolution for scale: ${fmt(perImage(t.fwd))}`);
    tf.dispose([x, f, dy]);
  }
  // ViT MLP fc1 ([B*197, 192] x [192, 768]): forward, and the gradients TF.js asks for (dA = dy.B^T, dB = A^T.dy).
  const tokens = batch * ((size / 16) ** 2 + 1);
  const a = tf.randomNormal([tokens, 192]);
  const b = tf.randomNormal([192, 768]);
  const dy = tf.randomNormal([tokens, 768]);
  const mm = (): void => tf.tidy(() => [tf.matMul(a, b), tf.matMul(dy, b, false, true), tf.matMul(a, dy, true, false)].forEach((y) => void y.dataSync()));
  const before: Timing[] = [];
  const after: Timing[] = [];
  for (let r = 0; r <= REPS; r++) {
    const old = await timeIt(() => withTfjsKernel('BatchMatMul', mm));
    const now = await timeIt(mm);
    if (r > 0) {
      before.push(old);
      after.push(now);
    }
  }
  row(`MatMul [${tokens}x192]x[192x768] + both gradients (tfjs)`, before, after);
  tf.dispose([a, b, dy]);
}

const graphs: Array<[string, OnnxModelSpec]> = [
  [`ViT-Ti/16-shaped (dim 192, depth ${vitDepth}, 3 heads)`, vitGraph({image: size, patch: 16, dim: 192, depth: vitDepth, heads: 3, mlp: 768, classes: 2})],
  ['ResNet-18-shaped (64-512, [2,2,2,2])', resnetGraph({image: size, widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], classes: 2})],
];
const rng = new SeededRandom(1);
const dims = [batch, 3, size, size];
const data = Float32Array.from({length: batch * 3 * size * size}, () => rng.normal());

/** Per graph ('vit' | 'resnet'): forward and training steps per image, for the PyTorch comparison. */
const results: Record<string, Record<string, Timing>> = {};
const key = (name: string): string => (name.startsWith('ViT') ? 'vit' : 'resnet');

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
  const a: Timing[] = [];
  const b: Timing[] = [];
  for (let r = 0; r < REPS; r++) {
    a.push(await timeIt(runExec));
    b.push(await timeIt(runOrt));
  }
  const [ta, tb] = [perImage(a), perImage(b)];
  results[key(name)] = {...results[key(name)], forward: ta};
  console.log(`  ${name}: executor (${backend}) ${fmt(ta)}, onnxruntime cpu ${fmt(tb)}, ratio ${(ta.wall / tb.wall).toFixed(2)} wall (onnxruntime uses ${'all cores'}); load ${load()}`);
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
    const t = {prefix: [] as Timing[], forward: [] as Timing[], step: [] as Timing[]};
    for (let r = 0; r < REPS; r++) {
      t.prefix.push(await timeIt(prefix));
      t.forward.push(await timeIt(forward));
      t.step.push(await timeIt(step));
    }
    const label = 'all' in train ? 'all' : `last:${train.last}`;
    const params = vars.reduce((s, v) => s + v.size, 0);
    const [tp, tfw, ts] = [perImage(t.prefix), perImage(t.forward), perImage(t.step)];
    results[key(name)] = {...results[key(name)], [label]: {wall: ts.wall + (graph.prefixDevice === 'none' ? 0 : tp.wall), cpu: ts.cpu + (graph.prefixDevice === 'none' ? 0 : tp.cpu)}};
    console.log(`  ${name} ${label} (${(params / 1e6).toFixed(2)} M trainable): prefix ${graph.prefixDevice === 'none' ? '-' : fmt(tp)} + tail forward ${fmt(tfw)}; train step ${fmt(ts)} (step / forward ${(ts.cpu / tfw.cpu).toFixed(2)} cpu), TF.js tensors held ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MB; load ${load()}`);
    tf.dispose([labels, ...Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor)]);
    optimizer.dispose();
    await graph.dispose();
  }
}
if (withTorch) {
  console.log('\n4. PyTorch CPU (bench/onnx-exec-torch.py, same shapes and batch), ms per image, and natix / PyTorch');
  const python = process.env.PYTHON ?? 'python3';
  const out = execFileSync(python, [new URL('./onnx-exec-torch.py', import.meta.url).pathname, String(size), String(batch), String(vitDepth), '--json'], {encoding: 'utf8'});
  const torch = JSON.parse(out.trim().split('\n').pop()!) as {threads: number; results: Record<string, Record<string, Timing>>};
  console.log(`  torch threads ${torch.threads}; load ${load()}`);
  for (const [graph, rows] of Object.entries(results)) {
    for (const [label, mine] of Object.entries(rows)) {
      const theirs = torch.results[graph]?.[label];
      if (!theirs) continue;
      console.log(`  ${graph} ${label === 'forward' ? 'forward' : `train step ${label}`}: natix ${fmt(mine)}, PyTorch ${fmt(theirs)}, ratio ${(mine.wall / theirs.wall).toFixed(1)} wall, ${(mine.cpu / theirs.cpu).toFixed(1)} cpu`);
    }
  }
}
process.exit(0);

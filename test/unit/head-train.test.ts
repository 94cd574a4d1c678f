import {mkdtemp, readFile, writeFile, mkdir, copyFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {beforeAll, describe, expect, it} from 'vitest';
import {matthewsCorrcoef} from '../../src/lib/metrics/classification.js';
import {encodeOnnxModel, floatTensor, int64Tensor} from '../../src/lib/onnx/model.js';
import {decodeOnnxModel} from '../../src/lib/onnx/decode.js';
import {loadTfjs, type Tf} from '../../src/lib/runtime/tfjs.js';
import {chooseFeatures, loadBackbone, resolveBackboneFiles} from '../../src/lib/train/backbone.js';
import {expectedCalibrationError, exitMetrics, fitTemperature, nll, softmaxRows} from '../../src/lib/train/calibration.js';
import {decodeShard, encodeShard} from '../../src/lib/train/feature-cache.js';
import {Head, type OptimizerSpec} from '../../src/lib/train/head.js';
import {classWeightsFor} from '../../src/lib/train/head-trainer.js';
import {epochSampleOrder, type SourcedSample} from '../../src/lib/train/sources.js';
import {SeededRandom} from '../../src/lib/util/random.js';

const FIXTURES = new URL('../fixtures/models/', import.meta.url).pathname;
let tf: Tf;
beforeAll(async () => {
  tf = (await loadTfjs('cpu')).tf;
});

const OPT: OptimizerSpec = {weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 0, ema: 0, labelSmoothing: 0, classWeights: [1, 1]};
const linear = (w: number[], b: number[]): Array<{name: string; shape: number[]; data: Float32Array}> => [
  {name: 'head/W', shape: [2, 2], data: Float32Array.from(w)},
  {name: 'head/b', shape: [2], data: Float32Array.from(b)},
];

describe('head: loss and gradients against hand computation', () => {
  // x = [[1, 2], [-1, 0.5]], labels [1, 0]; W = [[0.5, -0.25], [0.1, 0.3]] (D x C), b = [0.05, -0.05]
  const x = Float32Array.from([1, 2, -1, 0.5]);
  const W = [0.5, -0.25, 0.1, 0.3];
  const b = [0.05, -0.05];
  const z = [
    [1 * 0.5 + 2 * 0.1 + 0.05, 1 * -0.25 + 2 * 0.3 - 0.05],
    [-1 * 0.5 + 0.5 * 0.1 + 0.05, -1 * -0.25 + 0.5 * 0.3 - 0.05],
  ];
  const p = z.map(([a, c]) => [Math.exp(a!) / (Math.exp(a!) + Math.exp(c!)), Math.exp(c!) / (Math.exp(a!) + Math.exp(c!))]);

  it('plain cross-entropy: loss = mean -log p_y, dL/dW = x^T (p - onehot) / n, dL/db = mean (p - onehot)', () => {
    const head = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: 2, classes: 2, seed: 1}, OPT, linear(W, b));
    const r = head.lossAndGradients(x, [1, 0]);
    expect(r.loss).toBeCloseTo((-Math.log(p[0]![1]!) - Math.log(p[1]![0]!)) / 2, 6);
    const d = [
      [p[0]![0]!, p[0]![1]! - 1],
      [p[1]![0]! - 1, p[1]![1]!],
    ];
    const dW = [(1 * d[0]![0]! + -1 * d[1]![0]!) / 2, (1 * d[0]![1]! + -1 * d[1]![1]!) / 2, (2 * d[0]![0]! + 0.5 * d[1]![0]!) / 2, (2 * d[0]![1]! + 0.5 * d[1]![1]!) / 2];
    Array.from(r.grads[0]!).forEach((g, i) => expect(g).toBeCloseTo(dW[i]!, 6));
    Array.from(r.grads[1]!).forEach((g, c) => expect(g).toBeCloseTo((d[0]![c]! + d[1]![c]!) / 2, 6));
    head.dispose();
  });

  it('class weights and label smoothing: sum_i w_yi * CE(q_i, p_i) / sum_i w_yi, q = (1 - eps) onehot + eps / C', () => {
    const eps = 0.2;
    const head = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: 2, classes: 2, seed: 1}, {...OPT, labelSmoothing: eps, classWeights: [3, 0.5]}, linear(W, b));
    const q = (y: number, c: number): number => (c === y ? 1 - eps + eps / 2 : eps / 2);
    const ce = (i: number, y: number): number => -(q(y, 0) * Math.log(p[i]![0]!) + q(y, 1) * Math.log(p[i]![1]!));
    const r = head.lossAndGradients(x, [1, 0]);
    expect(r.loss).toBeCloseTo((0.5 * ce(0, 1) + 3 * ce(1, 0)) / 3.5, 6);
    // dL/db_c = sum_i w_i (p_ic - q_ic) / sum w
    Array.from(r.grads[1]!).forEach((g, c) => expect(g).toBeCloseTo((0.5 * (p[0]![c]! - q(1, c)) + 3 * (p[1]![c]! - q(0, c))) / 3.5, 6));
    head.dispose();
  });

  it('one AdamW step: decoupled decay on W only, bias-corrected update = lr * sign(g) at t = 1; max-grad-norm scales g', () => {
    const lr = 0.1;
    const wd = 0.5;
    const head = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: 2, classes: 2, seed: 1}, {...OPT, weightDecay: wd}, linear(W, b));
    const g = head.lossAndGradients(x, [1, 0]).grads;
    head.step(x, [1, 0], lr, 1, '');
    const [w1, b1] = head.checkpointWeights();
    // At t = 1, m_hat = g and v_hat = g^2, so the Adam step is lr * g / (|g| + eps).
    W.forEach((w, i) => expect(w1!.data[i]).toBeCloseTo(w * (1 - lr * wd) - (lr * g[0]![i]!) / (Math.abs(g[0]![i]!) + 1e-8), 5));
    b.forEach((v, i) => expect(b1!.data[i]).toBeCloseTo(v - (lr * g[1]![i]!) / (Math.abs(g[1]![i]!) + 1e-8), 5));
    head.dispose();
    // Clipping: the norm of the clipped gradient is max-grad-norm; with SGD-like first step the sign is unchanged,
    // so check the optimizer's first moment instead: m = (1 - beta1) * g * clip / |g|.
    const clipped = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: 2, classes: 2, seed: 1}, {...OPT, maxGradNorm: 0.01}, linear(W, b));
    clipped.step(x, [1, 0], lr, 1, '');
    const norm = Math.sqrt([...g[0]!, ...g[1]!].reduce((s, v) => s + v * v, 0));
    const m = clipped.optimizerState()[0]!;
    Array.from(m.data).forEach((v, i) => expect(v).toBeCloseTo(0.1 * g[0]![i]! * (0.01 / (norm + 1e-6)), 7));
    clipped.dispose();
  });

  it('EMA follows ema = d * ema + (1 - d) * w after each step and is what exportWeights returns', () => {
    const head = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: 2, classes: 2, seed: 1}, {...OPT, ema: 0.9}, linear(W, b));
    head.step(x, [1, 0], 0.1, 1, '');
    const live = head.checkpointWeights()[0]!.data;
    const ema = head.exportWeights()[0]!.data;
    W.forEach((w, i) => expect(ema[i]).toBeCloseTo(0.9 * w + 0.1 * live[i]!, 6));
    head.dispose();
  });

  it('learns a task whose signal is one dimension among 64 noisy ones: val MCC from ~0 to > 0.9', () => {
    const rng = new SeededRandom('learnable');
    const make = (n: number): {x: Float32Array; y: number[]} => {
      const x = new Float32Array(n * 64);
      const y = Array.from({length: n}, (_, i) => i % 2);
      for (let i = 0; i < n; i++) for (let d = 0; d < 64; d++) x[i * 64 + d] = rng.normal(0, d === 7 ? 0.3 : 2) + (d === 7 ? (y[i]! ? 1 : -1) : 0);
      return {x, y};
    };
    const train = make(2000);
    const val = make(400);
    const head = new Head(tf, {type: 'linear', hidden: 0, dropout: 0, inputDim: 64, classes: 2, seed: 5}, {...OPT, weightDecay: 1e-4});
    const mcc = (): number => {
      const z = head.predict(val.x, 400);
      return matthewsCorrcoef(val.y, val.y.map((_, i) => (z[i * 2 + 1]! > z[i * 2]! ? 1 : 0)));
    };
    const before = mcc();
    expect(Math.abs(before)).toBeLessThan(0.3);
    let t = 0;
    for (let epoch = 0; epoch < 5; epoch++) for (let s = 0; s < 2000; s += 100) head.step(train.x.subarray(s * 64, (s + 100) * 64), train.y.slice(s, s + 100), 0.01, ++t, '');
    expect(mcc()).toBeGreaterThan(0.9);
    head.dispose();
  });
});

describe('calibration against hand computation', () => {
  it('ECE: 10 equal-width bins on the predicted class confidence', () => {
    // confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.55 (wrong): bins (0.9,1] and (0.6,0.7], (0.5,0.6]
    const probs = [0.05, 0.95, 0.95, 0.05, 0.35, 0.65, 0.55, 0.45];
    const labels = [1, 1, 1, 1];
    const ece = (2 / 4) * Math.abs(0.5 - 0.95) + (1 / 4) * Math.abs(1 - 0.65) + (1 / 4) * Math.abs(0 - 0.55);
    expect(expectedCalibrationError(probs, labels, 2)).toBeCloseTo(ece, 12);
    // A confidence of exactly 0.7 falls in (0.6, 0.7].
    expect(expectedCalibrationError([0.3, 0.7], [1], 2)).toBeCloseTo(0.3, 12);
  });

  it('temperature: the minimiser of the NLL (checked on a fine grid), and it lowers the NLL of an overconfident model', () => {
    const rng = new SeededRandom('temp');
    const logits: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < 500; i++) {
      const y = rng.int(2);
      const margin = (y ? 1 : -1) * rng.normal(1, 1.5) * 4; // overconfident: large, often wrong margins
      logits.push(0, margin);
      labels.push(y);
    }
    const t = fitTemperature(logits, labels, 2);
    let bestT = 0;
    let best = Infinity;
    for (let k = 1; k <= 20000; k++) {
      const tt = k / 1000;
      const v = nll(logits, labels, 2, tt);
      if (v < best) [best, bestT] = [v, tt];
    }
    expect(t).toBeCloseTo(bestT, 2);
    expect(t).toBeGreaterThan(1);
    expect(nll(logits, labels, 2, t)).toBeLessThan(nll(logits, labels, 2, 1));
    // softmax(z / T) by hand
    expect(softmaxRows([0, 2], 2, 2)[1]).toBeCloseTo(Math.exp(1) / (1 + Math.exp(1)), 12);
  });

  it('exit coverage and accuracy: share with max p >= t, accuracy on those', () => {
    const probs = [0.05, 0.95, 0.92, 0.08, 0.4, 0.6, 0.1, 0.9];
    const e = exitMetrics(probs, [1, 1, 1, 0], 2, 0.9);
    expect(e.coverage).toBe(0.75);
    expect(e.accuracy).toBeCloseTo(1 / 3, 12);
    expect(exitMetrics(probs, [1, 1, 1, 0], 2, 0.99)).toEqual({threshold: 0.99, coverage: 0, accuracy: Number.NaN});
  });

  it('class weights auto = n / (C * count_c)', () => {
    expect(classWeightsFor('auto', [0, 0, 0, 1], 2)).toEqual([4 / 6, 2]);
    expect(classWeightsFor('none', [0, 1], 2)).toEqual([1, 1]);
    expect(() => classWeightsFor([1, 2, 3], [0, 1], 2)).toThrow(expect.objectContaining({exitCode: 2}));
  });
});

describe('multi-source sampling', () => {
  const train: SourcedSample[] = [
    ...Array.from({length: 900}, () => ({sample: {} as SourcedSample['sample'], label: 0, source: 0})),
    ...Array.from({length: 100}, () => ({sample: {} as SourcedSample['sample'], label: 1, source: 1})),
  ];
  it('equal weights: a permutation; unequal: draws per source in proportion to the weights', () => {
    const order = epochSampleOrder(train, [1, 1], 3, 0);
    expect([...order].sort((a, b) => a - b)).toEqual(train.map((_, i) => i));
    const weighted = epochSampleOrder(train, [1, 1], 3, 1);
    expect(weighted).not.toEqual(order);
    const draws = epochSampleOrder(train, [1, 3], 3, 0);
    const fromSecond = draws.filter((i) => train[i]!.source === 1).length / draws.length;
    expect(fromSecond).toBeGreaterThan(0.7);
    expect(fromSecond).toBeLessThan(0.8);
    expect(epochSampleOrder(train, [1, 3], 3, 0)).toEqual(draws); // reproducible from (seed, epoch)
  });
});

describe('feature shards', () => {
  it('round-trip; a flipped byte, other items or a truncation are refused with the reason', () => {
    const rows = Float32Array.from({length: 12}, (_, i) => i / 3);
    const bytes = encodeShard({model: 'm', dim: 4, items: ['a:plain', 'b:plain', 'c:plain']}, rows);
    // As read from disk: a Buffer inside a larger pool.
    const pooled = Buffer.concat([Buffer.alloc(5), Buffer.from(bytes)]).subarray(5);
    expect(Array.from(decodeShard(pooled, 'm', ['a:plain', 'b:plain', 'c:plain'], 4) as Float32Array)).toEqual(Array.from(rows));
    expect(Array.from(decodeShard(bytes, 'm', ['a:plain', 'b:plain', 'c:plain'], 4) as Float32Array)).toEqual(Array.from(rows));
    const flipped = bytes.slice();
    flipped[flipped.length - 3]! ^= 1;
    expect(decodeShard(flipped, 'm', ['a:plain', 'b:plain', 'c:plain'], 4)).toBe('checksum mismatch');
    expect(decodeShard(bytes, 'm', ['a:plain', 'x:plain', 'c:plain'], 4)).toMatch(/other items/);
    expect(decodeShard(bytes.subarray(0, bytes.length - 4), 'm', ['a:plain', 'b:plain', 'c:plain'], 4)).toMatch(/truncated/);
  });
});

/** A ViT-shaped token model built with the encoder: pixel_values [B,3,8,8] -> Conv 4x4/4 -> tokens [B,4,6]. */
function vitShaped(): Uint8Array {
  return encodeOnnxModel({
    inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', 3, 8, 8]}],
    outputs: [{name: 'last_hidden_state', type: 'float', shape: ['batch', 4, 6]}],
    initializers: [floatTensor('patch', [6, 3, 4, 4], Array.from({length: 288}, (_, i) => Math.sin(i))), int64Tensor('shape', [3], [0, 6, 4])],
    nodes: [
      {opType: 'Conv', inputs: ['pixel_values', 'patch'], outputs: ['p'], attributes: {kernel_shape: [4, 4], strides: [4, 4]}},
      {opType: 'Reshape', inputs: ['p', 'shape'], outputs: ['r']},
      {opType: 'Transpose', inputs: ['r'], outputs: ['last_hidden_state'], attributes: {perm: [0, 2, 1]}},
    ],
  });
}

describe('backbone: finding the feature tensor', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'natix-backbone-'));
  });

  it('PyTorch ViT: last_hidden_state, cls pooling, probed size; ResNet classifier: the final Gemm input, old 10-class head dropped', async () => {
    const vit = await loadBackbone(path.join(FIXTURES, 'tiny-vit'), {features: 'auto', pool: 'auto', device: 'cpu', threads: 1, inspect: true});
    expect(vit.info.feature).toMatchObject({name: 'last_hidden_state', rank: 3});
    expect(vit.info.pool).toBe('cls');
    expect(vit.info.dim).toBe(32);
    expect(vit.info.rawDims).toEqual([1, 17, 32]);
    await vit.close();
    await mkdir(path.join(dir, 'resnet'), {recursive: true});
    await copyFile(path.join(FIXTURES, 'tiny-resnet.onnx'), path.join(dir, 'resnet', 'model.onnx'));
    await copyFile(path.join(FIXTURES, 'tiny-vit', 'preprocessor_config.json'), path.join(dir, 'resnet', 'preprocessor_config.json'));
    const resnet = await loadBackbone(path.join(dir, 'resnet', 'model.onnx'), {features: 'auto', pool: 'auto', device: 'cpu', threads: 1});
    expect(resnet.info.feature.droppedHead).toEqual({nodes: [expect.stringContaining('Gemm')], classes: 10});
    expect(resnet.info.pool).toBe('none');
    expect(resnet.info.dim).toBe(32);
    // The cut graph no longer computes the old logits.
    expect(resnet.featureGraph.nodes.some((n) => n.opType === 'Gemm')).toBe(false);
    await resnet.close();
  });

  it('encoder-built graphs: ViT-shaped tokens, a ResNet-shaped feature map (mean over H x W) and a 1000-class MatMul+Add classifier', () => {
    const map = decodeOnnxModel(
      encodeOnnxModel({
        inputs: [{name: 'x', type: 'float', shape: ['b', 3, 8, 8]}],
        outputs: [{name: 'feature_map', type: 'float', shape: ['b', 4, 8, 8]}],
        initializers: [floatTensor('k', [4, 3, 1, 1], Array.from({length: 12}, (_, i) => i))],
        nodes: [{opType: 'Conv', inputs: ['x', 'k'], outputs: ['feature_map']}],
      }),
    );
    expect(chooseFeatures(map, 'auto')).toMatchObject({name: 'feature_map', rank: 4});
    const classifier = decodeOnnxModel(
      encodeOnnxModel({
        inputs: [{name: 'x', type: 'float', shape: ['b', 16]}],
        outputs: [{name: 'logits', type: 'float', shape: ['b', 1000]}],
        initializers: [floatTensor('w1', [16, 8], new Float32Array(128)), floatTensor('w', [8, 1000], new Float32Array(8000)), floatTensor('bias', [1000], new Float32Array(1000))],
        nodes: [
          {opType: 'MatMul', inputs: ['x', 'w1'], outputs: ['h']},
          {opType: 'Relu', inputs: ['h'], outputs: ['pooled']},
          {opType: 'MatMul', inputs: ['pooled', 'w'], outputs: ['mm']},
          {opType: 'Add', inputs: ['mm', 'bias'], outputs: ['logits']},
        ],
      }),
    );
    expect(chooseFeatures(classifier, 'auto')).toMatchObject({name: 'pooled', droppedHead: {classes: 1000}});
    expect(chooseFeatures(classifier, 'h')).toMatchObject({name: 'h', how: expect.stringContaining('intermediate')});
  });

  it('pooling runs in the cut graph: cls = the first token, mean = the token average (checked against the full output)', async () => {
    const folder = path.join(dir, 'vit-shaped');
    await mkdir(folder, {recursive: true});
    await writeFile(path.join(folder, 'model.onnx'), vitShaped());
    await writeFile(path.join(folder, 'preprocessor_config.json'), JSON.stringify({do_resize: true, size: {height: 8, width: 8}, do_normalize: false}));
    const ort = await import('onnxruntime-node');
    const x = Float32Array.from({length: 2 * 3 * 64}, (_, i) => Math.cos(i / 7));
    const full = (await (await ort.InferenceSession.create(vitShaped())).run({pixel_values: new ort.Tensor('float32', x, [2, 3, 8, 8])})).last_hidden_state!.data as Float32Array;
    for (const pool of ['cls', 'mean'] as const) {
      const b = await loadBackbone(folder, {features: 'auto', pool, device: 'cpu', threads: 1});
      expect(b.info.dim).toBe(6);
      const f = await b.run(x, 2);
      for (let i = 0; i < 2; i++) {
        for (let d = 0; d < 6; d++) {
          const tokens = [0, 1, 2, 3].map((t) => full[i * 24 + t * 6 + d]!);
          expect(f[i * 6 + d]).toBeCloseTo(pool === 'cls' ? tokens[0]! : tokens.reduce((a, v) => a + v, 0) / 4, 5);
        }
      }
      await b.close();
    }
  });

  it('exit-2 errors: an unfindable feature tensor, an unknown model.features, a missing preprocessor config', async () => {
    const probsOnly = decodeOnnxModel(
      encodeOnnxModel({
        inputs: [{name: 'x', type: 'float', shape: ['b', 3, 8, 8]}],
        outputs: [{name: 'probs', type: 'float', shape: ['b', 3]}],
        initializers: [int64Tensor('axes', [2], [2, 3])],
        nodes: [
          {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [2, 3], keepdims: 0}},
          {opType: 'Softmax', inputs: ['m'], outputs: ['probs'], attributes: {axis: 1}},
        ],
      }),
    );
    expect(() => chooseFeatures(probsOnly, 'auto')).toThrow(expect.objectContaining({code: 'FEATURES_NOT_FOUND', exitCode: 2}));
    expect(() => chooseFeatures(probsOnly, 'nope')).toThrow(expect.objectContaining({code: 'FEATURES_NOT_FOUND', exitCode: 2}));
    const bare = path.join(dir, 'bare');
    await mkdir(bare, {recursive: true});
    await writeFile(path.join(bare, 'model.onnx'), await readFile(path.join(FIXTURES, 'tiny-resnet.onnx')));
    expect(() => resolveBackboneFiles(path.join(bare, 'model.onnx'))).toThrow(expect.objectContaining({code: 'MODEL_PREPROCESSOR_MISSING', exitCode: 2}));
    expect(() => resolveBackboneFiles(bare)).toThrow(expect.objectContaining({code: 'MODEL_PREPROCESSOR_MISSING', exitCode: 2}));
  });
});

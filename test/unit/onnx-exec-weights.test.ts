import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {readOnnxModel} from '../../src/lib/onnx/decode.js';
import {encodeOnnxModel, type OnnxModelSpec} from '../../src/lib/onnx/model.js';
import {TrainableGraph} from '../../src/lib/onnx-exec/trainable-graph.js';
import {assignOptimizer, assignTrainable, readOptimizer, readTrainable, withTrainedInitializers} from '../../src/lib/onnx-exec/weights.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {readCheckpoint, writeCheckpoint, type TrainerState} from '../../src/lib/train/checkpoint.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {resnetGraph} from '../helpers/onnx-graphs.js';

const fixture = (file: string): string => fileURLToPath(new URL(`../fixtures/models/${file}`, import.meta.url));
let dir: string;

function batchOf(size: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  return Float32Array.from({length: 4 * 3 * size * size}, () => rng.normal());
}

async function steps(graph: TrainableGraph, optimizer: tf.Optimizer, size: number, from: number, to: number): Promise<void> {
  const labels = tf.oneHot(tf.tensor1d([0, 1, 1, 0], 'int32'), 2);
  for (let s = from; s < to; s++) {
    const feeds = await graph.prefix(tf, batchOf(size, s), [4, 3, size, size]);
    tf.dispose(optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, graph.forward(feeds)) as tf.Scalar, false, [...graph.variables.values()]) ?? []);
    tf.dispose(Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor));
  }
  labels.dispose();
}

describe('fine-tuned values by ONNX name: checkpoint, resume, export', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
    dir = await mkdtemp(path.join(os.tmpdir(), 'natix-onnx-exec-'));
  });
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('resuming from a checkpoint (trainable initializers + Adam state by ONNX name) ends bit-identical', async () => {
    const spec = resnetGraph({image: 32, widths: [8, 16], blocks: [1, 1], classes: 2});
    const straight = await TrainableGraph.create(tf, spec, {train: {last: 1}, model: 'resnet', device: 'cpu'});
    const optA = tf.train.adam(1e-2);
    await steps(straight, optA, 32, 0, 5);
    const expected = await readTrainable(straight.variables);

    const first = await TrainableGraph.create(tf, spec, {train: {last: 1}, model: 'resnet', device: 'cpu'});
    const optB = tf.train.adam(1e-2);
    await steps(first, optB, 32, 0, 3);
    // A complete state, as the trainer writes it: readCheckpoint validates it against the train-state schema.
    const state: TrainerState = {epoch: 0, stepInEpoch: 3, step: 3, rng: {seed: 1, scheme: 'seed-epoch-index'}, best: {metric: 'val_mcc', value: null, epoch: null}, history: [], epochsPlanned: 1, natixVersion: '0.0.0', backend: 'cpu'};
    const written = await writeCheckpoint(dir, await readTrainable(first.variables), await readOptimizer(optB, first.variables), state);
    expect((await readOptimizer(optB, first.variables)).every((a) => a.name === 'iter' || a.name.startsWith('onnx:'))).toBe(true);

    // A fresh process would create fresh variables with other TF.js names: the ONNX names map them back.
    const checkpoint = await readCheckpoint(written);
    const resumed = await TrainableGraph.create(tf, spec, {train: {last: 1}, model: 'resnet', device: 'cpu'});
    const optC = tf.train.adam(1e-2);
    assignTrainable(tf, resumed.variables, checkpoint.weights);
    await assignOptimizer(tf, optC, resumed.variables, checkpoint.optimizer);
    await steps(resumed, optC, 32, 3, 5);
    const got = await readTrainable(resumed.variables);
    expect(got.map((a) => a.name)).toEqual(expected.map((a) => a.name));
    got.forEach((a, i) => expect(Buffer.from(a.data.buffer).equals(Buffer.from(expected[i]!.data.buffer)), a.name).toBe(true));
    for (const g of [straight, first, resumed]) await g.dispose();
    [optA, optB, optC].forEach((o) => o.dispose());
  });

  it('export: the original torch-exported graph with trained initializers replaced by name matches the TF.js path on logits', async () => {
    const {spec} = await readOnnxModel(fixture('tiny-vit/model.onnx'));
    const graph = await TrainableGraph.create(tf, spec, {train: {last: 1}, model: 'tiny-vit', device: 'cpu'});
    const optimizer = tf.train.adam(1e-2);
    // Train the tail's output (pooler_output is the second output; the tail computes the first) towards a target.
    const target = tf.randomNormal([4, 17, 32], 0, 1, 'float32', 5);
    const feeds = await graph.prefix(tf, batchOf(32, 7), [4, 3, 32, 32]);
    for (let s = 0; s < 3; s++) tf.dispose(optimizer.minimize(() => tf.mean(tf.square(tf.sub(graph.forward(feeds), target))) as tf.Scalar, false, [...graph.variables.values()]) ?? []);
    const exported: OnnxModelSpec = withTrainedInitializers(spec, await readTrainable(graph.variables));
    const session = await ort.InferenceSession.create(encodeOnnxModel(exported));
    const original = await ort.InferenceSession.create(encodeOnnxModel(spec));
    const data = batchOf(32, 7);
    const input = {pixel_values: new ort.Tensor('float32', data, [4, 3, 32, 32])};
    const onnx = (await session.run(input))[graph.output]!.data as Float32Array;
    const before = (await original.run(input))[graph.output]!.data as Float32Array;
    const mine = (await graph.forward(feeds).data()) as Float32Array;
    const maxDiff = (a: Float32Array, b: Float32Array): number => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));
    expect(maxDiff(onnx, mine)).toBeLessThan(1e-4);
    expect(maxDiff(onnx, before)).toBeGreaterThan(1e-3); // training changed the exported model
    expect(exported.nodes.length).toBeLessThanOrEqual(spec.nodes.length); // same graph (shared parameters untied)
    await session.release();
    await original.release();
    tf.dispose([target, ...Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor)]);
    optimizer.dispose();
    await graph.dispose();
  });
});

import * as tf from '@tensorflow/tfjs';
import {beforeAll, describe, expect, it} from 'vitest';
import {TrainableGraph, type TrainSelection} from '../../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {stripesBackbone} from '../helpers/stripes-backbone.js';

function stripes(n: number, seed: number): {x: Float32Array; y: number[]} {
  const rng = new SeededRandom(seed);
  const x = new Float32Array(n * 64);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const phase = rng.int(2);
    for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) x[i * 64 + r * 8 + c] = ((label === 0 ? r : c) + phase) % 2 === 0 ? 1 + 0.1 * rng.normal() : 0.1 * rng.normal();
    y.push(label);
  }
  return {x, y};
}

async function accuracyAfterTraining(train: TrainSelection): Promise<number> {
  const graph = await TrainableGraph.create(tf, stripesBackbone(1), {train, model: 'stripes', device: 'cpu'});
  const optimizer = tf.train.adam(0.05);
  const data = stripes(64, 1);
  const labels = tf.oneHot(tf.tensor1d(data.y, 'int32'), 2);
  const feeds = await graph.prefix(tf, data.x, [64, 1, 8, 8]);
  for (let step = 0; step < 80; step++) tf.dispose(optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, graph.forward(feeds)) as tf.Scalar, false, [...graph.variables.values()]) ?? []);
  const test = stripes(200, 2);
  const testFeeds = await graph.prefix(tf, test.x, [200, 1, 8, 8]);
  const predicted = (await graph.forward(testFeeds).argMax(1).data()) as Int32Array;
  const accuracy = test.y.filter((l, i) => predicted[i] === l).length / test.y.length;
  tf.dispose([labels, ...[...Object.values(feeds), ...Object.values(testFeeds)].filter((f): f is tf.Tensor => f instanceof tf.Tensor)]);
  optimizer.dispose();
  await graph.dispose();
  return accuracy;
}

describe('last:N adapts features a frozen backbone cannot', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });

  it('stripes orientation: head-only stays near chance, last:1 learns it', async () => {
    const headOnly = await accuracyAfterTraining({from: 'features'});
    const lastBlock = await accuracyAfterTraining({last: 1});
    expect(headOnly).toBeLessThan(0.7);
    expect(lastBlock).toBeGreaterThan(0.95);
  });
});

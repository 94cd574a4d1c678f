import * as tf from '@tensorflow/tfjs';
import {beforeAll, describe, expect, it} from 'vitest';
import {floatTensor, type OnnxModelSpec} from '../../src/lib/onnx/model.js';
import {TrainableGraph, type TrainSelection} from '../../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';

/**
 * A backbone whose last block discards what the task needs: the stem computes horizontal-edge, vertical-edge and
 * two blur channels; the last block's 1x1 convolution passes only the blur channels before global pooling. The
 * classes (horizontal vs vertical stripes, same mean brightness) differ only in the edge channels, so a head on the
 * frozen features cannot separate them, while training the last block can.
 */
function backbone(): OnnxModelSpec {
  const edgeH = [-1, -1, -1, 2, 2, 2, -1, -1, -1];
  const edgeV = [-1, 2, -1, -1, 2, -1, -1, 2, -1];
  const blur = new Array<number>(9).fill(1 / 9);
  const mix = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0.5, 0.5, 0, 0, 0.5, -0.5]; // [out 4][in 4]: no edge channel reaches the features
  return {
    graphName: 'stripes-backbone',
    opset: 13,
    inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', 1, 8, 8]}],
    outputs: [{name: 'logits', type: 'float', shape: ['batch', 2]}],
    initializers: [floatTensor('stem.weight', [4, 1, 3, 3], [...edgeH, ...edgeV, ...blur, ...blur]), floatTensor('blocks.0.conv.weight', [4, 4, 1, 1], mix), floatTensor('blocks.0.conv.bias', [4], [0.1, 0.1, 0.1, 0.1]), floatTensor('head.weight', [2, 4], [0.1, -0.1, 0.05, 0.02, -0.03, 0.04, 0.1, -0.1]), floatTensor('head.bias', [2], [0, 0])],
    nodes: [
      {name: '/stem/Conv', opType: 'Conv', inputs: ['pixel_values', 'stem.weight'], outputs: ['stem_conv'], attributes: {pads: [1, 1, 1, 1]}},
      {name: '/stem/Relu', opType: 'Relu', inputs: ['stem_conv'], outputs: ['stem']},
      {name: '/blocks/blocks.0/conv/Conv', opType: 'Conv', inputs: ['stem', 'blocks.0.conv.weight', 'blocks.0.conv.bias'], outputs: ['b0']},
      {name: '/blocks/blocks.0/Relu', opType: 'Relu', inputs: ['b0'], outputs: ['b0r']},
      {name: '/blocks/blocks.0/pool/GlobalAveragePool', opType: 'GlobalAveragePool', inputs: ['b0r'], outputs: ['pooled']},
      {name: '/Flatten', opType: 'Flatten', inputs: ['pooled'], outputs: ['features']},
      {name: '/head/Gemm', opType: 'Gemm', inputs: ['features', 'head.weight', 'head.bias'], outputs: ['logits'], attributes: {transB: 1}},
    ],
  };
}

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
  const graph = await TrainableGraph.create(tf, backbone(), {train, model: 'stripes', device: 'cpu'});
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

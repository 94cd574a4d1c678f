/**
 * TrainableGraph when the cut cannot be made cleanly: a frozen prefix that onnxruntime refuses to load (here its
 * boundary carries a bool mask, declared float in the prefix model) runs on TF.js instead, says why, and still
 * computes the whole model exactly, with gradients for the tail only.
 */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import {beforeAll, describe, expect, it} from 'vitest';
import {encodeOnnxModel, floatTensor, int64Tensor, type OnnxModelSpec} from '../../src/lib/onnx/model.js';
import {TrainableGraph} from '../../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';

function maskedModel(): OnnxModelSpec {
  return {
    graphName: 'masked',
    opset: 13,
    inputs: [{name: 'x', type: 'float', shape: ['batch', 3, 4, 4]}],
    outputs: [{name: 'out', type: 'float', shape: ['batch', 3]}],
    initializers: [floatTensor('stem.scale', [1, 3, 1, 1], [1.5, -0.5, 2]), floatTensor('zero', [], [0]), floatTensor('tail.weight', [1, 3, 1, 1], [0.3, 0.7, -1.1]), int64Tensor('axes', [2], [2, 3])],
    nodes: [
      {name: '/stem/Mul', opType: 'Mul', inputs: ['x', 'stem.scale'], outputs: ['s']},
      {name: '/stem/Relu', opType: 'Relu', inputs: ['s'], outputs: ['r']},
      {name: '/mask/Greater', opType: 'Greater', inputs: ['x', 'zero'], outputs: ['mask']},
      {name: '/tail/Mul', opType: 'Mul', inputs: ['r', 'tail.weight'], outputs: ['y']},
      {name: '/tail/Where', opType: 'Where', inputs: ['mask', 'y', 'zero'], outputs: ['z']},
      {name: '/tail/ReduceMean', opType: 'ReduceMean', inputs: ['z'], outputs: ['out'], attributes: {axes: {ints: [2, 3]}, keepdims: 0}},
    ],
  };
}

describe('TrainableGraph fallback', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });

  it('a prefix onnxruntime will not load runs on TF.js, with the reason, and equals the whole model', async () => {
    const spec = maskedModel();
    const graph = await TrainableGraph.create(tf, spec, {train: {from: 'r'}, model: 'masked.onnx', device: 'cpu'});
    expect(graph.cut.boundary).toEqual(['r', 'mask']);
    expect(graph.prefixDevice).toBe('tfjs');
    expect(graph.fallbackReason).toMatch(/onnxruntime could not run the frozen prefix cut at "r" \(.+\); it runs on TF\.js/);
    expect([...graph.variables.keys()]).toEqual(['tail.weight']);
    const rng = new SeededRandom(3);
    const x = Float32Array.from({length: 2 * 3 * 16}, () => rng.normal());
    const session = await ort.InferenceSession.create(encodeOnnxModel(spec));
    const expected = (await session.run({x: new ort.Tensor('float32', x, [2, 3, 4, 4])})).out!.data as Float32Array;
    await session.release();
    const feeds = await graph.prefix(tf, x, [2, 3, 4, 4]);
    const got = graph.forward(feeds);
    const values = (await got.data()) as Float32Array;
    values.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));
    const {grads} = tf.variableGrads(() => tf.sum(graph.forward(feeds)) as tf.Scalar, [...graph.variables.values()]);
    expect(Object.keys(grads)).toHaveLength(1);
    tf.dispose([got, ...Object.values(grads), ...Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor)]);
    await graph.dispose();
  });
});

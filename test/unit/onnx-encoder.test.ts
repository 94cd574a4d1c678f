import * as ort from 'onnxruntime-node';
import {describe, expect, it} from 'vitest';
import {encodeOnnxModel, floatTensor, int64Tensor} from '../../src/lib/onnx/model.js';

describe('ONNX encoder', () => {
  it('builds a Gemm + Sigmoid model whose output onnxruntime computes as by hand', async () => {
    const bytes = encodeOnnxModel({
      inputs: [{name: 'x', type: 'float', shape: ['batch', 3]}],
      outputs: [{name: 'y', type: 'float', shape: ['batch', 1]}],
      initializers: [floatTensor('w', [3, 1], [0.5, -1, 2]), floatTensor('b', [1], [0.25])],
      nodes: [
        {opType: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['z'], attributes: {alpha: {float: 1}, transB: 0}},
        {opType: 'Sigmoid', inputs: ['z'], outputs: ['y']},
      ],
    });
    const session = await ort.InferenceSession.create(bytes);
    const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, -1, 0, 0.5]), [2, 3]);
    const out = await session.run({x});
    const y = out.y!.data as Float32Array;
    const sig = (v: number): number => 1 / (1 + Math.exp(-v));
    expect(y[0]).toBeCloseTo(sig(0.5 - 2 + 6 + 0.25), 6);
    expect(y[1]).toBeCloseTo(sig(-0.5 + 0 + 1 + 0.25), 6);
  });

  it('encodes int attributes, negative ints and int64 initializers (Reshape, ReduceMean)', async () => {
    const bytes = encodeOnnxModel({
      inputs: [{name: 'x', type: 'float', shape: [1, 2, 2, 3]}],
      outputs: [{name: 'y', type: 'float', shape: [1, 3]}],
      initializers: [int64Tensor('shape', [2], [1, -1])],
      nodes: [
        {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [1, 2], keepdims: 0}},
        {opType: 'Reshape', inputs: ['m', 'shape'], outputs: ['y']},
      ],
    });
    const session = await ort.InferenceSession.create(bytes);
    const data = Float32Array.from({length: 12}, (_, i) => i);
    const out = await session.run({x: new ort.Tensor('float32', data, [1, 2, 2, 3])});
    expect(Array.from(out.y!.data as Float32Array)).toEqual([4.5, 5.5, 6.5]);
  });
});

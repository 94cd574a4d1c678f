/** The benches' stand-in model: a small but real conv net at 224x224 (~0.35 GMAC: 4 convs, global pooling, a linear head; a few ms on CPU). */
import {encodeOnnxModel, floatTensor} from '../src/lib/onnx/model.js';
import type {SeededRandom} from '../src/lib/util/random.js';

/** Weights drawn from `rng` (normal, std 0.1), so each bench keeps its own seeded sequence. */
export function benchConvNet(rng: SeededRandom): Uint8Array {
  const w = (n: number): number[] => Array.from({length: n}, () => rng.normal(0, 0.1));
  return encodeOnnxModel({
    inputs: [{name: 'pixel_values', type: 'float', shape: [1, 3, 224, 224]}],
    outputs: [{name: 'logits', type: 'float', shape: [1, 2]}],
    initializers: [
      floatTensor('w1', [24, 3, 3, 3], w(24 * 27)),
      floatTensor('w2', [48, 24, 3, 3], w(48 * 216)),
      floatTensor('w3', [96, 48, 3, 3], w(96 * 432)),
      floatTensor('w4', [128, 96, 3, 3], w(128 * 864)),
      floatTensor('fc', [2, 128], w(256)),
    ],
    nodes: [
      {opType: 'Conv', inputs: ['pixel_values', 'w1'], outputs: ['c1'], attributes: {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]}},
      {opType: 'Relu', inputs: ['c1'], outputs: ['r1']},
      {opType: 'Conv', inputs: ['r1', 'w2'], outputs: ['c2'], attributes: {kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1]}},
      {opType: 'Relu', inputs: ['c2'], outputs: ['r2']},
      {opType: 'Conv', inputs: ['r2', 'w3'], outputs: ['c3'], attributes: {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]}},
      {opType: 'Relu', inputs: ['c3'], outputs: ['r3']},
      {opType: 'Conv', inputs: ['r3', 'w4'], outputs: ['c4'], attributes: {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]}},
      {opType: 'Relu', inputs: ['c4'], outputs: ['r4']},
      {opType: 'GlobalAveragePool', inputs: ['r4'], outputs: ['g']},
      {opType: 'Flatten', inputs: ['g'], outputs: ['f']},
      {opType: 'Gemm', inputs: ['f', 'fc'], outputs: ['logits'], attributes: {transB: 1}},
    ],
  });
}

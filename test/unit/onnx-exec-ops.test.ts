import * as tf from '@tensorflow/tfjs';
import {beforeAll, describe, expect, it} from 'vitest';
import {floatTensor, int64Tensor, type OnnxNode, type OnnxTensor} from '../../src/lib/onnx/model.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {compareWithOrt, gradientError, randomValues, type OpCase} from '../helpers/onnx-exec.js';

const rng = new SeededRandom(7);
const w = (name: string, dims: number[], scale = 0.5): OnnxTensor => floatTensor(name, dims, randomValues(rng, dims.reduce((a, b) => a * b, 1), scale));
const positive = (name: string, dims: number[]): OnnxTensor => floatTensor(name, dims, randomValues(rng, dims.reduce((a, b) => a * b, 1)).map((v) => 0.5 + Math.abs(v)));
const x4 = (dims = [2, 3, 7, 6]) => [{name: 'x', dims}];
const unaryCase = (opType: string, attributes?: OnnxNode['attributes'], opset?: number, dims = [2, 3, 4]): OpCase => ({
  name: opType,
  nodes: [{opType, inputs: ['x'], outputs: ['y'], attributes}],
  inputs: [{name: 'x', dims}],
  outputs: ['y'],
  opset,
});

/** Each op in isolation and in the layouts it meets (NHWC-held after a Conv, plain otherwise). */
const CASES: OpCase[] = [
  {name: 'Conv 3x3 pad 1 + bias', nodes: [{opType: 'Conv', inputs: ['x', 'W', 'B'], outputs: ['y'], attributes: {pads: [1, 1, 1, 1], kernel_shape: [3, 3]}}], inputs: x4(), initializers: [w('W', [4, 3, 3, 3]), w('B', [4])], outputs: ['y']},
  {name: 'Conv stride 2 asymmetric pads', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['y'], attributes: {pads: [0, 1, 1, 2], strides: [2, 2]}}], inputs: x4(), initializers: [w('W', [5, 3, 3, 3])], outputs: ['y']},
  {name: 'Conv dilation 2', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['y'], attributes: {pads: [2, 2, 2, 2], dilations: [2, 2]}}], inputs: x4([1, 3, 9, 8]), initializers: [w('W', [2, 3, 3, 3])], outputs: ['y']},
  {name: 'Conv depthwise (group = C, multiplier 2)', nodes: [{opType: 'Conv', inputs: ['x', 'W', 'B'], outputs: ['y'], attributes: {group: 3, pads: [1, 1, 1, 1], strides: [2, 2]}}], inputs: x4(), initializers: [w('W', [6, 1, 3, 3]), w('B', [6])], outputs: ['y']},
  {name: 'Conv grouped (2 groups)', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['y'], attributes: {group: 2}}], inputs: x4([1, 4, 5, 5]), initializers: [w('W', [6, 2, 1, 1])], outputs: ['y']},
  {name: 'Conv auto_pad SAME_UPPER stride 2 (patch embedding style 4x4/4)', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['c'], attributes: {auto_pad: 'SAME_UPPER', strides: [2, 2], kernel_shape: [3, 3]}}, {opType: 'Conv', inputs: ['x', 'P'], outputs: ['p'], attributes: {strides: [4, 4], kernel_shape: [4, 4]}}], inputs: x4([1, 3, 8, 8]), initializers: [w('W', [2, 3, 3, 3]), w('P', [5, 3, 4, 4])], outputs: ['c', 'p']},
  {name: 'Gemm transB alpha beta', nodes: [{opType: 'Gemm', inputs: ['x', 'W', 'B'], outputs: ['y'], attributes: {transB: 1, alpha: 0.5, beta: {float: 2}}}], inputs: [{name: 'x', dims: [3, 5]}], initializers: [w('W', [4, 5]), w('B', [4])], outputs: ['y']},
  {name: 'MatMul [B,T,D]x[D,E] and batched attention', nodes: [{opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y']}, {opType: 'Reshape', inputs: ['y', 's'], outputs: ['h']}, {opType: 'Transpose', inputs: ['h'], outputs: ['q'], attributes: {perm: [0, 2, 1, 3]}}, {opType: 'Transpose', inputs: ['h'], outputs: ['k'], attributes: {perm: [0, 2, 3, 1]}}, {opType: 'MatMul', inputs: ['q', 'k'], outputs: ['a']}], inputs: [{name: 'x', dims: [2, 5, 6]}], initializers: [w('W', [6, 8]), int64Tensor('s', [4], [2, 5, 2, 4])], outputs: ['y', 'a']},
  {name: 'MatMul broadcast batch', nodes: [{opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y']}], inputs: [{name: 'x', dims: [2, 1, 3, 4]}], initializers: [w('W', [3, 4, 5])], outputs: ['y']},
  {
    name: 'elementwise on a Conv output: Add [C,1,1], Mul scalar, Sub, Div, Pow 2, Sqrt, Erf',
    nodes: [
      {opType: 'Conv', inputs: ['x', 'W'], outputs: ['c']},
      {opType: 'Add', inputs: ['c', 'b'], outputs: ['a']},
      {opType: 'Mul', inputs: ['a', 'k'], outputs: ['m']},
      {opType: 'Sub', inputs: ['m', 'x2'], outputs: ['s']},
      {opType: 'Div', inputs: ['s', 'd'], outputs: ['q']},
      {opType: 'Pow', inputs: ['q', 'two'], outputs: ['p']},
      {opType: 'Add', inputs: ['p', 'k'], outputs: ['p1']},
      {opType: 'Sqrt', inputs: ['p1'], outputs: ['r']},
      {opType: 'Erf', inputs: ['q'], outputs: ['e']},
      {opType: 'Add', inputs: ['r', 'e'], outputs: ['y']},
    ],
    inputs: [{name: 'x', dims: [2, 3, 5, 5]}, {name: 'x2', dims: [4, 5, 5]}],
    initializers: [w('W', [4, 3, 1, 1]), w('b', [4, 1, 1]), floatTensor('k', [], [1.5]), positive('d', [1, 4, 1, 5]), floatTensor('two', [], [2])],
    outputs: ['y'],
  },
  {
    name: 'unary math: Neg Exp Log Abs Reciprocal Floor Ceil Pow 3, Max/Min/Sum, comparisons + Where',
    nodes: [
      {opType: 'Abs', inputs: ['x'], outputs: ['a']},
      {opType: 'Log', inputs: ['a'], outputs: ['l']},
      {opType: 'Neg', inputs: ['l'], outputs: ['n']},
      {opType: 'Exp', inputs: ['n'], outputs: ['e']},
      {opType: 'Reciprocal', inputs: ['e'], outputs: ['r']},
      {opType: 'Floor', inputs: ['x'], outputs: ['f']},
      {opType: 'Ceil', inputs: ['x'], outputs: ['c']},
      {opType: 'Pow', inputs: ['x', 'three'], outputs: ['p']},
      {opType: 'Max', inputs: ['r', 'f', 'p'], outputs: ['mx']},
      {opType: 'Min', inputs: ['c', 'x'], outputs: ['mn']},
      {opType: 'Sum', inputs: ['mx', 'mn', 'x'], outputs: ['sm']},
      {opType: 'Greater', inputs: ['x', 'zero'], outputs: ['g']},
      {opType: 'Where', inputs: ['g', 'sm', 'zero'], outputs: ['y']},
    ],
    inputs: [{name: 'x', dims: [3, 4]}],
    initializers: [floatTensor('three', [], [3]), floatTensor('zero', [], [0])],
    outputs: ['y'],
  },
  unaryCase('Relu'),
  unaryCase('LeakyRelu', {alpha: {float: 0.2}}),
  unaryCase('Sigmoid'),
  unaryCase('Tanh'),
  unaryCase('HardSigmoid', {alpha: {float: 0.25}, beta: {float: 0.4}}),
  unaryCase('HardSwish', undefined, 14),
  unaryCase('Elu'),
  unaryCase('Softplus'),
  unaryCase('Softmax'),
  unaryCase('Softmax', {axis: 1}),
  unaryCase('Softmax', {axis: 1}, 11),
  unaryCase('LogSoftmax'),
  unaryCase('Gelu', undefined, 20),
  unaryCase('Gelu', {approximate: 'tanh'}, 20),
  {name: 'Clip (inputs) and Relu6', nodes: [{opType: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['a']}, {opType: 'Clip', inputs: ['x', 'zero', 'six'], outputs: ['b']}, {opType: 'Clip', inputs: ['x', '', 'hi'], outputs: ['c']}], inputs: [{name: 'x', dims: [4, 6], values: randomValues(rng, 24, 5)}], initializers: [floatTensor('lo', [], [-0.5]), floatTensor('hi', [], [0.7]), floatTensor('zero', [], [0]), floatTensor('six', [], [6])], outputs: ['a', 'b', 'c']},
  {name: 'LayerNormalization (opset 17)', nodes: [{opType: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['y'], attributes: {epsilon: {float: 1e-6}}}], inputs: [{name: 'x', dims: [2, 5, 8]}], initializers: [w('g', [8]), w('b', [8])], outputs: ['y'], opset: 17},
  {
    name: 'LayerNorm decomposed as torch < 2 exports it',
    nodes: [
      {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [-1]}},
      {opType: 'Sub', inputs: ['x', 'm'], outputs: ['d']},
      {opType: 'Pow', inputs: ['d', 'two'], outputs: ['p']},
      {opType: 'ReduceMean', inputs: ['p'], outputs: ['v'], attributes: {axes: [-1]}},
      {opType: 'Add', inputs: ['v', 'eps'], outputs: ['ve']},
      {opType: 'Sqrt', inputs: ['ve'], outputs: ['s']},
      {opType: 'Div', inputs: ['d', 's'], outputs: ['n']},
      {opType: 'Mul', inputs: ['n', 'g'], outputs: ['ng']},
      {opType: 'Add', inputs: ['ng', 'b'], outputs: ['y']},
    ],
    inputs: [{name: 'x', dims: [2, 5, 8]}],
    initializers: [floatTensor('two', [], [2]), floatTensor('eps', [], [1e-5]), w('g', [8]), w('b', [8])],
    outputs: ['y'],
  },
  {name: 'BatchNormalization after Conv (NHWC-held) and on a plain input', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['c']}, {opType: 'BatchNormalization', inputs: ['c', 'g', 'b', 'm', 'v'], outputs: ['y']}, {opType: 'BatchNormalization', inputs: ['x', 'g3', 'b3', 'm3', 'v3'], outputs: ['z'], attributes: {epsilon: {float: 1e-3}}}], inputs: x4(), initializers: [w('W', [4, 3, 1, 1]), w('g', [4]), w('b', [4]), w('m', [4]), positive('v', [4]), w('g3', [3]), w('b3', [3]), w('m3', [3]), positive('v3', [3])], outputs: ['y', 'z']},
  {name: 'ReduceMean/ReduceSum/ReduceMax on NHWC-held and plain values', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['c']}, {opType: 'ReduceMean', inputs: ['c'], outputs: ['a'], attributes: {axes: [2, 3], keepdims: 0}}, {opType: 'ReduceSum', inputs: ['c', 'ax1'], outputs: ['b'], attributes: {keepdims: 1}}, {opType: 'ReduceMax', inputs: ['x'], outputs: ['d'], attributes: {axes: [1], keepdims: 0}}, {opType: 'ReduceMean', inputs: ['c'], outputs: ['e'], attributes: {axes: [1, 3], keepdims: 0}}], inputs: x4(), initializers: [w('W', [4, 3, 1, 1]), int64Tensor('ax1', [1], [1])], outputs: ['a', 'b', 'd', 'e']},
  {name: 'ReduceMean axes as input (opset 18)', nodes: [{opType: 'ReduceMean', inputs: ['x', 'axes'], outputs: ['y'], attributes: {keepdims: 1}}], inputs: [{name: 'x', dims: [2, 3, 4]}], initializers: [int64Tensor('axes', [1], [-1])], outputs: ['y'], opset: 18},
  {name: 'GlobalAveragePool / GlobalMaxPool + Flatten', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['c']}, {opType: 'GlobalAveragePool', inputs: ['c'], outputs: ['g']}, {opType: 'Flatten', inputs: ['g'], outputs: ['y']}, {opType: 'GlobalMaxPool', inputs: ['x'], outputs: ['z']}], inputs: x4(), initializers: [w('W', [4, 3, 1, 1])], outputs: ['y', 'z']},
  {name: 'MaxPool 3x3/2 pad 1 (ResNet stem)', nodes: [{opType: 'MaxPool', inputs: ['x'], outputs: ['y'], attributes: {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]}}], inputs: x4([2, 3, 9, 8]), outputs: ['y']},
  {name: 'MaxPool ceil_mode', nodes: [{opType: 'MaxPool', inputs: ['x'], outputs: ['y'], attributes: {kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1}}], inputs: x4([1, 2, 7, 5]), outputs: ['y']},
  {name: 'AveragePool pads, count_include_pad 0 and 1', nodes: [{opType: 'AveragePool', inputs: ['x'], outputs: ['a'], attributes: {kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1]}}, {opType: 'AveragePool', inputs: ['x'], outputs: ['b'], attributes: {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1}}, {opType: 'AveragePool', inputs: ['x'], outputs: ['c'], attributes: {kernel_shape: [2, 2], strides: [2, 2]}}], inputs: x4([1, 2, 7, 6]), outputs: ['a', 'b', 'c']},
  {
    name: 'shape sub-graph: Shape -> Gather -> Unsqueeze -> Concat -> Reshape (ViT flatten of patches)',
    nodes: [
      {opType: 'Conv', inputs: ['x', 'W'], outputs: ['c'], attributes: {strides: [2, 2], kernel_shape: [2, 2]}},
      {opType: 'Shape', inputs: ['c'], outputs: ['shape']},
      {opType: 'Gather', inputs: ['shape', 'zero'], outputs: ['batch'], attributes: {axis: 0}},
      {opType: 'Gather', inputs: ['shape', 'one'], outputs: ['channels'], attributes: {axis: 0}},
      {opType: 'Unsqueeze', inputs: ['batch', 'axes0'], outputs: ['b1']},
      {opType: 'Unsqueeze', inputs: ['channels', 'axes0'], outputs: ['c1']},
      {opType: 'Concat', inputs: ['b1', 'c1', 'minus1'], outputs: ['target'], attributes: {axis: 0}},
      {opType: 'Reshape', inputs: ['c', 'target'], outputs: ['flat']},
      {opType: 'Transpose', inputs: ['flat'], outputs: ['y'], attributes: {perm: [0, 2, 1]}},
    ],
    inputs: x4([2, 3, 8, 6]),
    initializers: [w('W', [5, 3, 2, 2]), int64Tensor('zero', [], [0]), int64Tensor('one', [], [1]), int64Tensor('axes0', [1], [0]), int64Tensor('minus1', [1], [-1])],
    outputs: ['y', 'shape'],
  },
  {
    name: 'CLS token: Expand + Concat, Add position embedding, Gather token 0, Slice tokens 1:, Squeeze',
    nodes: [
      {opType: 'Shape', inputs: ['x'], outputs: ['s']},
      {opType: 'Slice', inputs: ['s', 'zero1', 'one1'], outputs: ['b']},
      {opType: 'Concat', inputs: ['b', 'minus11'], outputs: ['es'], attributes: {axis: 0}},
      {opType: 'Expand', inputs: ['cls', 'es'], outputs: ['clsb']},
      {opType: 'Concat', inputs: ['clsb', 'x'], outputs: ['t'], attributes: {axis: 1}},
      {opType: 'Add', inputs: ['t', 'pos'], outputs: ['tp']},
      {opType: 'Gather', inputs: ['tp', 'zero'], outputs: ['first'], attributes: {axis: 1}},
      {opType: 'Slice', inputs: ['tp', 'one1', 'big', 'one1'], outputs: ['rest']},
      {opType: 'Slice', inputs: ['tp', 'neg1', 'negbig', 'neg1', 'neg1'], outputs: ['rev']},
      {opType: 'Unsqueeze', inputs: ['first', 'one1'], outputs: ['u']},
      {opType: 'Squeeze', inputs: ['u', 'one1'], outputs: ['y']},
    ],
    inputs: [{name: 'x', dims: [2, 4, 6]}],
    initializers: [w('cls', [1, 1, 6]), w('pos', [1, 5, 6]), int64Tensor('zero', [], [0]), int64Tensor('zero1', [1], [0]), int64Tensor('one1', [1], [1]), int64Tensor('minus11', [2], [1, 1]), int64Tensor('big', [1], [9223372036854775807n as unknown as number]), int64Tensor('neg1', [1], [-1]), int64Tensor('negbig', [1], [-100])],
    outputs: ['y', 'rest', 'rev'],
  },
  {name: 'Gather non-contiguous / negative indices; Split; Slice with step 2 on NHWC-held', nodes: [{opType: 'Gather', inputs: ['x', 'idx'], outputs: ['g'], attributes: {axis: 2}}, {opType: 'Split', inputs: ['x', 'sizes'], outputs: ['s1', 's2'], attributes: {axis: 1}}, {opType: 'Conv', inputs: ['x', 'W'], outputs: ['c']}, {opType: 'Slice', inputs: ['c', 'st', 'en', 'ax', 'steps'], outputs: ['sl']}], inputs: x4([2, 3, 6, 5]), initializers: [int64Tensor('idx', [2, 2], [3, -1, 0, 3]), int64Tensor('sizes', [2], [1, 2]), w('W', [4, 3, 1, 1]), int64Tensor('st', [2], [1, 0]), int64Tensor('en', [2], [4, 5]), int64Tensor('ax', [2], [1, 2]), int64Tensor('steps', [2], [2, 2])], outputs: ['g', 's1', 's2', 'sl']},
  {name: 'Transpose of a Conv output, Concat on channels of NHWC-held values', nodes: [{opType: 'Conv', inputs: ['x', 'W'], outputs: ['c']}, {opType: 'Conv', inputs: ['x', 'W2'], outputs: ['d'], attributes: {pads: [1, 1, 1, 1]}}, {opType: 'Concat', inputs: ['c', 'd'], outputs: ['cat'], attributes: {axis: 1}}, {opType: 'Transpose', inputs: ['cat'], outputs: ['t'], attributes: {perm: [0, 2, 3, 1]}}, {opType: 'Transpose', inputs: ['c'], outputs: ['u'], attributes: {perm: [3, 1, 0, 2]}}], inputs: x4(), initializers: [w('W', [4, 3, 1, 1]), w('W2', [2, 3, 3, 3])], outputs: ['t', 'u']},
  {
    name: 'Constant, ConstantOfShape, Range, Equal, Where, Cast, Identity, Dropout, Size',
    nodes: [
      {opType: 'Constant', inputs: [], outputs: ['k'], attributes: {value: floatTensor('k', [4], [1, 2, 3, 4])}},
      {opType: 'Constant', inputs: [], outputs: ['n'], attributes: {value_int: 4}},
      {opType: 'Shape', inputs: ['x'], outputs: ['s']},
      {opType: 'ConstantOfShape', inputs: ['s'], outputs: ['ones'], attributes: {value: floatTensor('v', [1], [1])}},
      {opType: 'Range', inputs: ['zero', 'n', 'one'], outputs: ['r']},
      {opType: 'Equal', inputs: ['r', 'two'], outputs: ['eq']},
      {opType: 'Cast', inputs: ['r'], outputs: ['rf'], attributes: {to: 1}},
      {opType: 'Where', inputs: ['eq', 'rf', 'k0'], outputs: ['w']},
      {opType: 'Identity', inputs: ['x'], outputs: ['xi']},
      {opType: 'Dropout', inputs: ['xi'], outputs: ['xd']},
      {opType: 'Add', inputs: ['xd', 'ones'], outputs: ['a']},
      {opType: 'Mul', inputs: ['a', 'w'], outputs: ['y']},
      {opType: 'Cast', inputs: ['x'], outputs: ['xint'], attributes: {to: 7}},
      {opType: 'Size', inputs: ['x'], outputs: ['size']},
      {opType: 'Add', inputs: ['y', 'k'], outputs: ['z']},
    ],
    inputs: [{name: 'x', dims: [3, 4]}],
    initializers: [int64Tensor('zero', [], [0]), int64Tensor('one', [], [1]), int64Tensor('two', [], [2]), floatTensor('k0', [], [-1])],
    outputs: ['z', 'xint', 'size', 'eq'],
  },
];

describe('ONNX executor ops: forward against onnxruntime (wasm backend, within 1e-5)', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });
  for (const c of CASES) {
    it(`${c.name} (${c.nodes.map((n) => n.opType).join(' ')})`, async () => {
      const {maxDiff, maxAbs} = await compareWithOrt(tf, c);
      expect(maxDiff / Math.max(1, maxAbs)).toBeLessThan(1e-5);
    });
  }
});

/** A trainable scale in front of an op, so the op's input gradient is checked through it. */
function scaled(c: OpCase): OpCase {
  const first = c.inputs[0]!;
  const rename = (v: string): string => (v === first.name ? 'scaled_input' : v);
  return {
    ...c,
    nodes: [{opType: 'Mul', inputs: [first.name, 'input_scale'], outputs: ['scaled_input']}, ...c.nodes.map((n) => ({...n, inputs: n.inputs.map(rename)}))],
    initializers: [...(c.initializers ?? []), floatTensor('input_scale', first.dims.slice(1), randomValues(rng, first.dims.slice(1).reduce((a, b) => a * b, 1)).map((v) => 1 + 0.3 * v))],
  };
}

const byName = (name: string): OpCase => CASES.find((c) => c.name === name || c.nodes[0]!.opType === name)!;

describe('ONNX executor ops: gradients against central finite differences (wasm backend)', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });
  const GRADS: Array<[OpCase, string[]]> = [
    [scaled(byName('Conv 3x3 pad 1 + bias')), ['W', 'B', 'input_scale']],
    [scaled(byName('Conv stride 2 asymmetric pads')), ['W', 'input_scale']],
    [scaled(byName('Conv depthwise (group = C, multiplier 2)')), ['W', 'B', 'input_scale']],
    [scaled(byName('Conv grouped (2 groups)')), ['W', 'input_scale']],
    [byName('Gemm transB alpha beta'), ['W', 'B']],
    [byName('MatMul [B,T,D]x[D,E] and batched attention'), ['W']],
    [byName('MatMul broadcast batch'), ['W']],
    [scaled(byName('elementwise on a Conv output: Add [C,1,1], Mul scalar, Sub, Div, Pow 2, Sqrt, Erf')), ['W', 'b', 'd', 'input_scale']],
    [byName('LayerNormalization (opset 17)'), ['g', 'b']],
    [scaled(byName('LayerNormalization (opset 17)')), ['input_scale']],
    [scaled(byName('LayerNorm decomposed as torch < 2 exports it')), ['g', 'b', 'input_scale']],
    [scaled(byName('BatchNormalization after Conv (NHWC-held) and on a plain input')), ['W', 'g', 'b', 'input_scale']],
    [scaled(byName('GlobalAveragePool / GlobalMaxPool + Flatten')), ['W', 'input_scale']],
    [scaled(byName('MaxPool 3x3/2 pad 1 (ResNet stem)')), ['input_scale']],
    [scaled(byName('AveragePool pads, count_include_pad 0 and 1')), ['input_scale']],
    [scaled(byName('shape sub-graph: Shape -> Gather -> Unsqueeze -> Concat -> Reshape (ViT flatten of patches)')), ['W', 'input_scale']],
    [byName('CLS token: Expand + Concat, Add position embedding, Gather token 0, Slice tokens 1:, Squeeze'), ['cls', 'pos']],
    [scaled(byName('Transpose of a Conv output, Concat on channels of NHWC-held values')), ['W', 'W2', 'input_scale']],
    ...['Sigmoid', 'Tanh', 'HardSwish', 'Softmax', 'LogSoftmax', 'Gelu', 'Elu', 'Softplus', 'LeakyRelu'].map((op): [OpCase, string[]] => [scaled(byName(op)), ['input_scale']]),
  ];
  for (const [c, trainable] of GRADS) {
    it(`${c.name}: d/d ${trainable.join(', ')}`, async () => {
      const {worst, where} = await gradientError(tf, c, trainable);
      expect(worst, where).toBeLessThan(2e-2);
    });
  }
});

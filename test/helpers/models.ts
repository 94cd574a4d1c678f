/**
 * Small, real ONNX models built in the tests with natix's own encoder (src/lib/onnx/model.ts), whose outputs can be
 * computed by hand, plus Hugging Face-style model directories. Shared by the cascade, test-inference and bench tests.
 *
 *   meanSigmoidModel(a, b)        [1,1] p = sigmoid(a * mean(x) + b): hand-computable (x = pixel/255)
 *   redVsBlueLogitsModel(k)       [batch,2] logits [0, k*(mean R - mean B)]: softmax / HF dirs; free batch dim
 *   convClassifierModel(size)     small Conv -> Relu -> GAP -> Gemm classifier, [1,2] logits
 *   detectionModel(boxes, C)      YOLO-style constant output [1, 4+C, N]
 *   slowModel(steps)              a MatMul chain: tens to hundreds of ms (timeouts)
 *   slowOnBrightModel(n, steps)   instant on black images, seconds on white ones (a run that overruns a deadline)
 *   throwsModel()                 onnxruntime raises at run time (a Reshape that cannot fit)
 *   failsOnDarkModel()            NaN (a model failure) on dark images, an answer on bright ones (breakers)
 *   truncated(bytes)              half a model file: loading fails
 *   writeModel(file, bytes)       writes a model, creating folders
 *   writeHfModelDir(dir, model)   model.onnx + config.json (id2label) + preprocessor_config.json
 */
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {encodeOnnxModel, floatTensor, int64Tensor, type OnnxNode, type OnnxTensor} from '../../src/lib/onnx/model.js';
import {ProtoWriter} from '../../src/lib/onnx/protobuf.js';

export interface ImageModelShape {
  size?: number;
  layout?: 'nchw' | 'nhwc';
}

function inputShape({size = 32, layout = 'nchw'}: ImageModelShape): number[] {
  return layout === 'nchw' ? [1, 3, size, size] : [1, size, size, 3];
}

/**
 * p = sigmoid(a * mean(x) + b), x the preprocessed input (by default pixel/255): a model you can compute by hand.
 * Output: [1, 1] named `prob`.
 */
export function meanSigmoidModel(a: number, b: number, shape: ImageModelShape = {}): Uint8Array {
  return encodeOnnxModel({
    inputs: [{name: 'pixels', type: 'float', shape: inputShape(shape)}],
    outputs: [{name: 'prob', type: 'float', shape: [1, 1]}],
    initializers: [floatTensor('a', [], [a]), floatTensor('b', [], [b]), int64Tensor('shape', [2], [1, 1])],
    nodes: [
      {opType: 'ReduceMean', inputs: ['pixels'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 0}},
      {opType: 'Mul', inputs: ['m', 'a'], outputs: ['am']},
      {opType: 'Add', inputs: ['am', 'b'], outputs: ['z']},
      {opType: 'Sigmoid', inputs: ['z'], outputs: ['s']},
      {opType: 'Reshape', inputs: ['s', 'shape'], outputs: ['prob']},
    ],
  });
}

/**
 * Two logits [1, 2] = [0, k * (mean(R) - mean(B))]: "reddish" images score as class 1 (roadwork). For softmax
 * decoding and Hugging Face directories. NCHW input.
 */
export function redVsBlueLogitsModel(k: number, size = 32): Uint8Array {
  return encodeOnnxModel({
    inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', 3, size, size]}],
    outputs: [{name: 'logits', type: 'float', shape: ['batch', 2]}],
    initializers: [floatTensor('w', [3, 2], [0, k, 0, 0, 0, -k])],
    nodes: [
      {opType: 'ReduceMean', inputs: ['pixel_values'], outputs: ['m'], attributes: {axes: [2, 3], keepdims: 0}},
      {opType: 'MatMul', inputs: ['m', 'w'], outputs: ['logits']},
    ],
  });
}

/** A small conv classifier: Conv(3->4, 3x3) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(4->2) logits. */
export function convClassifierModel(size = 32, seed = 1): Uint8Array {
  let s = seed;
  const rand = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  return encodeOnnxModel({
    inputs: [{name: 'x', type: 'float', shape: [1, 3, size, size]}],
    outputs: [{name: 'y', type: 'float', shape: [1, 2]}],
    initializers: [
      floatTensor('cw', [4, 3, 3, 3], Array.from({length: 108}, rand)),
      floatTensor('cb', [4], [0.1, -0.1, 0.05, 0]),
      floatTensor('fw', [2, 4], Array.from({length: 8}, rand)),
      floatTensor('fb', [2], [0, 0.1]),
    ],
    nodes: [
      {opType: 'Conv', inputs: ['x', 'cw', 'cb'], outputs: ['c'], attributes: {kernel_shape: [3, 3], pads: [1, 1, 1, 1]}},
      {opType: 'Relu', inputs: ['c'], outputs: ['r']},
      {opType: 'GlobalAveragePool', inputs: ['r'], outputs: ['g']},
      {opType: 'Flatten', inputs: ['g'], outputs: ['f']},
      {opType: 'Gemm', inputs: ['f', 'fw', 'fb'], outputs: ['y'], attributes: {transB: 1}},
    ],
  });
}

/**
 * A YOLO-style detection head output [1, 4 + classes, N] that ignores its input (constant boxes): rows are
 * cx, cy, w, h, then one score per class. `boxes[i]` = [cx, cy, w, h, ...classScores].
 */
export function detectionModel(boxes: number[][], classes: number, size = 32): Uint8Array {
  const n = boxes.length;
  const values = new Array<number>((4 + classes) * n).fill(0);
  boxes.forEach((b, j) => b.forEach((v, r) => (values[r * n + j] = v)));
  return encodeOnnxModel({
    inputs: [{name: 'images', type: 'float', shape: [1, 3, size, size]}],
    outputs: [{name: 'output0', type: 'float', shape: [1, 4 + classes, n]}],
    initializers: [floatTensor('det', [1, 4 + classes, n], values), floatTensor('zero', [], [0])],
    nodes: [
      {opType: 'ReduceMean', inputs: ['images'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 1}},
      {opType: 'Mul', inputs: ['m', 'zero'], outputs: ['z']},
      {opType: 'Add', inputs: ['det', 'z'], outputs: ['output0']},
    ],
  });
}

/**
 * A model that takes a while: `steps` 384x384 matrix products that depend on the input (so nothing is folded at
 * load time), then sigmoid(0 * ...) = 0.5. Tens to hundreds of ms on one core.
 */
export function slowModel(steps = 24, size = 32): Uint8Array {
  const n = 384;
  const eye: number[] = new Array<number>(n * n).fill(0);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const nodes: OnnxNode[] = [
    {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 0}},
    {opType: 'Mul', inputs: ['A', 'm'], outputs: ['y0']},
  ];
  for (let k = 0; k < steps; k++) nodes.push({opType: 'MatMul', inputs: [`y${k}`, 'A'], outputs: [`y${k + 1}`]});
  nodes.push(
    {opType: 'ReduceMean', inputs: [`y${steps}`], outputs: ['r'], attributes: {keepdims: 0}},
    {opType: 'Mul', inputs: ['r', 'zero'], outputs: ['z']},
    {opType: 'Sigmoid', inputs: ['z'], outputs: ['s']},
    {opType: 'Reshape', inputs: ['s', 'shape'], outputs: ['prob']},
  );
  const initializers: OnnxTensor[] = [floatTensor('A', [n, n], eye), floatTensor('zero', [], [0]), int64Tensor('shape', [2], [1, 1])];
  return encodeOnnxModel({inputs: [{name: 'x', type: 'float', shape: [1, 3, size, size]}], outputs: [{name: 'prob', type: 'float', shape: [1, 1]}], initializers, nodes});
}

/** Writes bytes to `file` (creating folders) and returns the path. */
export async function writeModel(file: string, bytes: Uint8Array): Promise<string> {
  await mkdir(path.dirname(file), {recursive: true});
  await writeFile(file, bytes);
  return file;
}

/** A truncated copy of a model: loading it must fail. */
export function truncated(bytes: Uint8Array): Uint8Array {
  return bytes.slice(0, Math.floor(bytes.length / 2));
}

export interface HfDirOptions {
  id2label?: Record<string, string>;
  preprocessor?: Record<string, unknown>;
  onnxSubdir?: boolean;
}

/** A Hugging Face-style image-classification export: model.onnx + config.json + preprocessor_config.json. */
export async function writeHfModelDir(dir: string, model: Uint8Array, options: HfDirOptions = {}): Promise<string> {
  const id2label = options.id2label ?? {0: 'None', 1: 'Roadwork'};
  await writeModel(path.join(dir, options.onnxSubdir ? 'onnx' : '', 'model.onnx'), model);
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({architectures: ['ViTForImageClassification'], id2label, label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)]))}),
  );
  await writeFile(
    path.join(dir, 'preprocessor_config.json'),
    JSON.stringify(
      options.preprocessor ?? {do_resize: true, size: {height: 32, width: 32}, resample: 2, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]},
    ),
  );
  return dir;
}

/**
 * A model that fails at run time depending on the image, to drive circuit breakers: p = sigmoid(sqrt(mean(x) - 0.5))
 * with x = pixel/255. Bright images (mean >= 0.5) answer (white: sigmoid(sqrt(0.5)) = 0.6698); dark ones give NaN,
 * which the cascade counts as a model failure.
 */
export function failsOnDarkModel(size = 32): Uint8Array {
  return encodeOnnxModel({
    inputs: [{name: 'x', type: 'float', shape: [1, 3, size, size]}],
    outputs: [{name: 'prob', type: 'float', shape: [1, 1]}],
    initializers: [floatTensor('half', [], [0.5]), int64Tensor('shape', [2], [1, 1])],
    nodes: [
      {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 0}},
      {opType: 'Sub', inputs: ['m', 'half'], outputs: ['d']},
      {opType: 'Sqrt', inputs: ['d'], outputs: ['r']},
      {opType: 'Sigmoid', inputs: ['r'], outputs: ['s']},
      {opType: 'Reshape', inputs: ['s', 'shape'], outputs: ['prob']},
    ],
  });
}

/**
 * A model whose run time depends on the image: p = mean(x) (x = pixel/255), after `steps` products of a k x k
 * matrix with k = 1 + floor(n * mean(x)). Black: k = 1, instant; white: k = n + 1, e.g. n = 1536, steps = 6 is
 * 2 x 6 x 1537^3 = 44 GFLOP, most of a second to seconds on one core. The matrix is made at run time (ConstantOfShape): the file is tiny.
 */
export function slowOnBrightModel(n = 1536, steps = 6, size = 8): Uint8Array {
  const nodes: OnnxNode[] = [
    {opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attributes: {axes: [1, 2, 3], keepdims: 0}},
    {opType: 'Mul', inputs: ['m', 'n'], outputs: ['mn']},
    {opType: 'Floor', inputs: ['mn'], outputs: ['fl']},
    {opType: 'Add', inputs: ['fl', 'one'], outputs: ['k1']},
    {opType: 'Cast', inputs: ['k1'], outputs: ['ki'], attributes: {to: 7}},
    {opType: 'Reshape', inputs: ['ki', 'shape1'], outputs: ['k']},
    {opType: 'Concat', inputs: ['k', 'k'], outputs: ['kk'], attributes: {axis: 0}},
    {opType: 'ConstantOfShape', inputs: ['kk'], outputs: ['A'], attributes: {value: floatTensor('v', [1], [0.0001])}},
    {opType: 'Identity', inputs: ['A'], outputs: ['y0']},
  ];
  for (let i = 0; i < steps; i++) nodes.push({opType: 'MatMul', inputs: [`y${i}`, 'A'], outputs: [`y${i + 1}`]});
  nodes.push(
    {opType: 'ReduceMean', inputs: [`y${steps}`], outputs: ['r'], attributes: {keepdims: 0}},
    {opType: 'Mul', inputs: ['r', 'zero'], outputs: ['z']},
    {opType: 'Add', inputs: ['z', 'm'], outputs: ['p']},
    {opType: 'Reshape', inputs: ['p', 'shape'], outputs: ['prob']},
  );
  return encodeOnnxModel({
    inputs: [{name: 'x', type: 'float', shape: [1, 3, size, size]}],
    outputs: [{name: 'prob', type: 'float', shape: [1, 1]}],
    initializers: [floatTensor('n', [], [n]), floatTensor('one', [], [1]), floatTensor('zero', [], [0]), int64Tensor('shape', [2], [1, 1]), int64Tensor('shape1', [1], [1])],
    nodes,
  });
}

/**
 * A model that onnxruntime fails to run: its input (3 x size x size values) reshaped to [-1, 7], which never fits.
 * The target shape is computed from the input at run time, so loading (shape inference) does not catch it.
 */
export function throwsModel(size = 8): Uint8Array {
  return encodeOnnxModel({
    inputs: [{name: 'x', type: 'float', shape: [1, 3, size, size]}],
    outputs: [{name: 'prob', type: 'float', shape: [1, 1]}],
    initializers: [int64Tensor('bad', [2], [-1, 7]), floatTensor('zero', [], [0]), int64Tensor('shape', [2], [1, 1])],
    nodes: [
      {opType: 'ReduceMean', inputs: ['x'], outputs: ['m0'], attributes: {keepdims: 0}},
      {opType: 'Mul', inputs: ['m0', 'zero'], outputs: ['z']},
      {opType: 'Cast', inputs: ['z'], outputs: ['zi'], attributes: {to: 7}},
      {opType: 'Add', inputs: ['bad', 'zi'], outputs: ['target']},
      {opType: 'Reshape', inputs: ['x', 'target'], outputs: ['r']},
      {opType: 'ReduceMean', inputs: ['r'], outputs: ['m'], attributes: {keepdims: 0}},
      {opType: 'Reshape', inputs: ['m', 'shape'], outputs: ['prob']},
    ],
  });
}

/**
 * An ONNX model whose weight lives in an external data file (as torch.onnx / optimum write models over 2 GB):
 * y = x + w, x and y float [1, 1], w = [`weight`] stored as 4 bytes in `location` (relative to the model's folder).
 * Returns the model bytes and the external file's bytes.
 */
export function externalDataModel(location: string, weight = 0.25): {model: Uint8Array; data: Uint8Array} {
  const valueInfo = (w: ProtoWriter, name: string): void => {
    w.string(1, name).message(2, (type) => type.message(1, (tensor) => tensor.int(1, 1).message(2, (shape) => shape.message(1, (d) => d.int(1, 1)).message(1, (d) => d.int(1, 1)))));
  };
  const entry = (w: ProtoWriter, key: string, value: string): void => void w.string(1, key).string(2, value);
  const model = new ProtoWriter()
    .int(1, 8) // ir_version
    .string(2, 'natix-test')
    .message(7, (g) =>
      g
        .message(1, (n) => n.string(1, 'x').string(1, 'w').string(2, 'y').string(3, 'add').string(4, 'Add'))
        .string(2, 'external')
        .message(5, (t) =>
          t
            .int(1, 1)
            .int(1, 1)
            .int(2, 1) // FLOAT
            .string(8, 'w')
            .message(13, (e) => entry(e, 'location', location))
            .message(13, (e) => entry(e, 'offset', '0'))
            .message(13, (e) => entry(e, 'length', '4'))
            .int(14, 1), // EXTERNAL
        )
        .message(11, (i) => valueInfo(i, 'x'))
        .message(12, (o) => valueInfo(o, 'y')),
    )
    .message(8, (o) => o.string(1, '').int(2, 13)) // opset 13
    .finish();
  const data = new Uint8Array(new Float32Array([weight]).buffer);
  return {model, data};
}

import {readFileSync} from 'node:fs';
import * as ort from 'onnxruntime-node';
import {describe, expect, it} from 'vitest';
import {decodeOnnxModel, tensorToFloat32} from '../../src/lib/onnx/decode.js';
import {encodeOnnxModel, floatTensor, int64Tensor} from '../../src/lib/onnx/model.js';
import {ProtoWriter} from '../../src/lib/onnx/protobuf.js';

const FIXTURES = new URL('../fixtures/models/', import.meta.url).pathname;
const read = (name: string): Uint8Array => new Uint8Array(readFileSync(FIXTURES + name));

function pixels(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({length: n * 3 * 32 * 32}, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2);
}

async function runAll(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array | Float64Array>> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

describe('ONNX decoder', () => {
  it('round-trips a PyTorch-exported ViT (Conv, attention, LayerNorm, Erf, Constant tensors): same graph, same outputs', async () => {
    const original = read('tiny-vit/model.onnx');
    const spec = decodeOnnxModel(original);
    expect(spec.irVersion).toBe(7);
    expect(spec.opsetImports).toEqual([{domain: '', version: 14}]);
    expect(spec.producerName).toBe('pytorch');
    expect(spec.inputs).toEqual([{name: 'pixel_values', type: 'float', shape: ['batch_size', 3, 32, 32]}]);
    // torch.onnx leaves the token and hidden sizes symbolic: natix learns them by running the model.
    expect(spec.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['last_hidden_state', ['batch_size', 'Addlast_hidden_state_dim_1', 'Addlast_hidden_state_dim_2']],
      ['pooler_output', ['batch_size', 'Addlast_hidden_state_dim_2']],
    ]);
    expect(spec.nodes.length).toBe(228);
    const patch = spec.initializers!.find((t) => t.name === 'patch.weight')!;
    expect(patch.dims).toEqual([32, 3, 8, 8]);
    expect(patch.data).toBeInstanceOf(Float32Array);
    expect(spec.nodes.some((n) => n.opType === 'Constant' && typeof n.attributes?.value === 'object' && 'dims' in (n.attributes.value as object))).toBe(true);
    const reencoded = encodeOnnxModel(spec);
    // Decoding the re-encoded model gives the same spec (the encoder loses nothing the decoder reads).
    expect(decodeOnnxModel(reencoded)).toEqual(spec);
    const x = new ort.Tensor('float32', pixels(3), [3, 3, 32, 32]);
    const a = await runAll(original, {pixel_values: x});
    const b = await runAll(reencoded, {pixel_values: x});
    expect(Array.from(b.last_hidden_state!)).toEqual(Array.from(a.last_hidden_state!));
    expect(Array.from(b.pooler_output!)).toEqual(Array.from(a.pooler_output!));
  });

  it('round-trips a PyTorch-exported ResNet classifier (BatchNorm folded into Conv, Gemm head)', async () => {
    const original = read('tiny-resnet.onnx');
    const spec = decodeOnnxModel(original);
    const gemm = spec.nodes.at(-1)!;
    expect(gemm.opType).toBe('Gemm');
    expect(gemm.attributes).toMatchObject({alpha: {float: 1}, beta: {float: 1}, transB: 1});
    expect(spec.initializers!.find((t) => t.name === 'fc.weight')!.dims).toEqual([10, 32]);
    const reencoded = encodeOnnxModel(spec);
    expect(decodeOnnxModel(reencoded)).toEqual(spec);
    // A Node Buffer (from readFile) decodes to the same tensors (its slice() is a view, not a copy).
    expect(decodeOnnxModel(readFileSync(FIXTURES + 'tiny-resnet.onnx')).initializers).toEqual(spec.initializers);
    const x = new ort.Tensor('float32', pixels(2, 7), [2, 3, 32, 32]);
    expect(Array.from((await runAll(reencoded, {pixel_values: x})).logits!)).toEqual(Array.from((await runAll(original, {pixel_values: x})).logits!));
  });

  it('reads float_data / int64_data initializers, value_info, unknown dims, several opset imports, doc strings and metadata', async () => {
    const original = read('fields.onnx');
    const spec = decodeOnnxModel(original);
    expect(spec.opsetImports).toEqual([
      {domain: '', version: 13},
      {domain: 'com.microsoft', version: 1},
    ]);
    expect(spec.metadata).toEqual({author: 'natix'});
    expect(spec.docString).toBe('fixture for the decoder');
    expect(spec.graphDocString).toBe('a graph doc');
    expect(spec.valueInfo).toEqual([{name: 'r', type: 'float', shape: ['n', 4]}]);
    expect(spec.outputs).toEqual([{name: 'y64', type: 'double', shape: ['n', null]}]);
    const shape = spec.initializers!.find((t) => t.name === 'shape')!;
    expect(Array.from(shape.data as BigInt64Array)).toEqual([-1n, 4n]);
    const w = spec.initializers!.find((t) => t.name === 'w')!;
    expect(Array.from(tensorToFloat32(w))).toEqual([0.5, -1, 2, 0.25, 1.5, -0.75, 1, 0, -2, 3, 0.125, 1]);
    expect(spec.nodes[0]).toMatchObject({name: 'reshape', docString: 'flatten'});
    expect(spec.nodes[3]!.attributes).toEqual({to: 11});
    const reencoded = encodeOnnxModel(spec);
    expect(decodeOnnxModel(reencoded)).toEqual(spec);
    const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 2, 2]);
    const y = (await runAll(reencoded, {x})).y64!;
    expect(y).toBeInstanceOf(Float64Array);
    expect(Array.from(y).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([
      Math.round((0.5 * 1 + 0.25 * 2 + 1 * 3 + 3 * 4 + 0.1) * 1e4) / 1e4,
      Math.round((-1 * 1 + 1.5 * 2 + 0 * 3 + 0.125 * 4 - 0.2) * 1e4) / 1e4,
      Math.round((2 * 1 - 0.75 * 2 - 2 * 3 + 1 * 4 + 0.3) * 1e4) / 1e4,
    ]);
  });

  it('keeps INT attributes beyond 2^53 exact and unmodelled fields (local functions) verbatim', () => {
    const spec = {
      inputs: [{name: 'x', type: 'float' as const, shape: [4]}],
      outputs: [{name: 'y', type: 'float' as const, shape: [2]}],
      initializers: [int64Tensor('starts', [1], [1]), floatTensor('unused', [1], [0])],
      nodes: [{opType: 'Slice', inputs: ['x'], outputs: ['y'], attributes: {ends: {ints: [9223372036854775807n]}, starts: [1], big: 9007199254740993n}}],
      unknownFields: new ProtoWriter().string(25, 'pretend-function').finish(),
    };
    const decoded = decodeOnnxModel(encodeOnnxModel(spec));
    expect(decoded.nodes[0]!.attributes).toEqual({ends: {ints: [9223372036854775807n]}, starts: {ints: [1]}, big: 9007199254740993n});
    expect(decoded.unknownFields).toEqual(spec.unknownFields);
    expect(encodeOnnxModel(decoded)).toEqual(encodeOnnxModel({...spec, ...decoded}));
  });

  it('refuses external data and garbage with exit-2 errors', () => {
    const external = encodeOnnxModel({
      inputs: [{name: 'x', type: 'float', shape: [1]}],
      outputs: [{name: 'y', type: 'float', shape: [1]}],
      initializers: [{name: 'w', dims: [1], type: 'float', data: new Float32Array(0), unknownFields: new ProtoWriter().int(14, 1).finish()}],
      nodes: [{opType: 'Add', inputs: ['x', 'w'], outputs: ['y']}],
    });
    expect(() => decodeOnnxModel(external)).toThrow(expect.objectContaining({code: 'ONNX_EXTERNAL_DATA', exitCode: 2}));
    expect(() => decodeOnnxModel(read('tiny-resnet.onnx').subarray(0, 5000))).toThrow(expect.objectContaining({code: 'ONNX_INVALID', exitCode: 2}));
    expect(() => decodeOnnxModel(new TextEncoder().encode('{"not": "onnx"}'))).toThrow(expect.objectContaining({exitCode: 2}));
  });
});

import {fileURLToPath} from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {beforeAll, describe, expect, it} from 'vitest';
import {NatixError} from '../../src/lib/errors.js';
import {readOnnxModel} from '../../src/lib/onnx/decode.js';
import {floatTensor} from '../../src/lib/onnx/model.js';
import {OnnxExecutor} from '../../src/lib/onnx-exec/executor.js';
import {cutAt, findBlocks, indexGraph, trainFrom} from '../../src/lib/onnx-exec/graph.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {mobilenetGraph, resnetGraph, vitGraph} from '../helpers/onnx-graphs.js';

const VIT = vitGraph({image: 32, patch: 8, dim: 32, depth: 3, heads: 4, mlp: 64, classes: 3});
const RESNET = resnetGraph({image: 48, widths: [8, 16], blocks: [2, 1], classes: 2});
const MOBILENET = mobilenetGraph({image: 40, blocks: [[1, 16, 1], [4, 24, 2], [4, 24, 1]], classes: 2});
const fixture = (file: string): string => fileURLToPath(new URL(`../fixtures/models/${file}`, import.meta.url));

function caught(f: () => unknown): NatixError {
  try {
    f();
  } catch (error) {
    if (error instanceof NatixError) return error;
    throw error;
  }
  throw new Error('expected a NatixError');
}

describe('executor errors, before any data is read', () => {
  it('an unsupported op names the op, the node and the model', () => {
    const spec = {...RESNET, nodes: [...RESNET.nodes.slice(0, 3), {name: '/custom/GridSample', opType: 'GridSample', inputs: [RESNET.nodes[2]!.outputs[0]!], outputs: ['g']}, {name: '/ms/FastGelu', opType: 'FastGelu', domain: 'com.microsoft', inputs: ['g'], outputs: ['h']}, ...RESNET.nodes.slice(3)]};
    const e = caught(() => new OnnxExecutor(tf, spec, {model: 'my-model.onnx'}));
    expect(e.code).toBe('ONNX_EXEC_UNSUPPORTED_OP');
    expect(e.message).toContain('my-model.onnx');
    expect(e.message).toContain('GridSample');
    expect(e.message).toContain('com.microsoft.FastGelu');
    expect(e.message).toContain('/custom/GridSample');
    expect(e.data?.nodes).toEqual(['/custom/GridSample', '/ms/FastGelu']);
  });

  it('an unsupported attribute names the node (BatchNormalization in training mode, 3-D pooling)', () => {
    const bn = {...RESNET, nodes: RESNET.nodes.map((n) => (n.opType === 'BatchNormalization' && n.name === '/bn1/BatchNormalization_1' ? {...n, attributes: {...n.attributes, training_mode: 1}} : n))};
    const e = caught(() => new OnnxExecutor(tf, bn, {model: 'resnet.onnx'}));
    expect(e.code).toBe('ONNX_EXEC_OP');
    expect(e.message).toMatch(/resnet\.onnx: node \/bn1\/BatchNormalization_1 \(BatchNormalization\): training_mode=1/);
    const pool = {...RESNET, nodes: RESNET.nodes.map((n) => (n.opType === 'MaxPool' ? {...n, attributes: {...n.attributes, kernel_shape: [3, 3, 3]}} : n))};
    expect(caught(() => new OnnxExecutor(tf, pool)).message).toContain('only 2-D pooling');
  });

  it('a frozen boundary that does not exist, or is a constant, is refused', () => {
    const g = indexGraph(VIT, 'vit.onnx');
    const missing = caught(() => cutAt(g, '/blocks/blocks.9/Add_output_0'));
    expect(missing.code).toBe('ONNX_VALUE_NOT_FOUND');
    expect(missing.message).toContain('/blocks/blocks.9/Add_output_0');
    expect(missing.actions.join(' ')).toContain('--inspect');
    expect(caught(() => cutAt(g, 'pos_embed')).code).toBe('ONNX_CUT_INVALID');
    expect(caught(() => trainFrom(g, {last: 4})).message).toContain('blocks.0, blocks.1, blocks.2');
  });
});

describe('blocks and the cut', () => {
  it('finds the repeated blocks by their boundaries and names', async () => {
    expect(findBlocks(indexGraph(VIT, 'vit')).map((b) => b.name)).toEqual(['blocks.0', 'blocks.1', 'blocks.2']);
    expect(findBlocks(indexGraph(RESNET, 'resnet')).map((b) => b.name)).toEqual(['layer1.0', 'layer1.1', 'layer2.0']);
    expect(findBlocks(indexGraph(MOBILENET, 'mobilenet')).map((b) => b.name)).toEqual(['features.0', 'features.1', 'features.2', 'features.3', 'features.4']);
    const torchVit = indexGraph((await readOnnxModel(fixture('tiny-vit/model.onnx'))).spec, 'tiny-vit');
    const blocks = findBlocks(torchVit);
    expect(blocks.map((b) => b.name)).toEqual(['blocks.0', 'blocks.1']);
    expect(blocks[0]!.parameters).toBe(blocks[1]!.parameters);
    // torch.onnx's names of nn.Sequential children are layers, not blocks: a parameter-free child (the ReLU
    // `down.2`) joins the block before it, so last:1 trains the last convolution.
    const torchResnet = indexGraph((await readOnnxModel(fixture('tiny-resnet.onnx'))).spec, 'tiny-resnet');
    const resnetBlocks = findBlocks(torchResnet);
    expect(resnetBlocks.map((b) => [b.name, b.from, b.to])).toEqual([
      ['stem.0', 'pixel_values', '/stem/stem.2/Relu_output_0'],
      ['a.0', '/stem/stem.2/Relu_output_0', '/Add_output_0'],
      ['down.0', '/Relu_output_0', '/down/down.2/Relu_output_0'],
    ]);
    expect(resnetBlocks.every((b) => b.parameters > 0)).toBe(true);
    expect(trainFrom(torchResnet, {last: 1})).toBe('/Relu_output_0');
    // Unnamed graphs: one block per residual join.
    const unnamed = {...RESNET, nodes: RESNET.nodes.map((n) => ({...n, name: ''}))};
    expect(findBlocks(indexGraph(unnamed, 'unnamed')).length).toBe(3);
  });

  it('last:1 trains the last block and what follows it; BatchNorm statistics stay frozen', () => {
    const g = indexGraph(RESNET, 'resnet');
    const cut = cutAt(g, trainFrom(g, {last: 1}));
    expect(cut.boundary).toEqual([cut.from]);
    expect(cut.trainable.filter((n) => n.startsWith('layer2.')).length).toBeGreaterThan(0);
    expect(cut.trainable.some((n) => n.startsWith('layer1.'))).toBe(false);
    expect(cut.trainable).toContain('fc.weight');
    expect(cut.frozen.filter((f) => f.reason.includes('BatchNorm')).length).toBe(6); // bn1, bn2, downsample: mean + var
  });

  it("torch's de-duplicated parameters (one initializer read through Identity nodes) become separate trainable values", async () => {
    const {spec} = await readOnnxModel(fixture('tiny-vit/model.onnx'));
    expect(spec.nodes.some((n) => n.opType === 'Identity' && n.inputs[0] === 'blocks.0.norm1.weight')).toBe(true);
    const g = indexGraph(spec, 'tiny-vit');
    const cut = cutAt(g, trainFrom(g, {last: 1}));
    expect(cut.trainable).toEqual(expect.arrayContaining(['blocks.1.norm1.weight', 'blocks.1.norm2.weight', 'norm.weight']));
    expect(cut.trainable.length).toBe(14);
  });
});

describe('running the tail from the boundary', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });

  it('tail(prefix(x)) equals the whole graph, and gradients reach only the tail', async () => {
    const g = indexGraph(VIT, 'vit');
    const cut = cutAt(g, trainFrom(g, {last: 2}));
    const exec = new OnnxExecutor(tf, VIT, {trainable: cut.trainable});
    const x = tf.randomNormal([2, 3, 32, 32], 0, 1, 'float32', 1);
    const whole = exec.run({pixel_values: x});
    const boundary = exec.run({pixel_values: x}, cut.boundary);
    const tail = exec.run(boundary);
    expect(Array.from(await tail.logits!.data())).toEqual(Array.from(await whole.logits!.data()));
    const {grads} = tf.variableGrads(() => tf.sum(tf.square(exec.run(boundary).logits!)) as tf.Scalar, [...exec.variables.values()]);
    expect(Object.keys(grads).length).toBe(cut.trainable.length);
    expect(cut.trainable.some((n) => n.includes('blocks.0'))).toBe(false);
    const norms = await Promise.all(Object.values(grads).map(async (t) => (await tf.norm(t).data())[0]!));
    expect(norms.every((n) => n > 0)).toBe(true);
    tf.dispose([x, ...Object.values(whole), ...Object.values(boundary), ...Object.values(tail), ...Object.values(grads)]);
    exec.dispose();
  });

  it('a feed that the requested outputs need but nobody gave is an error naming it', () => {
    const exec = new OnnxExecutor(tf, {...VIT, initializers: [...VIT.initializers!, floatTensor('unused', [1], [0])]});
    const e = caught(() => exec.run({}, ['logits']));
    expect(e.code).toBe('ONNX_EXEC_MISSING_FEED');
    exec.dispose();
  });
});

import {describe, expect, it} from 'vitest';
import {readOnnxModel} from '../../src/lib/onnx/decode.js';
import {indexGraph} from '../../src/lib/onnx-exec/graph.js';
import {describeBlocks, findBlocks, resolveTrainScope, scopeStart} from '../../src/lib/train/train-scope.js';

const VIT = new URL('../fixtures/models/tiny-vit/model.onnx', import.meta.url).pathname;

describe('train scope', () => {
  it('parses model.train / train-from and defaults backbone-lr to lr / 10', () => {
    expect(resolveTrainScope({model: {from: 'm.onnx'}}, 0.01)).toEqual({scope: {kind: 'head'}});
    expect(resolveTrainScope({model: {from: 'm.onnx', train: 'head'}}, 0.01)).toEqual({scope: {kind: 'head'}});
    expect(resolveTrainScope({model: {from: 'm.onnx', train: 'last:12'}}, 0.01)).toEqual({scope: {kind: 'last', blocks: 12}, backboneLr: 0.001});
    expect(resolveTrainScope({model: {from: 'm.onnx', train: 'all'}, 'backbone-lr': 0.5}, 0.01)).toEqual({scope: {kind: 'all'}, backboneLr: 0.5});
    expect(resolveTrainScope({model: {from: 'm.onnx', 'train-from': 'v'}}, 1)).toEqual({scope: {kind: 'from', value: 'v'}, backboneLr: 0.1});
    expect(() => resolveTrainScope({model: {from: 'm.onnx', train: 'all', 'train-from': 'v'}}, 1)).toThrow(/both say/);
    expect(() => resolveTrainScope({model: {train: 'last:1'}}, 1)).toThrow(/set model.from/);
    expect(() => resolveTrainScope({model: {from: 'm.onnx'}, 'backbone-lr': 0.1}, 1)).toThrow(/backbone-lr applies only/);
  });

  it('resolves the start value on a real torch export and lists blocks last first', async () => {
    const g = indexGraph((await readOnnxModel(VIT)).spec, 'tiny-vit');
    const blocks = findBlocks(g);
    expect(scopeStart(g, {kind: 'last', blocks: 1})).toBe(blocks[1]!.from);
    expect(scopeStart(g, {kind: 'last', blocks: 2})).toBe(blocks[0]!.from);
    expect(scopeStart(g, {kind: 'all'})).toBe(g.inputs[0]);
    expect(() => scopeStart(g, {kind: 'last', blocks: 3})).toThrow(/last:3 asks for more blocks/);
    const lines = describeBlocks(blocks);
    expect(lines[1]).toMatch(/last:2 +blocks\.0 /);
    expect(lines[2]).toMatch(/last:1 +blocks\.1 /);
    expect(describeBlocks([])[0]).toMatch(/none found/);
  });
});

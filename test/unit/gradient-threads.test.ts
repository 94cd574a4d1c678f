/**
 * Data-parallel gradients (src/lib/train/gradient-workers.ts): a FineTuner whose micro-batches are shared out over
 * the main thread and gradient worker threads trains to the very same bits as one thread, a worker that dies is
 * replaced by the main thread without changing a bit, and a worker that cannot start or fails a share is dropped
 * with a warning.
 */
import * as tf from '@tensorflow/tfjs';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {loadBackbone, FEATURES_VALUE, type Backbone} from '../../src/lib/train/backbone.js';
import {FineTuner} from '../../src/lib/train/fine-tune.js';
import {GradientWorkers, resolveGradientThreads} from '../../src/lib/train/gradient-workers.js';
import {Head} from '../../src/lib/train/head.js';
import {microBatches} from '../../src/lib/train/tuned-model.js';
import {releaseTuner, TINY_VIT, TUNE_OPTIMIZER, tuneHead, vitImages} from '../helpers/fine-tune.js';

let backbone: Backbone;
const optimizer = TUNE_OPTIMIZER;
const images = vitImages;
const release = releaseTuner;

async function tuner(threads: number, warnings: string[] = [], selection: {last: number} | {all: true} = {last: 1}): Promise<FineTuner> {
  const head = new Head(tf, tuneHead(backbone.info.dim), {...optimizer, ema: 0});
  return FineTuner.create(tf, backbone, head, {selection, optimizer, device: 'cpu', microBatch: 2, gradientThreads: {count: threads, backend: 'wasm', warn: (m) => warnings.push(m)}});
}

/** Every checkpoint array's bytes, and the optimizer's: the whole state, for a bit-for-bit comparison. */
function state(t: FineTuner): Buffer {
  return Buffer.concat([...t.checkpointWeights(), ...t.optimizerState()].map((a) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength)));
}

/** Step `k` (1-based) on its own batch of 7 (micro-batch 2: 2+2+2+1, as microBatches splits them). */
function step(t: FineTuner, k: number): ReturnType<FineTuner['step']> {
  return t.step({images: images(7, k)}, [0, 1, 1, 0, 1, 0, 1], 0.01, 0.002, k, `s${k}`);
}

/** Three steps; the loss and logits of each. */
async function train(t: FineTuner): Promise<Array<{loss: number; logits: number[]}>> {
  const out = [];
  for (let k = 1; k <= 3; k++) {
    const r = await step(t, k);
    out.push({loss: r.loss, logits: Array.from(r.logits)});
  }
  return out;
}

describe('gradient threads', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
    backbone = await loadBackbone(TINY_VIT, {features: 'auto', pool: 'auto', device: 'cpu', threads: 1});
  });
  afterAll(async () => {
    await backbone.close();
  });

  it('splits a batch into even micro-batches, and picks threads from the backend, the cores and the micro-batches', () => {
    expect(microBatches(10, 8)).toEqual([{start: 0, size: 5}, {start: 5, size: 5}]);
    expect(microBatches(7, 2)).toEqual([{start: 0, size: 2}, {start: 2, size: 2}, {start: 4, size: 2}, {start: 6, size: 1}]);
    expect(microBatches(3, 8)).toEqual([{start: 0, size: 3}]);
    expect(resolveGradientThreads('auto', 'wasm', 4, 2)).toEqual({count: 2});
    expect(resolveGradientThreads('auto', 'wasm', 1, 16)).toEqual({count: 1});
    expect(resolveGradientThreads('auto', 'wasm', 32, 16)).toEqual({count: 4});
    expect(resolveGradientThreads('auto', 'cpu', 3, 16)).toEqual({count: 3});
    expect(resolveGradientThreads(8, 'wasm', 32, 2)).toEqual({count: 8}); // asked for: more threads than cores is allowed
    expect(resolveGradientThreads(3, 'wasm', 2, 16)).toEqual({count: 2, note: expect.stringContaining('a batch has 2 micro-batch(es), so 2 thread(s)')});
    expect(resolveGradientThreads('auto', 'tensorflow', 8, 16)).toEqual({count: 1});
    expect(resolveGradientThreads(2, 'tensorflow-gpu', 8, 16)).toEqual({count: 1, note: expect.stringContaining('tensorflow-gpu uses every core')});
  });

  it('one thread, two and three train to the same bits (losses, logits, weights, EMA, AdamW moments)', async () => {
    const one = await tuner(1);
    const two = await tuner(2);
    const three = await tuner(3);
    expect([one.gradientThreads, two.gradientThreads, three.gradientThreads]).toEqual([1, 2, 3]);
    const a = await train(one);
    const b = await train(two);
    const c = await train(three);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(state(two).equals(state(one))).toBe(true);
    expect(state(three).equals(state(one))).toBe(true);
    // Not trivially equal: training moved the weights.
    const start = await tuner(1);
    expect(state(start).equals(state(one))).toBe(false);
    for (const t of [one, two, three, start]) await release(t);
  });

  it('all of the backbone (no frozen prefix) trains to the same bits on two threads', async () => {
    const one = await tuner(1, [], {all: true});
    const two = await tuner(2, [], {all: true});
    expect(await train(two)).toEqual(await train(one));
    expect(state(two).equals(state(one))).toBe(true);
    await release(one);
    await release(two);
  });

  it('a worker that dies between steps: a warning, its share runs on the main thread, the same bits', async () => {
    const warnings: string[] = [];
    const one = await tuner(1);
    const two = await tuner(2, warnings);
    await step(one, 1);
    await step(two, 1);
    // Stopping an idle worker is safe (it is not inside onnxruntime's native run).
    const live = (two as unknown as {workers: {live: Array<{worker: {terminate(): Promise<number>}}>}}).workers.live;
    await live[0]!.worker.terminate();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(two.gradientThreads).toBe(1);
    expect(warnings.join('\n')).toMatch(/gradient worker stopped/);
    for (let k = 2; k <= 3; k++) {
      await step(one, k);
      await step(two, k);
    }
    expect(state(two).equals(state(one))).toBe(true);
    await release(one);
    await release(two);
  });

  it('a worker that cannot start, or fails a share, is dropped with a warning', async () => {
    const warnings: string[] = [];
    const reference = await tuner(1);
    const values = reference.model.values();
    await release(reference);
    const init = {backend: 'wasm' as const, featureGraph: backbone.featureGraph, model: 'tiny-vit', output: FEATURES_VALUE, device: 'cpu' as const, prefixThreads: 1, head: tuneHead(backbone.info.dim), preprocessing: {layout: 'nchw' as const, width: 32, height: 32}, values};
    const broken = await GradientWorkers.start(1, {...init, selection: {from: 'no-such-value'}}, (m) => warnings.push(m));
    expect(broken.size).toBe(0);
    expect(warnings[0]).toMatch(/1 of 1 gradient worker\(s\) did not start \(.*no-such-value/);
    await broken.close();

    // A share the worker cannot compute (one image's pixels for a micro-batch of two): the call rejects and the worker is dropped.
    const wrong = await GradientWorkers.start(1, {...init, selection: {last: 1}}, (m) => warnings.push(m));
    expect(wrong.size).toBe(1);
    await expect(wrong.compute(0, {input: {images: images(1, 1)}, parts: [{size: 2, targets: new Float32Array(4), weights: new Float32Array(2)}], totalWeight: 2})).rejects.toThrow();
    expect(wrong.size).toBe(0);
    expect(warnings.at(-1)).toMatch(/gradient worker stopped/);
    await wrong.close();
  });
});

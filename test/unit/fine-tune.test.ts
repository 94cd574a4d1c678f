/**
 * FineTuner (src/lib/train/fine-tune.ts): micro-batches add up to the full-batch gradient, weight decay skips biases,
 * norms and learned tokens, the checkpoint arrays restore the exact state, and the model a checkpoint describes
 * (onnxruntime) gives the training path's logits.
 */
import * as tf from '@tensorflow/tfjs';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {loadBackbone, type Backbone} from '../../src/lib/train/backbone.js';
import {FineTuner, fineTunedModel, modelLogits, type FineTuneOptions} from '../../src/lib/train/fine-tune.js';
import {decays} from '../../src/lib/train/tuned-model.js';
import {Head} from '../../src/lib/train/head.js';
import {releaseTuner, TINY_VIT, TUNE_OPTIMIZER, tuneHead, vitImages} from '../helpers/fine-tune.js';

let backbone: Backbone;
const optimizer = TUNE_OPTIMIZER;
const options = (microBatch: number): FineTuneOptions => ({selection: {last: 1}, optimizer, device: 'cpu', microBatch});

async function tuner(microBatch: number, weights?: Parameters<typeof FineTuner.create>[4]): Promise<FineTuner> {
  return FineTuner.create(tf, backbone, new Head(tf, tuneHead(backbone.info.dim), {...optimizer, ema: 0}, weights), options(microBatch), weights);
}

const images = (n: number): Float32Array => vitImages(n, 11);
const release = releaseTuner;

describe('FineTuner', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
    backbone = await loadBackbone(TINY_VIT, {features: 'auto', pool: 'auto', device: 'cpu', threads: 1});
  });
  afterAll(async () => {
    await backbone.close();
  });

  it('micro-batches of 3 give the full batch of 8 its gradient (loss normalised by the whole batch weight)', async () => {
    const labels = [0, 1, 1, 0, 1, 0, 0, 1];
    const x = images(8);
    const whole = await tuner(8);
    const parts = await tuner(3);
    const a = await whole.gradients({images: x}, labels, 'seed');
    const b = await parts.gradients({images: x}, labels, 'seed');
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits).map((v) => expect.closeTo(v, 5)));
    expect(a.grads.length).toBe(14 + 4);
    for (const [i, g] of a.grads.entries()) {
      const ga = g.dataSync();
      const gb = b.grads[i]!.dataSync();
      const scale = Math.max(1e-3, ...Array.from(ga, Math.abs));
      let worst = 0;
      for (let k = 0; k < ga.length; k++) worst = Math.max(worst, Math.abs(ga[k]! - gb[k]!) / scale);
      expect(worst).toBeLessThan(1e-4);
    }
    tf.dispose([...a.grads, ...b.grads]);
    await release(whole);
    await release(parts);
  });

  it('weight decay on matrices and filters only', () => {
    expect(decays('blocks.1.mlp.fc1.weight', [32, 64])).toBe(true);
    expect(decays('onnx::MatMul_280', [32, 96])).toBe(true);
    expect(decays('stem.weight', [8, 3, 3, 3])).toBe(true);
    expect(decays('blocks.1.qkv.bias', [96])).toBe(false);
    expect(decays('blocks.1.norm1.weight', [32])).toBe(false);
    expect(decays('pos_embed', [1, 17, 32])).toBe(false);
    expect(decays('embeddings.position_embeddings', [1, 17, 32])).toBe(false);
    expect(decays('cls_token', [1, 1, 32])).toBe(false);
  });

  it('checkpoint arrays restore the exact state; the checkpoint model in onnxruntime gives the training path logits', async () => {
    const labels = [0, 1, 1, 0, 1, 0];
    const x = images(6);
    const first = await tuner(4);
    for (let t = 1; t <= 3; t++) await first.step({images: x}, labels, 0.01, 0.001, t, `s${t}`);
    const weights = first.checkpointWeights();
    expect(weights.filter((w) => w.name.startsWith('onnx:')).length).toBe(14);
    expect(weights.filter((w) => w.name.startsWith('ema/')).length).toBe(18);
    const second = await tuner(4, weights);
    second.restoreOptimizer(first.optimizerState());
    await first.step({images: x}, labels, 0.01, 0.001, 4, 's4');
    await second.step({images: x}, labels, 0.01, 0.001, 4, 's4');
    const after = (t: FineTuner): number[] => t.checkpointWeights().flatMap((w) => Array.from(w.data));
    expect(after(second)).toEqual(after(first));
    // No tensor outlives a step or a TF.js-path evaluation (a leak would grow wasm memory every step).
    const tensorsBefore = tf.memory().numTensors;
    await first.step({images: x}, labels, 0.01, 0.001, 5, 's5');
    await first.logits(x, 6);
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    // The checkpoint's model (EMA weights) in onnxruntime vs the TF.js path, on logits.
    const expected = await second.logits(x, 6);
    const model = fineTunedModel(backbone, second.checkpointWeights(), true, second.head, 1);
    const perImage = 3 * 32 * 32;
    const got = await modelLogits(model, backbone.info, {count: 6, batch: async (s, e) => Array.from({length: e - s}, (_, i) => ({data: x.subarray((s + i) * perImage, (s + i + 1) * perImage), dims: [1, 3, 32, 32], dtype: 'float32' as const}))}, {device: 'cpu', threads: 1}, 2);
    let diff = 0;
    expected.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - got[i]!))));
    expect(diff).toBeLessThan(1e-4);
    // ... and it is not the untrained model: the live weights differ from the EMA ones, and from the original.
    const live = await modelLogits(fineTunedModel(backbone, second.checkpointWeights(), false, second.head, 1), backbone.info, {count: 6, batch: async (s, e) => Array.from({length: e - s}, (_, i) => ({data: x.subarray((s + i) * perImage, (s + i + 1) * perImage), dims: [1, 3, 32, 32], dtype: 'float32' as const}))}, {device: 'cpu', threads: 1}, 2);
    expect(Math.max(...Array.from(live, (v, i) => Math.abs(v - got[i]!)))).toBeGreaterThan(1e-3);
    await release(first);
    await release(second);
  });
});

/**
 * What the FineTuner tests share: the PyTorch-exported tiny ViT, one optimizer and head setting, seeded images of
 * its 32 px input, and the release of a tuner.
 */
import {fileURLToPath} from 'node:url';
import type {FineTuner} from '../../src/lib/train/fine-tune.js';
import type {HeadSpec, OptimizerSpec} from '../../src/lib/train/head.js';
import {SeededRandom} from '../../src/lib/util/random.js';

export const TINY_VIT = fileURLToPath(new URL('../fixtures/models/tiny-vit', import.meta.url));

export const TUNE_OPTIMIZER: OptimizerSpec = {weightDecay: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1, ema: 0.5, labelSmoothing: 0.1, classWeights: [1, 3]};

/** An MLP head with dropout; `inputDim` is the backbone's feature size. */
export const tuneHead = (inputDim: number): HeadSpec => ({type: 'mlp', hidden: 16, dropout: 0.25, inputDim, classes: 2, seed: 5});

/** `n` preprocessed 32x32 images (NCHW floats) drawn from N(0, 1) with `seed`. */
export function vitImages(n: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  return Float32Array.from({length: n * 3 * 32 * 32}, () => rng.normal());
}

export async function releaseTuner(t: FineTuner): Promise<void> {
  t.head.dispose();
  await t.dispose();
}

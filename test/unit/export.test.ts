import * as ort from 'onnxruntime-node';
import {describe, expect, it} from 'vitest';
import {tfjsToOnnx} from '../../src/lib/export/onnx-export.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {buildModel, type Architecture} from '../../src/lib/train/zoo.js';
import {SeededRandom} from '../../src/lib/util/random.js';

describe('TF.js -> ONNX export of every zoo architecture', () => {
  for (const architecture of ['tiny-cnn', 'small-cnn', 'mobilenet'] as Architecture[]) {
    it(`${architecture}: onnxruntime matches TF.js within 1e-4 (with non-trivial batch-norm statistics)`, async () => {
      const {tf} = await loadTfjs('wasm');
      const size = 32;
      const model = buildModel(tf, {architecture, size, width: 0.5, classes: 2, seed: 5});
      const rng = new SeededRandom(architecture);
      // Give batch norm real statistics, as a trained model has.
      model.setWeights(
        model.weights.map((w) => {
          const n = (w.shape as number[]).reduce((a, b) => a * b, 1);
          if (w.originalName.endsWith('moving_variance')) return tf.tensor(Array.from({length: n}, () => rng.uniform(0.5, 2)), w.shape as number[]);
          if (w.originalName.endsWith('moving_mean') || w.originalName.endsWith('beta')) return tf.tensor(Array.from({length: n}, () => rng.normal(0, 0.3)), w.shape as number[]);
          return w.read().clone();
        }),
      );
      const graph = await tfjsToOnnx(model, 'test');
      const session = await ort.InferenceSession.create(graph.onnx);
      const n = 3;
      const nhwc = Float32Array.from({length: n * size * size * 3}, () => rng.next());
      const nchw = new Float32Array(nhwc.length);
      for (let b = 0; b < n; b++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) nchw[((b * 3 + c) * size + y) * size + x] = nhwc[((b * size + y) * size + x) * 3 + c]!;
      const expected = tf.tidy(() => (model.predict(tf.tensor4d(nhwc, [n, size, size, 3])) as import('@tensorflow/tfjs').Tensor).dataSync());
      const logits = (await session.run({pixel_values: new ort.Tensor('float32', nchw, [n, 3, size, size])})).logits!.data as Float32Array;
      for (let b = 0; b < n; b++) {
        const l0 = logits[b * 2]!;
        const l1 = logits[b * 2 + 1]!;
        const p1 = 1 / (1 + Math.exp(l0 - l1));
        expect(Math.abs(p1 - expected[b * 2 + 1]!)).toBeLessThan(1e-4);
      }
      await session.release();
      model.dispose();
    });
  }
});

import {fileURLToPath} from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import {beforeAll, describe, expect, it} from 'vitest';
import {readOnnxModel} from '../../src/lib/onnx/decode.js';
import {encodeOnnxModel, type OnnxModelSpec} from '../../src/lib/onnx/model.js';
import {TrainableGraph, type TrainSelection} from '../../src/lib/onnx-exec/trainable-graph.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {resnetGraph, vitGraph} from '../helpers/onnx-graphs.js';

const fixture = (file: string): string => fileURLToPath(new URL(`../fixtures/models/${file}`, import.meta.url));

async function ortLogits(spec: OnnxModelSpec, data: Float32Array, dims: number[], output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeOnnxModel(spec));
  const out = await session.run({[spec.inputs[0]!.name]: new ort.Tensor('float32', data, dims)});
  await session.release();
  return out[output]!.data as Float32Array;
}

describe('TrainableGraph: frozen prefix in onnxruntime, trainable tail on TF.js', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });

  const cases: Array<[string, () => Promise<OnnxModelSpec>, TrainSelection, number]> = [
    ['ViT last:1', async () => vitGraph({image: 32, patch: 8, dim: 32, depth: 3, heads: 4, mlp: 64, classes: 3}), {last: 1}, 32],
    ['ResNet last:2', async () => resnetGraph({image: 48, widths: [8, 16], blocks: [2, 1], classes: 2}), {last: 2}, 48],
    ['torch-exported tiny ViT last:1', async () => (await readOnnxModel(fixture('tiny-vit/model.onnx'))).spec, {last: 1}, 32],
    ['ResNet all', async () => resnetGraph({image: 48, widths: [8, 16], blocks: [2, 1], classes: 2}), {all: true}, 48],
  ];
  for (const [name, make, train, size] of cases) {
    it(`${name}: prefix + tail equals the whole model in onnxruntime, and a few Adam steps lower the loss`, async () => {
      const spec = await make();
      const graph = await TrainableGraph.create(tf, spec, {train, model: name, device: 'cpu'});
      expect(graph.prefixDevice).toBe('all' in train ? 'none' : 'cpu');
      const rng = new SeededRandom(9);
      const dims = [4, 3, size, size];
      const data = Float32Array.from({length: 4 * 3 * size * size}, () => rng.normal());
      const feeds = await graph.prefix(tf, data, dims);
      const logits = graph.forward(feeds);
      const ref = await ortLogits(spec, data, dims, graph.output);
      const mine = (await logits.data()) as Float32Array;
      expect(Math.max(...Array.from(ref, (v, i) => Math.abs(v - mine[i]!)))).toBeLessThan(1e-4);
      logits.dispose();
      // Regress the tail's output towards a fixed target: the loss must fall.
      const target = tf.randomNormal(logits.shape, 0, 1, 'float32', 3);
      const optimizer = tf.train.adam(1e-2);
      const loss = (): tf.Scalar => tf.tidy(() => tf.mean(tf.square(tf.sub(graph.forward(feeds), target))) as tf.Scalar);
      const first = (await loss().data())[0]!;
      for (let step = 0; step < 5; step++) tf.dispose(optimizer.minimize(loss, false, [...graph.variables.values()]) ?? []);
      const last = (await loss().data())[0]!;
      expect(last).toBeLessThan(first * 0.9);
      tf.dispose([target, ...Object.values(feeds).filter((f): f is tf.Tensor => f instanceof tf.Tensor)]);
      optimizer.dispose();
      await graph.dispose();
    });
  }
});

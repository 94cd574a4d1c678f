import {fileURLToPath} from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import {beforeAll, describe, expect, it} from 'vitest';
import {readOnnxModel} from '../../src/lib/onnx/decode.js';
import {OnnxExecutor} from '../../src/lib/onnx-exec/executor.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {compareModelWithOrt} from '../helpers/onnx-exec.js';
import {mobilenetGraph, resnetGraph, vitGraph} from '../helpers/onnx-graphs.js';

const VIT = vitGraph({image: 32, patch: 8, dim: 32, depth: 2, heads: 4, mlp: 64, classes: 3});
const VIT_DECOMPOSED = vitGraph({image: 32, patch: 8, dim: 32, depth: 2, heads: 2, mlp: 64, classes: 2, decomposedLayerNorm: true, seed: 5});
const RESNET = resnetGraph({image: 48, widths: [8, 16], blocks: [2, 1], classes: 2});
const MOBILENET = mobilenetGraph({image: 40, blocks: [[1, 16, 1], [4, 24, 2], [4, 24, 1]], classes: 2});

describe('ONNX executor on whole graphs: forward within 1e-4 of onnxruntime (wasm)', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });
  for (const [name, spec] of [['ViT (LayerNormalization op)', VIT], ['ViT (decomposed LayerNorm, opset 13)', VIT_DECOMPOSED], ['ResNet (basic blocks)', RESNET], ['MobileNetV2/V3 (depthwise, ReLU6, SE, HardSwish)', MOBILENET]] as const) {
    it(name, async () => {
      const {maxDiff, maxAbs} = await compareModelWithOrt(tf, spec, 3);
      expect(maxAbs).toBeGreaterThan(1e-3); // a graph that outputs zeros would pass anything
      expect(maxDiff).toBeLessThan(1e-4);
    });
  }

  it('leaks no tensors across runs (intermediates released, constants cached once)', async () => {
    const exec = new OnnxExecutor(tf, RESNET, {model: 'resnet'});
    const x = tf.randomNormal([2, 3, 48, 48]);
    tf.dispose(exec.run({pixel_values: x}));
    const before = tf.memory().numTensors;
    tf.dispose(exec.run({pixel_values: x}));
    expect(tf.memory().numTensors).toBe(before);
    exec.dispose();
    x.dispose();
  });
});

describe('ONNX executor on what torch.onnx.export really emits (fixtures of scripts/fixtures/tiny-backbones.py)', () => {
  beforeAll(async () => {
    await loadTfjs('wasm');
  });
  for (const file of ['tiny-vit/model.onnx', 'tiny-resnet.onnx']) {
    it(`${file}: every output within 1e-4 of onnxruntime`, async () => {
      const path = fileURLToPath(new URL(`../fixtures/models/${file}`, import.meta.url));
      const {spec, bytes} = await readOnnxModel(path);
      const rng = new SeededRandom(4);
      const dims = [2, 3, 32, 32];
      const data = Float32Array.from({length: 2 * 3 * 32 * 32}, () => rng.normal());
      const exec = new OnnxExecutor(tf, spec, {model: file});
      const x = tf.tensor(data, dims);
      const mine = exec.run({pixel_values: x});
      const session = await ort.InferenceSession.create(bytes);
      const ref = await session.run({pixel_values: new ort.Tensor('float32', data, dims)});
      await session.release();
      for (const o of spec.outputs) {
        const r = ref[o.name]!;
        const m = mine[o.name]!;
        expect(m.shape).toEqual([...r.dims]);
        const md = (await m.data()) as Float32Array;
        const diff = Math.max(...Array.from(r.data as Float32Array, (v, i) => Math.abs(v - md[i]!)));
        expect(diff, o.name).toBeLessThan(1e-4);
      }
      tf.dispose([x, ...Object.values(mine)]);
      exec.dispose();
    });
  }
});

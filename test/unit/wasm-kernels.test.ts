import * as tf from '@tensorflow/tfjs';
import {describe, expect, it} from 'vitest';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';

describe('wasm training kernels', () => {
  it('Conv2DBackpropFilter on wasm matches the cpu backend (strides, same/valid padding; tfjs has no dilated conv gradients)', async () => {
    const loaded = await loadTfjs('wasm');
    expect(loaded.backend).toBe('wasm');
    const rng = new SeededRandom(3);
    const cases: Array<{x: number[]; f: number[]; strides: number; pad: 'same' | 'valid'; dilations: number}> = [
      {x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same', dilations: 1},
      {x: [2, 10, 11, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same', dilations: 1},
      {x: [1, 12, 12, 2], f: [5, 5, 2, 3], strides: 2, pad: 'valid', dilations: 1},
      {x: [3, 8, 8, 4], f: [1, 1, 4, 6], strides: 1, pad: 'valid', dilations: 1},
    ];
    for (const c of cases) {
      const xv = Array.from({length: c.x.reduce((a, b) => a * b)}, () => rng.normal());
      const fv = Array.from({length: c.f.reduce((a, b) => a * b)}, () => rng.normal());
      const grad = async (backend: string): Promise<Float32Array> => {
        await tf.setBackend(backend);
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const f = tf.tensor4d(fv, c.f as [number, number, number, number]);
        const g = tf.grad((filter: tf.Tensor) => tf.conv2d(x, filter as tf.Tensor4D, c.strides, c.pad, 'NHWC', c.dilations).square().sum())(f);
        const data = (await g.data()) as Float32Array;
        tf.dispose([x, f, g]);
        return data;
      };
      const onCpu = await grad('cpu');
      const onWasm = await grad('wasm');
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < onCpu.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(onCpu[i]! - onWasm[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(onCpu[i]!));
      }
      expect(maxDiff / Math.max(1, maxAbs), JSON.stringify(c)).toBeLessThan(1e-5);
    }
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const x = tf.randomNormal([2, 8, 8, 3]);
    const f = tf.randomNormal([3, 3, 3, 4]);
    tf.dispose(tf.grad((filter: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same').sum())(f));
    tf.dispose([x, f]);
    expect(tf.memory().numTensors).toBe(before); // no tensors leak from the kernel
  });
});

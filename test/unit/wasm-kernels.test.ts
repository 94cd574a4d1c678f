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

describe('wasm depthwise training kernels', () => {
  it('DepthwiseConv2dNative gradients (filter and input) on wasm match the cpu backend', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(11);
    const cases: Array<{x: [number, number, number, number]; f: [number, number, number, number]; strides: number; pad: 'same' | 'valid'}> = [
      {x: [2, 9, 9, 3], f: [3, 3, 3, 1], strides: 1, pad: 'same'},
      {x: [2, 10, 10, 4], f: [3, 3, 4, 1], strides: 2, pad: 'same'},
      {x: [1, 11, 11, 2], f: [3, 3, 2, 2], strides: 2, pad: 'valid'},
      {x: [1, 8, 7, 3], f: [5, 5, 3, 1], strides: 1, pad: 'same'},
    ];
    for (const c of cases) {
      const xv = Array.from({length: c.x.reduce((a, b) => a * b)}, () => rng.normal());
      const fv = Array.from({length: c.f.reduce((a, b) => a * b)}, () => rng.normal());
      const grads = async (backend: string): Promise<[Float32Array, Float32Array]> => {
        await tf.setBackend(backend);
        const x = tf.tensor4d(xv, c.x);
        const f = tf.tensor4d(fv, c.f);
        const loss = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad).square().sum();
        const [gx, gf] = tf.grads(loss)([x, f]);
        const out: [Float32Array, Float32Array] = [(await gx!.data()) as Float32Array, (await gf!.data()) as Float32Array];
        tf.dispose([x, f, gx!, gf!]);
        return out;
      };
      const cpu = await grads('cpu');
      const wasm = await grads('wasm');
      for (const which of [0, 1] as const) {
        let maxDiff = 0;
        let maxAbs = 0;
        for (let i = 0; i < cpu[which].length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(cpu[which][i]! - wasm[which][i]!));
          maxAbs = Math.max(maxAbs, Math.abs(cpu[which][i]!));
        }
        expect(maxDiff / Math.max(1, maxAbs), `${JSON.stringify(c)} ${which === 0 ? 'input' : 'filter'}`).toBeLessThan(1e-5);
      }
    }
    await tf.setBackend('wasm');
  });
});

describe('wasm Conv2DBackpropInput (spread dy + convolution with the rotated filter)', () => {
  it('matches the cpu backend (strides 1-3, same/valid, odd sizes, 1x1 to 7x7)', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(5);
    const cases: Array<{x: [number, number, number, number]; f: [number, number, number, number]; strides: number | [number, number]; pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]]}> = [
      {x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same'},
      {x: [2, 10, 11, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same'},
      {x: [1, 12, 13, 2], f: [5, 5, 2, 3], strides: 2, pad: 'valid'},
      {x: [3, 8, 8, 4], f: [1, 1, 4, 6], strides: 1, pad: 'valid'},
      {x: [1, 16, 15, 3], f: [7, 7, 3, 4], strides: 2, pad: 'same'},
      {x: [2, 11, 10, 2], f: [3, 3, 2, 3], strides: [3, 2], pad: 'same'},
      {x: [1, 9, 8, 2], f: [3, 3, 2, 2], strides: 2, pad: [[0, 0], [0, 1], [1, 2], [0, 0]]},
    ];
    for (const c of cases) {
      const xv = Array.from({length: c.x.reduce((a, b) => a * b)}, () => rng.normal());
      const fv = Array.from({length: c.f.reduce((a, b) => a * b)}, () => rng.normal());
      const grad = async (backend: string): Promise<Float32Array> => {
        await tf.setBackend(backend);
        const x = tf.tensor4d(xv, c.x);
        const f = tf.tensor4d(fv, c.f);
        const g = tf.grad((input: tf.Tensor) => tf.conv2d(input as tf.Tensor4D, f, c.strides, c.pad).square().sum())(x);
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
    tf.dispose(tf.grad((input: tf.Tensor) => tf.conv2d(input as tf.Tensor4D, f as tf.Tensor4D, 2, 'same').sum())(x));
    tf.dispose([x, f]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

import * as tf from '@tensorflow/tfjs';
import {describe, expect, it} from 'vitest';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {SeededRandom} from '../../src/lib/util/random.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

function relativeDiff(expected: ArrayLike<number>, actual: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(expected[i]! - actual[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]!));
  }
  return maxDiff / Math.max(1, maxAbs);
}


/** The same computation on TF.js's cpu backend (the reference) and on wasm with natix's kernels: within 1e-5 of the largest value. */
async function expectCpuAndWasmAgree(compute: (backend: string) => Promise<Float32Array>, label: unknown): Promise<void> {
  const onCpu = await compute('cpu');
  const onWasm = await compute('wasm');
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < onCpu.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(onCpu[i]! - onWasm[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(onCpu[i]!));
  }
  expect(maxDiff / Math.max(1, maxAbs), JSON.stringify(label)).toBeLessThan(1e-5);
}

describe('wasm training kernels', () => {
  it('Conv2DBackpropFilter on wasm matches the cpu backend (strides, same/valid padding; tfjs has no dilated conv gradients)', async () => {
    const loaded = await loadTfjs('wasm');
    expect(loaded.backend).toBe('wasm');
    const rng = new SeededRandom(3);
    const cases: Array<{x: number[]; f: number[]; strides: number | [number, number]; pad: Pad; dilations: number}> = [
      {x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same', dilations: 1},
      {x: [2, 10, 11, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same', dilations: 1},
      {x: [1, 12, 12, 2], f: [5, 5, 2, 3], strides: 2, pad: 'valid', dilations: 1},
      {x: [3, 8, 8, 4], f: [1, 1, 4, 6], strides: 1, pad: 'valid', dilations: 1},
      // Stride phases: 3, asymmetric [2, 3], 1x1 stride 2, a 7x7/2 stem on 3 channels, a 4x4/4 patch embedding,
      // a kernel smaller than its stride, explicit asymmetric pads, odd sizes that leave rows unused.
      {x: [2, 11, 10, 3], f: [3, 3, 3, 4], strides: 3, pad: 'same', dilations: 1},
      {x: [1, 9, 13, 2], f: [3, 2, 2, 3], strides: [2, 3], pad: 'same', dilations: 1},
      {x: [2, 9, 9, 4], f: [1, 1, 4, 5], strides: 2, pad: 'valid', dilations: 1},
      {x: [1, 17, 16, 3], f: [7, 7, 3, 4], strides: 2, pad: 'same', dilations: 1},
      {x: [2, 16, 16, 3], f: [4, 4, 3, 5], strides: 4, pad: 'valid', dilations: 1},
      {x: [1, 10, 11, 2], f: [2, 2, 2, 3], strides: 3, pad: 'valid', dilations: 1},
      {x: [1, 9, 8, 2], f: [3, 3, 2, 2], strides: 2, pad: [[0, 0], [0, 1], [1, 2], [0, 0]], dilations: 1},
      {x: [1, 8, 9, 2], f: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [2, 0], [0, 3], [0, 0]], dilations: 1},
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
      await expectCpuAndWasmAgree(grad, c);
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
  it('DepthwiseConv2dNative gradients (filter and input) on wasm match the cpu backend (multipliers 1-3, strides 1-3, explicit pads)', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(11);
    const cases: Array<{x: [number, number, number, number]; f: [number, number, number, number]; strides: number | [number, number]; pad: Pad}> = [
      {x: [2, 9, 9, 3], f: [3, 3, 3, 1], strides: 1, pad: 'same'},
      {x: [2, 10, 10, 4], f: [3, 3, 4, 1], strides: 2, pad: 'same'},
      {x: [1, 11, 11, 2], f: [3, 3, 2, 2], strides: 2, pad: 'valid'},
      {x: [1, 8, 7, 3], f: [5, 5, 3, 1], strides: 1, pad: 'same'},
      {x: [2, 11, 10, 3], f: [3, 3, 3, 2], strides: [2, 3], pad: 'same'},
      {x: [1, 9, 8, 2], f: [3, 3, 2, 3], strides: 2, pad: [[0, 0], [0, 1], [1, 2], [0, 0]]},
      {x: [1, 12, 12, 4], f: [2, 2, 4, 1], strides: 3, pad: 'valid'},
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

describe('wasm Conv2DBackpropInput (stride phases: stride-1 convolutions of dy with the rotated phase filters)', () => {
  it('matches the cpu backend (strides 1-4, same/valid/explicit pads, odd sizes, phases without taps, 1x1 to 7x7)', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(5);
    const cases: Array<{x: [number, number, number, number]; f: [number, number, number, number]; strides: number | [number, number]; pad: Pad}> = [
      {x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same'},
      {x: [2, 10, 11, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same'},
      {x: [1, 12, 13, 2], f: [5, 5, 2, 3], strides: 2, pad: 'valid'},
      {x: [3, 8, 8, 4], f: [1, 1, 4, 6], strides: 1, pad: 'valid'},
      {x: [1, 16, 15, 3], f: [7, 7, 3, 4], strides: 2, pad: 'same'},
      {x: [2, 11, 10, 2], f: [3, 3, 2, 3], strides: [3, 2], pad: 'same'},
      {x: [1, 9, 8, 2], f: [3, 3, 2, 2], strides: 2, pad: [[0, 0], [0, 1], [1, 2], [0, 0]]},
      // Phases without taps (kernel smaller than the stride), a 4x4/4 patch embedding, stride 3 with 'valid'
      // leaving rows unused, pads larger than the kernel reach.
      {x: [2, 9, 9, 4], f: [1, 1, 4, 5], strides: 2, pad: 'valid'},
      {x: [1, 10, 11, 2], f: [2, 2, 2, 3], strides: 3, pad: 'valid'},
      {x: [2, 16, 16, 3], f: [4, 4, 3, 5], strides: 4, pad: 'valid'},
      {x: [1, 13, 12, 3], f: [3, 3, 3, 2], strides: 3, pad: 'valid'},
      {x: [1, 7, 9, 2], f: [3, 3, 2, 2], strides: [1, 2], pad: [[0, 0], [3, 1], [0, 4], [0, 0]]},
      {x: [1, 6, 6, 2], f: [2, 2, 2, 2], strides: 1, pad: [[0, 0], [3, 3], [2, 2], [0, 0]]},
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
      await expectCpuAndWasmAgree(grad, c);
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

describe('wasm Conv2DBackpropFilter with dilations (the conv2d gradient of TF.js refuses them; the kernel is called directly)', () => {
  it('matches a direct sum over the input', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(8);
    const cases: Array<{x: [number, number, number, number]; k: [number, number]; co: number; dilations: [number, number]; pad: [number, number, number, number]}> = [
      {x: [2, 9, 8, 3], k: [3, 3], co: 4, dilations: [2, 2], pad: [2, 2, 2, 2]},
      {x: [1, 11, 10, 2], k: [3, 2], co: 3, dilations: [3, 2], pad: [1, 0, 2, 1]},
    ];
    for (const c of cases) {
      const [n, h, w, ci] = c.x;
      const [kh, kw] = c.k;
      const [top, bottom, left, right] = c.pad;
      const oh = h + top + bottom - (kh - 1) * c.dilations[0];
      const ow = w + left + right - (kw - 1) * c.dilations[1];
      const xv = Float32Array.from({length: n * h * w * ci}, () => rng.normal());
      const dyv = Float32Array.from({length: n * oh * ow * c.co}, () => rng.normal());
      const expected = new Float64Array(kh * kw * ci * c.co);
      for (let b = 0; b < n; b++) {
        for (let y = 0; y < oh; y++) {
          for (let x = 0; x < ow; x++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const yy = y + i * c.dilations[0] - top;
                const xx = x + j * c.dilations[1] - left;
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                for (let a = 0; a < ci; a++) {
                  for (let o = 0; o < c.co; o++) expected[((i * kw + j) * ci + a) * c.co + o]! += xv[((b * h + yy) * w + xx) * ci + a]! * dyv[((b * oh + y) * ow + x) * c.co + o]!;
                }
              }
            }
          }
        }
      }
      const x = tf.tensor4d(xv, c.x);
      const dy = tf.tensor4d(dyv, [n, oh, ow, c.co]);
      const g = tf.engine().runKernel('Conv2DBackpropFilter', {x, dy}, {strides: [1, 1], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dilations: c.dilations, filterShape: [kh, kw, ci, c.co]}) as tf.Tensor;
      expect(g.shape).toEqual([kh, kw, ci, c.co]);
      expect(relativeDiff(expected, g.dataSync()), JSON.stringify(c)).toBeLessThan(1e-5);
      tf.dispose([x, dy, g]);
    }
  });
});

describe('wasm BatchMatMul (every product on XNNPACK: transposes and batches included)', () => {
  it('matches the cpu backend, forward and gradients, for transposed, batched and broadcast operands', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(13);
    const cases: Array<{a: number[]; b: number[]; ta: boolean; tb: boolean}> = [
      {a: [5, 7], b: [7, 3], ta: false, tb: false},
      {a: [7, 5], b: [7, 3], ta: true, tb: false},
      {a: [5, 7], b: [3, 7], ta: false, tb: true},
      {a: [7, 5], b: [3, 7], ta: true, tb: true},
      {a: [1, 7], b: [7, 4], ta: false, tb: false},
      {a: [4, 5, 7], b: [4, 7, 3], ta: false, tb: false},
      {a: [4, 7, 5], b: [4, 3, 7], ta: true, tb: true},
      {a: [3, 5, 7], b: [7, 6], ta: false, tb: false},
      {a: [3, 5, 7], b: [1, 6, 7], ta: false, tb: true},
      {a: [5, 7], b: [3, 7, 2], ta: false, tb: false},
      {a: [2, 3, 4, 5], b: [2, 3, 5, 6], ta: false, tb: false},
      {a: [2, 1, 4, 5], b: [1, 3, 5, 2], ta: false, tb: false},
    ];
    for (const c of cases) {
      const av = Array.from({length: c.a.reduce((x, y) => x * y)}, () => rng.normal());
      const bv = Array.from({length: c.b.reduce((x, y) => x * y)}, () => rng.normal());
      const run = async (backend: string): Promise<Float32Array[]> => {
        await tf.setBackend(backend);
        const a = tf.tensor(av, c.a);
        const b = tf.tensor(bv, c.b);
        const y = tf.matMul(a, b, c.ta, c.tb);
        // TF.js's own MatMul gradient does not reduce broadcast batch dimensions: gradients for equal batches only.
        const sameBatch = c.a.length === c.b.length && c.a.slice(0, -2).every((d, i) => d === c.b[i]);
        const weights = tf.randomUniform(y.shape, -1, 1, 'float32', 3);
        const grads = sameBatch ? tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, c.ta, c.tb).mul(weights).sum())([a, b]) : [];
        const out = [y, ...grads].map((t) => t.dataSync() as Float32Array);
        tf.dispose([a, b, y, weights, ...grads]);
        return out;
      };
      const cpu = await run('cpu');
      const wasm = await run('wasm');
      expect(wasm.length).toBe(cpu.length);
      cpu.forEach((expected, i) => expect(relativeDiff(expected, wasm[i]!), `${JSON.stringify(c)} ${['y', 'dA', 'dB'][i]}`).toBeLessThan(1e-5));
    }
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const a = tf.randomNormal([3, 4, 5]);
    const b = tf.randomNormal([3, 6, 5]);
    tf.dispose([tf.matMul(a, b, false, true), ...tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, false, true).sum())([a, b])]);
    tf.dispose([a, b]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('wasm Transpose and Slice (rank reduced / copied through heap views)', () => {
  it('match the cpu backend for ranks 1-6, size-1 axes, every dtype, and leak nothing', async () => {
    await loadTfjs('wasm');
    const rng = new SeededRandom(17);
    const transposes: Array<{shape: number[]; perm: number[]}> = [
      {shape: [5], perm: [0]},
      {shape: [3, 4], perm: [1, 0]},
      {shape: [2, 3, 4], perm: [0, 2, 1]},
      {shape: [2, 1, 4, 3], perm: [3, 1, 0, 2]},
      {shape: [2, 7, 3, 3, 8], perm: [2, 0, 3, 1, 4]}, // ViT qkv split: rank 5, the last axis stays last
      {shape: [2, 3, 4, 5, 6], perm: [4, 3, 2, 1, 0]}, // rank 5, runs of one element
      {shape: [2, 3, 2, 5, 2, 3], perm: [2, 3, 0, 4, 1, 5]},
      {shape: [4, 1, 3, 1, 5, 2], perm: [5, 1, 4, 0, 3, 2]},
      {shape: [2, 3, 4, 5], perm: [0, 1, 2, 3]},
      {shape: [3, 4, 5, 6], perm: [2, 3, 0, 1]}, // merges to a 2-D transpose
    ];
    const slices: Array<{shape: number[]; begin: number[]; size: number[]}> = [
      {shape: [10], begin: [3], size: [4]},
      {shape: [6, 7], begin: [1, 2], size: [3, -1]},
      {shape: [4, 5, 6], begin: [1, 0, 0], size: [2, 5, 6]},
      {shape: [4, 5, 6], begin: [0, 1, 2], size: [4, 3, 2]},
      {shape: [2, 3, 4, 5, 6], begin: [1, 0, 1, 2, 0], size: [1, 3, 2, 3, 6]},
      {shape: [3, 1, 4, 2], begin: [1, 0, 3, 1], size: [2, 1, 1, 1]},
    ];
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const values = (shape: number[]): number[] => Array.from({length: shape.reduce((a, b) => a * b, 1)}, () => (dtype === 'float32' ? rng.normal() : dtype === 'int32' ? Math.floor(rng.next() * 1000) - 500 : rng.next() < 0.5 ? 0 : 1));
      for (const c of transposes) {
        const v = values(c.shape);
        const run = async (backend: string): Promise<[number[], ArrayLike<number>]> => {
          await tf.setBackend(backend);
          const x = tf.tensor(v, c.shape, dtype);
          const y = tf.transpose(x, c.perm);
          const out: [number[], ArrayLike<number>] = [y.shape, Array.from(y.dataSync() as ArrayLike<number>)];
          tf.dispose([x, y]);
          return out;
        };
        const [cpuShape, cpu] = await run('cpu');
        const [wasmShape, wasm] = await run('wasm');
        expect(wasmShape, `${dtype} ${JSON.stringify(c)}`).toEqual(cpuShape);
        expect(Array.from(wasm), `${dtype} ${JSON.stringify(c)}`).toEqual(Array.from(cpu));
      }
      for (const c of slices) {
        const v = values(c.shape);
        const run = async (backend: string): Promise<[number[], number[]]> => {
          await tf.setBackend(backend);
          const x = tf.tensor(v, c.shape, dtype);
          const y = tf.slice(x, c.begin, c.size);
          const out: [number[], number[]] = [y.shape, Array.from(y.dataSync() as ArrayLike<number>)];
          tf.dispose([x, y]);
          return out;
        };
        expect(await run('wasm'), `${dtype} ${JSON.stringify(c)}`).toEqual(await run('cpu'));
      }
    }
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const x = tf.randomNormal([2, 3, 4, 5, 6]);
    tf.dispose([tf.transpose(x, [4, 3, 2, 1, 0]), tf.transpose(x, [0, 2, 1, 3, 4]), tf.slice(x, [1, 1, 0, 0, 2], [1, 2, 4, 5, 3]), ...tf.grads((t: tf.Tensor) => tf.transpose(t, [2, 0, 3, 1, 4]).slice([1], [2]).sum())([x])]);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

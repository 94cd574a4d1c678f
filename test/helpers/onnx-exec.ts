/**
 * Helpers for executor tests: build a model in memory with the project's ONNX encoder, run it in onnxruntime and
 * in natix's executor, and compare.
 */
import * as ort from 'onnxruntime-node';
import type {Tensor} from '@tensorflow/tfjs';
import {OnnxExecutor} from '../../src/lib/onnx-exec/executor.js';
import {encodeOnnxModel, type OnnxModelSpec, type OnnxNode, type OnnxTensor, type ValueInfo} from '../../src/lib/onnx/model.js';
import type {Tf} from '../../src/lib/runtime/tf-type.js';
import {SeededRandom} from '../../src/lib/util/random.js';

export interface FeedSpec {
  name: string;
  dims: number[];
  type?: 'float' | 'int64';
  /** Values (default: normal random). */
  values?: number[];
}

export interface OpCase {
  name: string;
  nodes: OnnxNode[];
  inputs: FeedSpec[];
  initializers?: OnnxTensor[];
  outputs: string[];
  opset?: number;
}

export function randomValues(rng: SeededRandom, n: number, scale = 1): number[] {
  return Array.from({length: n}, () => rng.normal() * scale);
}

export function feedData(f: FeedSpec, rng: SeededRandom): number[] {
  return f.values ?? randomValues(rng, f.dims.reduce((a, b) => a * b, 1));
}

/** The model of a case, with output shapes/types taken from what the executor computed. */
export function caseSpec(c: OpCase, outputs?: Record<string, {dims: number[]; type: 'float' | 'int64' | 'bool'}>): OnnxModelSpec {
  const outInfo: ValueInfo[] = c.outputs.map((name) => ({name, type: outputs?.[name]?.type ?? 'float', shape: outputs?.[name]?.dims ?? []}));
  return {
    graphName: c.name,
    nodes: c.nodes,
    inputs: c.inputs.map((i) => ({name: i.name, type: i.type ?? 'float', shape: i.dims})),
    outputs: outInfo,
    initializers: c.initializers ?? [],
    opset: c.opset ?? 13,
  };
}

export interface Compared {
  maxDiff: number;
  maxAbs: number;
  shapes: Record<string, number[]>;
}

/** Runs a case in natix's executor and in onnxruntime on the same random inputs; the largest absolute difference. */
export async function compareWithOrt(tf: Tf, c: OpCase, seed = 1): Promise<Compared> {
  const rng = new SeededRandom(seed);
  const data = Object.fromEntries(c.inputs.map((i) => [i.name, feedData(i, rng)]));
  const exec = new OnnxExecutor(tf, caseSpec(c), {model: c.name});
  const feeds: Record<string, Tensor> = {};
  for (const i of c.inputs) feeds[i.name] = tf.tensor(data[i.name]!, i.dims, i.type === 'int64' ? 'int32' : 'float32');
  const out = exec.run(feeds);
  const mine: Record<string, {dims: number[]; type: 'float' | 'int64' | 'bool'; data: Float64Array}> = {};
  for (const name of c.outputs) {
    const t = out[name]!;
    mine[name] = {dims: t.shape, type: t.dtype === 'float32' ? 'float' : t.dtype === 'bool' ? 'bool' : 'int64', data: Float64Array.from(await t.data())};
  }
  tf.dispose([...Object.values(out), ...Object.values(feeds)]);
  exec.dispose();
  const session = await ort.InferenceSession.create(encodeOnnxModel(caseSpec(c, mine)));
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const i of c.inputs) {
    ortFeeds[i.name] = i.type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(data[i.name]!.map((v) => BigInt(v))), i.dims) : new ort.Tensor('float32', Float32Array.from(data[i.name]!), i.dims);
  }
  const ref = await session.run(ortFeeds);
  await session.release();
  let maxDiff = 0;
  let maxAbs = 0;
  const shapes: Record<string, number[]> = {};
  for (const name of c.outputs) {
    const r = ref[name]!;
    shapes[name] = mine[name]!.dims;
    if (JSON.stringify([...r.dims]) !== JSON.stringify(mine[name]!.dims)) throw new Error(`${c.name}: ${name} has shape [${mine[name]!.dims}] in natix, [${r.dims}] in onnxruntime`);
    const rd = Array.from(r.data as ArrayLike<number | bigint>, Number);
    rd.forEach((v, k) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - mine[name]!.data[k]!));
      maxAbs = Math.max(maxAbs, Math.abs(v));
    });
  }
  return {maxDiff, maxAbs, shapes};
}

/**
 * Gradient check: loss = sum(output * R) for a fixed random R (float64 accumulation); TF.js's gradient with respect
 * to each trainable initializer against central finite differences at `probes` random coordinates. Returns the worst
 * |analytic - numeric| / max(1, |numeric|).
 */
export async function gradientError(tf: Tf, c: OpCase, trainable: string[], seed = 2, probes = 6, h = 1e-2): Promise<{worst: number; where: string}> {
  const rng = new SeededRandom(seed);
  const data = Object.fromEntries(c.inputs.map((i) => [i.name, feedData(i, rng)]));
  const exec = new OnnxExecutor(tf, caseSpec(c), {model: c.name, trainable});
  const feeds: Record<string, Tensor> = {};
  for (const i of c.inputs) feeds[i.name] = tf.tensor(data[i.name]!, i.dims, i.type === 'int64' ? 'int32' : 'float32');
  const out0 = exec.run(feeds)[c.outputs[0]!]!;
  const weights = tf.tensor(randomValues(rng, out0.size), out0.shape);
  const r = (await weights.data()) as Float32Array;
  out0.dispose();
  const loss64 = async (): Promise<number> => {
    const y = exec.run(feeds)[c.outputs[0]!]!;
    const d = (await y.data()) as Float32Array;
    y.dispose();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * r[i]!;
    return s;
  };
  const vars = [...exec.variables.values()];
  const {grads} = tf.variableGrads(() => tf.sum(tf.mul(exec.run(feeds)[c.outputs[0]!]!, weights)) as import('@tensorflow/tfjs').Scalar, vars);
  let worst = 0;
  let where = '';
  for (const name of trainable) {
    const v = exec.variables.get(name)!;
    const g = (await grads[v.name]!.data()) as Float32Array;
    const base = (await v.data()) as Float32Array;
    for (let p = 0; p < probes; p++) {
      const k = Math.floor(rng.next() * base.length);
      const at = (delta: number): Float32Array => {
        const copy = Float32Array.from(base);
        copy[k] = base[k]! + delta;
        return copy;
      };
      v.assign(tf.tensor(at(h), v.shape));
      const plus = await loss64();
      v.assign(tf.tensor(at(-h), v.shape));
      const minus = await loss64();
      v.assign(tf.tensor(base, v.shape));
      const numeric = (plus - minus) / (2 * h);
      const err = Math.abs(g[k]! - numeric) / Math.max(1, Math.abs(numeric));
      if (err > worst) {
        worst = err;
        where = `${name}[${k}]: analytic ${g[k]}, numeric ${numeric}`;
      }
    }
  }
  tf.dispose([weights, ...Object.values(grads), ...Object.values(feeds)]);
  exec.dispose();
  return {worst, where};
}

/** A whole model (e.g. from onnx-graphs.ts) in natix's executor and in onnxruntime on one random NCHW batch. */
export async function compareModelWithOrt(tf: Tf, spec: OnnxModelSpec, batch: number, seed = 3): Promise<{maxDiff: number; maxAbs: number; logits: Float32Array}> {
  const input = spec.inputs[0]!;
  const dims = [batch, ...(input.shape ?? []).slice(1).map(Number)];
  const data = Float32Array.from(randomValues(new SeededRandom(seed), dims.reduce((a, b) => a * b, 1)));
  const exec = new OnnxExecutor(tf, spec, {model: spec.graphName});
  const x = tf.tensor(data, dims);
  const out = exec.run({[input.name]: x});
  const mine = (await out[spec.outputs[0]!.name]!.data()) as Float32Array;
  tf.dispose([x, ...Object.values(out)]);
  exec.dispose();
  const session = await ort.InferenceSession.create(encodeOnnxModel(spec));
  const ref = await session.run({[input.name]: new ort.Tensor('float32', data, dims)});
  await session.release();
  const r = ref[spec.outputs[0]!.name]!.data as Float32Array;
  let maxDiff = 0;
  let maxAbs = 0;
  r.forEach((v, k) => {
    maxDiff = Math.max(maxDiff, Math.abs(v - mine[k]!));
    maxAbs = Math.max(maxAbs, Math.abs(v));
  });
  return {maxDiff, maxAbs, logits: mine};
}

/**
 * The model fine-tuning differentiates: the split backbone's trainable tail and the head on its pooled output, as one
 * ordered list of parameters. It computes the loss, logits and gradients of ONE micro-batch; the FineTuner
 * (fine-tune.ts) adds micro-batches up and steps the optimizer, and a gradient worker (gradient-worker.ts) holds a
 * replica of this model to compute its share of a batch on another thread.
 *
 * How a batch splits into micro-batches depends only on the batch and micro-batch sizes, and their gradients are
 * always added in micro-batch order, so a step gives the same bits on one thread or several.
 */
import type {Scalar, Tensor, Variable} from '@tensorflow/tfjs';
import {batchDims, type Preprocessing} from '../image/preprocess.js';
import type {Feed} from '../onnx-exec/executor.js';
import type {TrainableGraph} from '../onnx-exec/trainable-graph.js';
import type {Tf} from '../runtime/tf-type.js';
import {headShapes, type Head} from './head.js';

/** Prefix of a backbone initializer's name in checkpoint arrays. */
export const ONNX_PREFIX = 'onnx:';

/** Weight decay applies to matrices and filters; biases, norm scales and learned tokens / position tables are exempt. */
export function decays(name: string, shape: readonly number[]): boolean {
  if (shape.length < 2) return false;
  return !/(pos(ition)?_?emb|cls_token|mask_token|register_tokens|dist_token|class_embedding)/i.test(name);
}

export interface Param {
  /** Checkpoint name (`head/W`, `onnx:<initializer>`). */
  name: string;
  variable: Variable;
  group: 'head' | 'backbone';
  decay: boolean;
}

/** A micro-batch: images [start, start + size) of the batch. */
export interface MicroBatch {
  start: number;
  size: number;
}

/**
 * The micro-batches of a batch of `n` images: ceil(n / microBatch) of them, sizes as equal as possible (10 with
 * micro-batch 8 is 5 + 5, not 8 + 2), so threads sharing them out get even work.
 */
export function microBatches(n: number, microBatch: number): MicroBatch[] {
  const count = Math.max(1, Math.ceil(n / Math.max(1, microBatch)));
  const base = Math.floor(n / count);
  const extra = n % count;
  const out: MicroBatch[] = [];
  for (let i = 0, start = 0; i < count; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push({start, size});
    start += size;
  }
  return out;
}

/** One boundary value of several images, packed: `dims` are one image's (the batch dimension left out). */
export interface BoundaryArray {
  name: string;
  dims: number[];
  data: Float32Array;
}

/**
 * What a batch is computed from: its preprocessed images (packed; the frozen prefix runs on them), or the frozen
 * prefix's outputs for them, as the boundary cache keeps them.
 */
export type ModelInput = {images: Float32Array} | {boundary: BoundaryArray[]};

/** Images [start, end) of an input of `n` images: views, or copies (for another thread) when `copy`. */
export function sliceInput(input: ModelInput, n: number, start: number, end: number, copy = false): ModelInput {
  const cut = (data: Float32Array): Float32Array => {
    const per = data.length / n;
    return copy ? data.slice(start * per, end * per) : data.subarray(start * per, end * per);
  };
  return 'images' in input ? {images: cut(input.images)} : {boundary: input.boundary.map((b) => ({...b, data: cut(b.data)}))};
}

/** The buffers of an input, to hand it over to another thread. */
export function inputBuffers(input: ModelInput): ArrayBuffer[] {
  return ('images' in input ? [input.images] : input.boundary.map((b) => b.data)).map((d) => d.buffer as ArrayBuffer);
}

/** What a micro-batch is trained against: label-smoothed targets, sample weights and the head's dropout mask. */
export interface MicroBatchTargets {
  targets: Float32Array;
  weights: Float32Array;
  mask?: Float32Array;
  /** The WHOLE batch's weight: each micro-batch's loss is divided by it, so micro-batch gradients add up exactly. */
  totalWeight: number;
}

export interface MicroBatchResult {
  loss: number;
  logits: Float32Array;
  /** One gradient per parameter, in `params` order; the caller disposes them. */
  grads: Tensor[];
}

export class TunedModel {
  readonly params: Param[];

  constructor(
    private readonly tf: Tf,
    readonly graph: TrainableGraph,
    readonly head: Head,
    private readonly preprocessing: Pick<Preprocessing, 'layout' | 'width' | 'height'>,
  ) {
    const backboneParams = [...graph.variables].map(([name, variable]) => ({name: `${ONNX_PREFIX}${name}`, variable, group: 'backbone' as const, decay: decays(name, variable.shape)}));
    const shapes = headShapes(head.spec);
    const headParams = head.params.map((variable, i) => ({name: shapes[i]!.name, variable, group: 'head' as const, decay: shapes[i]!.decay}));
    this.params = [...backboneParams, ...headParams];
  }

  /** What the trainable tail starts from for `size` images: the frozen prefix run on them, or their cached values. */
  private async feeds(input: ModelInput, size: number): Promise<Record<string, Feed>> {
    if ('images' in input) return this.graph.prefix(this.tf, input.images, batchDims(this.preprocessing, size));
    return Object.fromEntries(input.boundary.map((b) => [b.name, this.tf.tensor(b.data, [size, ...b.dims])]));
  }

  /** Frees the feeds that are tensors (the others are plain shape values). */
  private release(feeds: Record<string, Feed>): void {
    this.tf.dispose(Object.values(feeds).filter((f): f is Tensor => 'dataSync' in f));
  }

  /** Loss, logits and gradients of one micro-batch of `size` images. */
  async gradients(input: ModelInput, size: number, against: MicroBatchTargets): Promise<MicroBatchResult> {
    const tf = this.tf;
    const {classes, hidden} = this.head.spec;
    const variables = this.params.map((p) => p.variable);
    const feeds = await this.feeds(input, size);
    try {
      const result = tf.tidy(() => {
        const ts = tf.tensor2d(against.targets, [size, classes]);
        const ws = tf.tensor1d(against.weights);
        const ms = against.mask ? tf.tensor2d(against.mask, [size, hidden]) : undefined;
        let out: Tensor | undefined;
        const {value, grads} = tf.variableGrads(() => {
          out = tf.keep(this.head.forward(this.graph.forward(feeds), this.head.params, ms));
          const perSample = tf.neg(tf.sum(tf.mul(ts, tf.logSoftmax(out)), 1));
          return tf.div(tf.sum(tf.mul(perSample, ws)), against.totalWeight) as Scalar;
        }, variables);
        return {value: tf.keep(value), out: out!, grads: variables.map((v) => tf.keep(grads[v.name]!))};
      });
      const loss = (await result.value.data())[0]!;
      const logits = (await result.out.data()) as Float32Array;
      tf.dispose([result.value, result.out]);
      return {loss, logits, grads: result.grads};
    } finally {
      this.release(feeds);
    }
  }

  /** Logits of `n` packed images with the live values, `microBatch` images at a time. */
  async logits(input: Float32Array, n: number, microBatch: number): Promise<Float32Array> {
    const tf = this.tf;
    const perImage = input.length / n;
    const out = new Float32Array(n * this.head.spec.classes);
    for (const {start, size} of microBatches(n, microBatch)) {
      const feeds = await this.feeds({images: input.subarray(start * perImage, (start + size) * perImage)}, size);
      try {
        const logits = tf.tidy(() => this.head.forward(this.graph.forward(feeds), this.head.params));
        out.set((await logits.data()) as Float32Array, start * this.head.spec.classes);
        logits.dispose();
      } finally {
        this.release(feeds);
      }
    }
    return out;
  }

  /** Copies of the live values, in `params` order. */
  values(): Float32Array[] {
    return this.params.map((p) => Float32Array.from(p.variable.dataSync() as Float32Array));
  }

  /** Sets every value (in `params` order), e.g. a replica to the optimizer's values after a step. */
  assign(values: Float32Array[]): void {
    this.tf.tidy(() => this.params.forEach((p, i) => p.variable.assign(this.tf.tensor(values[i]!, p.variable.shape))));
  }
}

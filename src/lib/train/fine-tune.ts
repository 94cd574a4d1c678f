/**
 * Fine-tuning the end of a backbone together with the head (`model.train: last:N | all`, `model.train-from`).
 *
 * The backbone's feature graph (the user's graph cut at the features, pooling appended: the very graph the head
 * path extracts with) is split at the freeze boundary by `TrainableGraph`: the frozen prefix runs in onnxruntime
 * (CUDA when present) and its boundary activations feed the tail, which runs on TF.js with the tail's initializers
 * as variables (by ONNX name). The head sits on the tail's pooled output. One AdamW covers both parameter groups:
 * the head at `lr`, the backbone at `backbone-lr` (same schedule), decoupled weight decay on weight matrices and
 * filters only (never on biases, norm scales or position / class tokens), clipping on the global norm of both
 * groups, and an EMA of every trained value. A batch runs as micro-batches whose gradients add up to the exact
 * full-batch gradient (the loss is normalised by the whole batch's weight), so wasm's 4 GB are never the limit and
 * the prefix's activations are never kept for backprop.
 *
 * Checkpoint arrays: head `head/...`, backbone `onnx:<initializer>`, their EMA under `ema/`, AdamW moments under
 * `adamw/m/` and `adamw/v/`. The model a checkpoint describes (`fineTunedModel`) is the feature graph with the
 * trained initializers replaced by name plus the stitched head: validation, calibration and the export all run
 * that graph in onnxruntime, so the printed metrics are the exported model's.
 */
import type {Scalar, Tensor, Variable} from '@tensorflow/tfjs';
import {openSession, ort, type Device} from '../cascade/onnx-session.js';
import {ExitCode, NatixError} from '../errors.js';
import type {InputTensor} from '../image/preprocess.js';
import {stitchHead} from '../export/stitch-head.js';
import type {OnnxModelSpec} from '../onnx/model.js';
import {encodeOnnxModel} from '../onnx/model.js';
import {TrainableGraph, type TrainSelection} from '../onnx-exec/trainable-graph.js';
import {assignTrainable, withTrainedInitializers} from '../onnx-exec/weights.js';
import type {Tf} from '../runtime/tf-type.js';
import {FEATURES_VALUE, type Backbone} from './backbone.js';
import type {NamedArray} from './checkpoint.js';
import {adamwUpdate, headShapes, type Head, type OptimizerSpec, type StepResult} from './head.js';
import type {TrainScope} from './train-scope.js';

/** Prefix of a backbone initializer's name in checkpoint arrays. */
export const ONNX_PREFIX = 'onnx:';

/** The executor's selection for a scope (never `head`). */
export function selectionOf(scope: Exclude<TrainScope, {kind: 'head'}>): TrainSelection {
  if (scope.kind === 'all') return {all: true};
  if (scope.kind === 'from') return {from: scope.value};
  return {last: scope.blocks};
}

/** Weight decay applies to matrices and filters; biases, norm scales and learned tokens / position tables are exempt. */
export function decays(name: string, shape: readonly number[]): boolean {
  if (shape.length < 2) return false;
  return !/(pos(ition)?_?emb|cls_token|mask_token|register_tokens|dist_token|class_embedding)/i.test(name);
}

interface Param {
  /** Checkpoint name (`head/W`, `onnx:<initializer>`). */
  name: string;
  variable: Variable;
  group: 'head' | 'backbone';
  decay: boolean;
}

export interface FineTuneOptions {
  selection: TrainSelection;
  optimizer: OptimizerSpec;
  device: Device;
  /** Images per forward/backward pass; gradients accumulate over the batch. */
  microBatch: number;
}

export class FineTuner {
  private readonly params: Param[];
  private readonly m: Variable[];
  private readonly v: Variable[];
  private readonly ema: Variable[] | undefined;

  private constructor(
    private readonly tf: Tf,
    readonly graph: TrainableGraph,
    readonly head: Head,
    private readonly backbone: Pick<Backbone, 'info' | 'featureGraph'>,
    private readonly options: FineTuneOptions,
    weights: NamedArray[] | undefined,
  ) {
    const backboneParams = [...graph.variables].map(([name, variable]) => ({name: `${ONNX_PREFIX}${name}`, variable, group: 'backbone' as const, decay: decays(name, variable.shape)}));
    const shapes = headShapes(head.spec);
    const headParams = head.params.map((variable, i) => ({name: shapes[i]!.name, variable, group: 'head' as const, decay: shapes[i]!.decay}));
    this.params = [...backboneParams, ...headParams];
    // The head read its own arrays; the backbone's are checked by name and shape where weights.ts checks them.
    if (weights) assignTrainable(tf, graph.variables, arraysUnder(weights, ONNX_PREFIX));
    const ema = new Map(arraysUnder(weights ?? [], 'ema/').map((w) => [w.name, w]));
    this.m = this.params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.v = this.params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.ema = options.optimizer.ema > 0 ? this.params.map((p) => tf.variable(ema.has(p.name) ? tf.tensor(ema.get(p.name)!.data, p.variable.shape) : p.variable.clone(), false)) : undefined;
  }

  /**
   * Splits the backbone's feature graph for a selection: every op is checked and the boundary found here, so an
   * unsupported op or a boundary that does not exist is an error before any data is read.
   */
  static async split(tf: Tf, backbone: Pick<Backbone, 'info' | 'featureGraph'>, selection: TrainSelection, device: Device): Promise<TrainableGraph> {
    if (backbone.info.preprocessing.dtype !== 'float32') {
      throw new NatixError(`${backbone.info.onnxFile} takes ${backbone.info.preprocessing.dtype} pixels: fine-tuning its graph needs a float input`, {code: 'TRAIN_SCOPE_UNSUPPORTED', exitCode: ExitCode.Usage, actions: ['Train the head only (model.train: head).']});
    }
    return TrainableGraph.create(tf, backbone.featureGraph, {train: selection, model: backbone.info.onnxFile, output: FEATURES_VALUE, device});
  }

  /** Puts `head` on the split graph; `weights` are a checkpoint's arrays when resuming (the head reads its own). */
  static async create(tf: Tf, backbone: Pick<Backbone, 'info' | 'featureGraph'>, head: Head, options: FineTuneOptions, weights?: NamedArray[], graph?: TrainableGraph): Promise<FineTuner> {
    return new FineTuner(tf, graph ?? (await FineTuner.split(tf, backbone, options.selection, options.device)), head, backbone, options, weights);
  }

  /** Trained backbone parameters (elements) and how many initializers they are. */
  get backboneParameters(): {initializers: number; elements: number} {
    const backbone = this.params.filter((p) => p.group === 'backbone');
    return {initializers: backbone.length, elements: backbone.reduce((s, p) => s + p.variable.size, 0)};
  }

  /** Where the frozen prefix runs and what stays frozen in the tail (for the run log). */
  describe(): string {
    const {cut} = this.graph;
    const frozen = cut.frozen.length ? `; frozen in the tail: ${cut.frozen.length} (${[...new Set(cut.frozen.map((f) => f.reason))].join(', ')})` : '';
    const {initializers, elements} = this.backboneParameters;
    const prefix = this.graph.prefixDevice === 'none' ? 'no frozen prefix (all of it trains)' : this.graph.prefixDevice === 'tfjs' ? `frozen prefix on TF.js: ${this.graph.fallbackReason}` : `frozen prefix on onnxruntime ${this.graph.prefixDevice}`;
    return `Fine-tuning from "${cut.from}": ${cut.tail.length} nodes, ${initializers} initializers (${elements} parameters) on TF.js; ${prefix}${frozen}`;
  }

  private dims(n: number): number[] {
    const p = this.backbone.info.preprocessing;
    return p.layout === 'nchw' ? [n, 3, p.height, p.width] : [n, p.height, p.width, 3];
  }

  /**
   * Loss and summed gradients of a batch (preprocessed images packed in `input`) over micro-batches; the caller
   * disposes the gradients. The loss of each micro-batch is divided by the weight of the WHOLE batch, so the sum of
   * the micro-batch gradients is the full-batch gradient.
   */
  async gradients(input: Float32Array, labels: ArrayLike<number>, dropoutSeed: string): Promise<{loss: number; logits: Float32Array; grads: Tensor[]}> {
    const tf = this.tf;
    const n = labels.length;
    const perImage = input.length / n;
    const {targets, weights} = this.head.targets(labels);
    const totalWeight = weights.reduce((s, w) => s + w, 0);
    const mask = this.head.dropoutMask(n, dropoutSeed);
    const classes = this.head.spec.classes;
    const hidden = this.head.spec.hidden;
    const logits = new Float32Array(n * classes);
    let loss = 0;
    let sums: Tensor[] | undefined;
    const variables = this.params.map((p) => p.variable);
    for (let start = 0; start < n; start += this.options.microBatch) {
      const k = Math.min(this.options.microBatch, n - start);
      const feeds = await this.graph.prefix(tf, input.subarray(start * perImage, (start + k) * perImage), this.dims(k));
      try {
        const result = tf.tidy(() => {
          const ts = tf.tensor2d(targets.subarray(start * classes, (start + k) * classes), [k, classes]);
          const ws = tf.tensor1d(weights.subarray(start, start + k));
          const ms = mask ? tf.tensor2d(mask.subarray(start * hidden, (start + k) * hidden), [k, hidden]) : undefined;
          let out: Tensor | undefined;
          const {value, grads} = tf.variableGrads(() => {
            const features = this.graph.forward(feeds);
            out = tf.keep(this.head.forward(features, this.head.params, ms));
            const perSample = tf.neg(tf.sum(tf.mul(ts, tf.logSoftmax(out)), 1));
            return tf.div(tf.sum(tf.mul(perSample, ws)), totalWeight) as Scalar;
          }, variables);
          const g = variables.map((v) => grads[v.name]!);
          const summed = sums ? g.map((gi, i) => tf.add(sums![i]!, gi)) : g;
          return {value: tf.keep(value), out: out!, summed: summed.map((t) => tf.keep(t))};
        });
        if (sums) tf.dispose(sums);
        sums = result.summed;
        loss += (await result.value.data())[0]!;
        logits.set((await result.out.data()) as Float32Array, start * classes);
        tf.dispose([result.value, result.out]);
      } finally {
        tf.dispose(Object.values(feeds).filter((f): f is Tensor => 'dataSync' in f));
      }
    }
    return {loss, logits, grads: sums!};
  }

  /** One AdamW step on a batch: head at `lr`, backbone at `backboneLr` (t = 1-based step, for the bias correction). */
  async step(input: Float32Array, labels: ArrayLike<number>, lr: number, backboneLr: number, t: number, dropoutSeed: string): Promise<StepResult> {
    const tf = this.tf;
    const o = this.options.optimizer;
    const {loss, logits, grads} = await this.gradients(input, labels, dropoutSeed);
    tf.tidy(() => adamwUpdate(tf, this.params.map((p) => ({variable: p.variable, decay: p.decay, lr: p.group === 'head' ? lr : backboneLr})), {m: this.m, v: this.v, ema: this.ema}, grads, o, t));
    tf.dispose(grads);
    return {loss, logits};
  }

  private arrays(source: Variable[], prefix = ''): NamedArray[] {
    return this.params.map((p, i) => ({name: `${prefix}${p.name}`, shape: [...p.variable.shape], data: Float32Array.from(source[i]!.dataSync() as Float32Array)}));
  }

  /** Live values, then EMA values (`ema/` prefix) when on: what a checkpoint stores as weights. */
  checkpointWeights(): NamedArray[] {
    return [...this.arrays(this.params.map((p) => p.variable)), ...(this.ema ? this.arrays(this.ema, 'ema/') : [])];
  }

  optimizerState(): NamedArray[] {
    return [...this.arrays(this.m, 'adamw/m/'), ...this.arrays(this.v, 'adamw/v/')];
  }

  restoreOptimizer(state: NamedArray[]): void {
    const byName = new Map(state.map((a) => [a.name, a]));
    this.params.forEach((p, i) => {
      const m = byName.get(`adamw/m/${p.name}`);
      const v = byName.get(`adamw/v/${p.name}`);
      if (m) this.m[i]!.assign(this.tf.tensor(m.data, p.variable.shape));
      if (v) this.v[i]!.assign(this.tf.tensor(v.data, p.variable.shape));
    });
  }

  /** The model of the current weights (EMA when on): feature graph with trained initializers + head, logits / T. */
  currentModel(temperature = 1): OnnxModelSpec {
    return fineTunedModel(this.backbone, this.checkpointWeights(), this.options.optimizer.ema > 0, this.head, temperature);
  }

  /** Logits of preprocessed images on the TF.js path (prefix in onnxruntime, tail and head on TF.js), EMA when on. */
  async logits(input: Float32Array, n: number): Promise<Float32Array> {
    const tf = this.tf;
    const swap = this.ema ? this.params.map((p, i) => {
      const live = p.variable.clone();
      p.variable.assign(this.ema![i]!);
      return live;
    }) : [];
    try {
      const perImage = input.length / n;
      const out = new Float32Array(n * this.head.spec.classes);
      for (let start = 0; start < n; start += this.options.microBatch) {
        const k = Math.min(this.options.microBatch, n - start);
        const feeds = await this.graph.prefix(tf, input.subarray(start * perImage, (start + k) * perImage), this.dims(k));
        const logits = tf.tidy(() => this.head.forward(this.graph.forward(feeds), this.head.params));
        out.set((await logits.data()) as Float32Array, start * this.head.spec.classes);
        tf.dispose([logits, ...Object.values(feeds).filter((f): f is Tensor => 'dataSync' in f)]);
      }
      return out;
    } finally {
      swap.forEach((live, i) => {
        this.params[i]!.variable.assign(live);
        live.dispose();
      });
    }
  }

  async dispose(): Promise<void> {
    this.tf.dispose([...this.m, ...this.v, ...(this.ema ?? [])]);
    await this.graph.dispose();
  }
}

/** The arrays whose names start with `prefix`, renamed without it. */
function arraysUnder(arrays: NamedArray[], prefix: string): NamedArray[] {
  return arrays.filter((a) => a.name.startsWith(prefix)).map((a) => ({...a, name: a.name.slice(prefix.length)}));
}

/**
 * The model a fine-tuning checkpoint describes: the backbone's feature graph with every trained initializer
 * replaced by name (EMA values when `useEma`), cut at the features, pooling, the head as Gemm nodes and the logits
 * divided by `temperature` (outputs `logits`, `probabilities`).
 */
export function fineTunedModel(backbone: Pick<Backbone, 'info' | 'featureGraph'>, weights: NamedArray[], useEma: boolean, head: Pick<Head, 'spec'>, temperature: number): OnnxModelSpec {
  const chosen = useEma ? arraysUnder(weights, 'ema/') : weights;
  const trained = arraysUnder(chosen, ONNX_PREFIX);
  const headWeights = chosen.filter((w) => w.name.startsWith('head/'));
  const info = backbone.info;
  return stitchHead(withTrainedInitializers(backbone.featureGraph, trained), info.feature.name, info.feature.rank!, info.pool as 'cls' | 'mean' | 'none', info.opset, headWeights, head.spec.type, temperature, head.spec.classes);
}

/** A model in onnxruntime for evaluation: logits of packed preprocessed images, in batches. */
export async function modelLogits(model: OnnxModelSpec | Uint8Array, info: Backbone['info'], images: {count: number; batch(start: number, end: number): Promise<InputTensor[]>}, settings: {device: Device; threads: number}, classes: number, batchSize = 16): Promise<Float32Array> {
  const {session} = await openSession(model instanceof Uint8Array ? model : encodeOnnxModel(model), settings);
  const p = info.preprocessing;
  const perImage = 3 * p.width * p.height;
  const out = new Float32Array(images.count * classes);
  try {
    for (let start = 0; start < images.count; start += batchSize) {
      const end = Math.min(images.count, start + batchSize);
      const tensors = await images.batch(start, end);
      const packed = p.dtype === 'uint8' ? new Uint8Array((end - start) * perImage) : new Float32Array((end - start) * perImage);
      tensors.forEach((t, i) => packed.set(t.data, i * perImage));
      const dims = p.layout === 'nchw' ? [end - start, 3, p.height, p.width] : [end - start, p.height, p.width, 3];
      const input = packed instanceof Uint8Array ? new ort.Tensor('uint8', packed, dims) : new ort.Tensor('float32', packed, dims);
      const result = await session.run({[info.inputName]: input}, ['logits']);
      out.set(result.logits!.data as Float32Array, start * classes);
    }
  } finally {
    await session.release();
  }
  return out;
}

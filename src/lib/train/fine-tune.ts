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
import type {Tensor, Variable} from '@tensorflow/tfjs';
import {openSession, ort, type Device} from '../cascade/onnx-session.js';
import {ExitCode, NatixError} from '../errors.js';
import {batchDims, type InputTensor} from '../image/preprocess.js';
import {stitchHead} from '../export/stitch-head.js';
import type {OnnxModelSpec} from '../onnx/model.js';
import {encodeOnnxModel} from '../onnx/model.js';
import {TrainableGraph, type TrainSelection} from '../onnx-exec/trainable-graph.js';
import {assignTrainable, withTrainedInitializers} from '../onnx-exec/weights.js';
import type {Tf} from '../runtime/tf-type.js';
import {FEATURES_VALUE, type Backbone} from './backbone.js';
import type {NamedArray} from './checkpoint.js';
import {GradientWorkers} from './gradient-workers.js';
import {adamwUpdate, type Head, type OptimizerSpec, type StepResult} from './head.js';
import type {TrainScope} from './train-scope.js';
import {microBatches, ONNX_PREFIX, sliceInput, TunedModel, type MicroBatch, type MicroBatchTargets, type ModelInput, type Param} from './tuned-model.js';

/** The executor's selection for a scope (never `head`). */
export function selectionOf(scope: Exclude<TrainScope, {kind: 'head'}>): TrainSelection {
  if (scope.kind === 'all') return {all: true};
  if (scope.kind === 'from') return {from: scope.value};
  return {last: scope.blocks};
}

export interface FineTuneOptions {
  selection: TrainSelection;
  optimizer: OptimizerSpec;
  device: Device;
  /** Images per forward/backward pass; gradients accumulate over the batch. */
  microBatch: number;
  /**
   * Threads that compute gradients (the main thread and `count - 1` workers, gradient-workers.ts) on a one-core
   * backend; default one. The result is the same for any count.
   */
  gradientThreads?: {count: number; backend: 'wasm' | 'cpu'; warn: (message: string) => void};
}

export class FineTuner {
  readonly model: TunedModel;
  private readonly params: Param[];
  private readonly m: Variable[];
  private readonly v: Variable[];
  private readonly ema: Variable[] | undefined;
  /** The gradient worker threads, when more than one thread computes gradients. */
  private workers: GradientWorkers | undefined;

  private constructor(
    private readonly tf: Tf,
    readonly graph: TrainableGraph,
    readonly head: Head,
    private readonly backbone: Pick<Backbone, 'info' | 'featureGraph'>,
    private readonly options: FineTuneOptions,
    weights: NamedArray[] | undefined,
  ) {
    this.model = new TunedModel(tf, graph, head, backbone.info.preprocessing);
    this.params = this.model.params;
    // The head read its own arrays; the backbone's are checked by name and shape where weights.ts checks them.
    if (weights) assignTrainable(tf, graph.variables, arraysUnder(weights, ONNX_PREFIX));
    const ema = new Map(arraysUnder(weights ?? [], 'ema/').map((w) => [w.name, w]));
    this.m = this.params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.v = this.params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.ema = options.optimizer.ema > 0 ? this.params.map((p) => tf.variable(ema.has(p.name) ? tf.tensor(ema.get(p.name)!.data, p.variable.shape) : p.variable.clone(), false)) : undefined;
  }

  /**
   * Splits the backbone's feature graph for a selection: every op is checked and the boundary found here, so an
   * unsupported op or a boundary that does not exist is an error before any data is read. `prefixThreads`:
   * onnxruntime's intra-op threads for the frozen prefix (0 = its default).
   */
  static async split(tf: Tf, backbone: Pick<Backbone, 'info' | 'featureGraph'>, selection: TrainSelection, device: Device, prefixThreads = 0): Promise<TrainableGraph> {
    if (backbone.info.preprocessing.dtype !== 'float32') {
      throw new NatixError(`${backbone.info.onnxFile} takes ${backbone.info.preprocessing.dtype} pixels: fine-tuning its graph needs a float input`, {code: 'TRAIN_SCOPE_UNSUPPORTED', exitCode: ExitCode.Usage, actions: ['Train the head only (model.train: head).']});
    }
    return TrainableGraph.create(tf, backbone.featureGraph, {train: selection, model: backbone.info.onnxFile, output: FEATURES_VALUE, device, threads: prefixThreads});
  }

  /**
   * Puts `head` on the split graph; `weights` are a checkpoint's arrays when resuming (the head reads its own).
   * Starts the gradient workers when more than one thread is asked for.
   */
  static async create(tf: Tf, backbone: Pick<Backbone, 'info' | 'featureGraph'>, head: Head, options: FineTuneOptions, weights?: NamedArray[], graph?: TrainableGraph): Promise<FineTuner> {
    const parallel = options.gradientThreads && options.gradientThreads.count > 1 ? options.gradientThreads : undefined;
    const tuner = new FineTuner(tf, graph ?? (await FineTuner.split(tf, backbone, options.selection, options.device, parallel ? 1 : 0)), head, backbone, options, weights);
    if (parallel) {
      const p = backbone.info.preprocessing;
      tuner.workers = await GradientWorkers.start(parallel.count - 1, {backend: parallel.backend, featureGraph: backbone.featureGraph, model: backbone.info.onnxFile, output: FEATURES_VALUE, selection: options.selection, device: options.device, prefixThreads: 1, head: head.spec, preprocessing: {layout: p.layout, width: p.width, height: p.height}, values: tuner.model.values()}, parallel.warn);
    }
    return tuner;
  }

  /** Threads computing gradients now: the main thread and the live workers. */
  get gradientThreads(): number {
    return 1 + (this.workers?.size ?? 0);
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

  /**
   * Loss and summed gradients of a batch (its packed images, or their boundary values) over micro-batches; the caller
   * disposes the gradients. The loss of each micro-batch is divided by the weight of the WHOLE batch, so the sum of
   * the micro-batch gradients is the full-batch gradient. The micro-batches are shared out in order between the
   * main thread (the first share) and the gradient workers, and added in micro-batch order whoever computed them.
   */
  async gradients(input: ModelInput, labels: ArrayLike<number>, dropoutSeed: string): Promise<{loss: number; logits: Float32Array; grads: Tensor[]}> {
    const tf = this.tf;
    const n = labels.length;
    const {targets, weights} = this.head.targets(labels);
    const totalWeight = weights.reduce((s, w) => s + w, 0);
    const mask = this.head.dropoutMask(n, dropoutSeed);
    const {classes, hidden} = this.head.spec;
    const against = ({start, size}: MicroBatch): Omit<MicroBatchTargets, 'totalWeight'> => ({
      targets: targets.subarray(start * classes, (start + size) * classes),
      weights: weights.subarray(start, start + size),
      ...(mask ? {mask: mask.subarray(start * hidden, (start + size) * hidden)} : {}),
    });
    const plan = microBatches(n, this.options.microBatch);
    const threads = Math.min(plan.length, this.gradientThreads);
    const shares = Array.from({length: threads}, (_, r) => plan.slice(Math.floor((r * plan.length) / threads), Math.floor(((r + 1) * plan.length) / threads)));
    // Shares 1.. go to the workers first (copies of their images: the input is handed over), then the main thread computes share 0.
    const remote = shares.slice(1).map((share, r) => {
      const end = share.at(-1)!.start + share.at(-1)!.size;
      return this.workers!.compute(r, {input: sliceInput(input, n, share[0]!.start, end, true), parts: share.map((mb) => ({size: mb.size, ...against(mb)})), totalWeight}).catch(() => undefined);
    });
    const logits = new Float32Array(n * classes);
    let loss = 0;
    let sums: Tensor[] | undefined;
    const add = (result: {loss: number; logits: Float32Array; grads: Tensor[]}, mb: MicroBatch): void => {
      loss += result.loss;
      logits.set(result.logits, mb.start * classes);
      if (!sums) {
        sums = result.grads;
        return;
      }
      const next = tf.tidy(() => result.grads.map((g, i) => tf.add(sums![i]!, g)));
      tf.dispose([...sums, ...result.grads]);
      sums = next;
    };
    const local = async (mb: MicroBatch): Promise<void> => add(await this.model.gradients(sliceInput(input, n, mb.start, mb.start + mb.size), mb.size, {...against(mb), totalWeight}), mb);
    for (const mb of shares[0]!) await local(mb);
    for (const [r, pending] of remote.entries()) {
      const share = shares[r + 1]!;
      const results = await pending;
      for (const [k, mb] of share.entries()) {
        // A worker that failed has been dropped (with a warning): its micro-batches run here, the same numbers.
        if (!results) await local(mb);
        else add({loss: results[k]!.loss, logits: results[k]!.logits, grads: results[k]!.grads.map((g, i) => tf.tensor(g, this.params[i]!.variable.shape))}, mb);
      }
    }
    return {loss, logits, grads: sums!};
  }

  /** One AdamW step on a batch: head at `lr`, backbone at `backboneLr` (t = 1-based step, for the bias correction). */
  async step(input: ModelInput, labels: ArrayLike<number>, lr: number, backboneLr: number, t: number, dropoutSeed: string): Promise<StepResult> {
    const tf = this.tf;
    const o = this.options.optimizer;
    const {loss, logits, grads} = await this.gradients(input, labels, dropoutSeed);
    tf.tidy(() => adamwUpdate(tf, this.params.map((p) => ({variable: p.variable, decay: p.decay, lr: p.group === 'head' ? lr : backboneLr})), {m: this.m, v: this.v, ema: this.ema}, grads, o, t));
    tf.dispose(grads);
    if (this.workers?.size) this.workers.assign(this.model.values());
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
    const swap = this.ema ? this.params.map((p, i) => {
      const live = p.variable.clone();
      p.variable.assign(this.ema![i]!);
      return live;
    }) : [];
    try {
      return await this.model.logits(input, n, this.options.microBatch);
    } finally {
      swap.forEach((live, i) => {
        this.params[i]!.variable.assign(live);
        live.dispose();
      });
    }
  }

  async dispose(): Promise<void> {
    await this.workers?.close();
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
      const dims = batchDims(p, end - start);
      const input = packed instanceof Uint8Array ? new ort.Tensor('uint8', packed, dims) : new ort.Tensor('float32', packed, dims);
      const result = await session.run({[info.inputName]: input}, ['logits']);
      out.set(result.logits!.data as Float32Array, start * classes);
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * The trainable head on cached backbone features, in TensorFlow.js: `linear` (logits = x W + b) or `mlp`
 * (x W1 + b1 -> ReLU -> dropout -> W2 + b2). Trained with weighted, label-smoothed cross-entropy, AdamW (decoupled
 * weight decay on the weight matrices, as torch.optim.AdamW with the biases excluded), max-grad-norm clipping on the
 * global norm and an exponential moving average (EMA) of the weights. Initial weights and dropout masks are drawn
 * from seeded generators in JavaScript, so a run is reproducible and a resumed run bit-identical on IEEE backends.
 *
 * Loss per batch: sum_i w_{y_i} * CE(q_i, softmax(z_i)) / sum_i w_{y_i} with q = (1 - eps) onehot + eps / C
 * (PyTorch's CrossEntropyLoss(weight, label_smoothing) with mean reduction).
 */
import type {Tensor, Variable} from '@tensorflow/tfjs';
import type {Tf} from '../runtime/tfjs.js';
import {SeededRandom} from '../util/random.js';
import type {NamedArray} from './checkpoint.js';

export interface HeadSpec {
  type: 'linear' | 'mlp';
  hidden: number;
  dropout: number;
  inputDim: number;
  classes: number;
  seed: number;
}

export interface OptimizerSpec {
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Clip the global gradient norm to this (0 = off). */
  maxGradNorm: number;
  /** EMA decay of the weights (0 = off). */
  ema: number;
  labelSmoothing: number;
  /** Loss weight per class. */
  classWeights: number[];
}

/** Parameter names and shapes of a head, in a fixed order. */
export function headShapes(spec: HeadSpec): Array<{name: string; shape: number[]; decay: boolean}> {
  if (spec.type === 'linear') {
    return [
      {name: 'head/W', shape: [spec.inputDim, spec.classes], decay: true},
      {name: 'head/b', shape: [spec.classes], decay: false},
    ];
  }
  return [
    {name: 'head/W1', shape: [spec.inputDim, spec.hidden], decay: true},
    {name: 'head/b1', shape: [spec.hidden], decay: false},
    {name: 'head/W2', shape: [spec.hidden, spec.classes], decay: true},
    {name: 'head/b2', shape: [spec.classes], decay: false},
  ];
}

/** Initial weights: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for matrices and biases (torch.nn.Linear's rule). */
export function initialWeights(spec: HeadSpec): NamedArray[] {
  const rng = new SeededRandom(`${spec.seed}:head-init`);
  const shapes = headShapes(spec);
  return shapes.map((s, i) => {
    const fanIn = s.shape.length === 2 ? s.shape[0]! : shapes[i - 1]!.shape[0]!;
    const bound = 1 / Math.sqrt(fanIn);
    return {name: s.name, shape: s.shape, data: Float32Array.from({length: s.shape.reduce((a, b) => a * b, 1)}, () => rng.uniform(-bound, bound))};
  });
}

export interface StepResult {
  loss: number;
  /** Logits of the batch (training mode), n x classes. */
  logits: Float32Array;
}

/** AdamW's per-parameter state: first and second moments, and the EMA of the weights when on. */
export interface AdamwSlots {
  m: Variable[];
  v: Variable[];
  ema: Variable[] | undefined;
}

/**
 * One AdamW step (call inside tf.tidy): clip the gradients to `maxGradNorm` on their global norm, update the moments,
 * apply decoupled weight decay where `decay`, step each parameter at its own `lr`, then move the EMA.
 */
export function adamwUpdate(tf: Tf, params: Array<{variable: Variable; decay: boolean; lr: number}>, slots: AdamwSlots, grads: Tensor[], o: OptimizerSpec, t: number): void {
  let g = grads;
  if (o.maxGradNorm > 0) {
    const norm = Math.sqrt(g.reduce((s, gi) => s + tf.sum(tf.square(gi)).dataSync()[0]!, 0));
    if (norm > o.maxGradNorm) g = g.map((gi) => tf.mul(gi, o.maxGradNorm / (norm + 1e-6)));
  }
  const c1 = 1 - Math.pow(o.beta1, t);
  const c2 = 1 - Math.pow(o.beta2, t);
  params.forEach(({variable: p, decay, lr}, i) => {
    const m = tf.add(tf.mul(slots.m[i]!, o.beta1), tf.mul(g[i]!, 1 - o.beta1));
    const v = tf.add(tf.mul(slots.v[i]!, o.beta2), tf.mul(tf.square(g[i]!), 1 - o.beta2));
    slots.m[i]!.assign(m);
    slots.v[i]!.assign(v);
    const decayed = decay && o.weightDecay > 0 ? tf.mul(p, 1 - lr * o.weightDecay) : p;
    const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), o.epsilon));
    p.assign(tf.sub(decayed, tf.mul(update, lr)));
    if (slots.ema) slots.ema[i]!.assign(tf.add(tf.mul(slots.ema[i]!, o.ema), tf.mul(p, 1 - o.ema)));
  });
}

export class Head {
  readonly params: Variable[];
  private readonly m: Variable[];
  private readonly v: Variable[];
  private readonly ema: Variable[] | undefined;
  private readonly shapes: ReturnType<typeof headShapes>;

  constructor(
    private readonly tf: Tf,
    readonly spec: HeadSpec,
    readonly optimizer: OptimizerSpec,
    weights: NamedArray[] = initialWeights(spec),
  ) {
    this.shapes = headShapes(spec);
    const byName = new Map(weights.map((w) => [w.name, w]));
    this.params = this.shapes.map((s) => tf.variable(tf.tensor(byName.get(s.name)!.data, s.shape), true, `${s.name}-${Math.random()}`));
    this.m = this.shapes.map((s) => tf.variable(tf.zeros(s.shape), false));
    this.v = this.shapes.map((s) => tf.variable(tf.zeros(s.shape), false));
    this.ema = optimizer.ema > 0 ? this.shapes.map((s) => tf.variable(tf.tensor(byName.get(`ema/${s.name}`)?.data ?? byName.get(s.name)!.data, s.shape), false)) : undefined;
  }

  /** Logits of x [n, D] with the given weights; dropout (mlp) from `mask` when training. */
  forward(x: Tensor, weights: Tensor[], mask?: Tensor): Tensor {
    const tf = this.tf;
    if (this.spec.type === 'linear') return tf.add(tf.matMul(x, weights[0]!), weights[1]!);
    let h = tf.relu(tf.add(tf.matMul(x, weights[0]!), weights[1]!));
    if (mask) h = tf.mul(h, mask);
    return tf.add(tf.matMul(h, weights[2]!), weights[3]!);
  }

  /** Loss of logits against targets (label-smoothed one-hot) and per-sample weights, as in the module comment. */
  loss(logits: Tensor, targets: Tensor, sampleWeights: Tensor): Tensor {
    const tf = this.tf;
    const perSample = tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1));
    return tf.div(tf.sum(tf.mul(perSample, sampleWeights)), tf.sum(sampleWeights));
  }

  /** Targets and sample weights of a batch. */
  targets(labels: ArrayLike<number>): {targets: Float32Array; weights: Float32Array} {
    const {classes} = this.spec;
    const eps = this.optimizer.labelSmoothing;
    const targets = new Float32Array(labels.length * classes).fill(eps / classes);
    const weights = new Float32Array(labels.length);
    for (let i = 0; i < labels.length; i++) {
      targets[i * classes + labels[i]!] = 1 - eps + eps / classes;
      weights[i] = this.optimizer.classWeights[labels[i]!] ?? 1;
    }
    return {targets, weights};
  }

  /** The mlp's dropout mask of a batch (scaled by 1 / keep), drawn from `seed`; undefined without dropout. */
  dropoutMask(n: number, seed: string): Float32Array | undefined {
    if (this.spec.type !== 'mlp' || this.spec.dropout <= 0) return undefined;
    const rng = new SeededRandom(seed);
    const keep = 1 - this.spec.dropout;
    return Float32Array.from({length: n * this.spec.hidden}, () => (rng.next() < keep ? 1 / keep : 0));
  }

  /** Loss, logits and gradient tensors of a batch; call inside tf.tidy (the gradients die with it). */
  private batchGradients(x: Float32Array, labels: ArrayLike<number>, dropoutSeed: string): {loss: number; logits: Float32Array; grads: Tensor[]} {
    const tf = this.tf;
    const n = labels.length;
    const {targets, weights} = this.targets(labels);
    const mask = this.dropoutMask(n, dropoutSeed);
    const xs = tf.tensor2d(x, [n, this.spec.inputDim]);
    const ts = tf.tensor2d(targets, [n, this.spec.classes]);
    const ws = tf.tensor1d(weights);
    const ms = mask ? tf.tensor2d(mask, [n, this.spec.hidden]) : undefined;
    let logits: Tensor | undefined;
    const {value, grads} = tf.variableGrads(() => {
      logits = tf.keep(this.forward(xs, this.params, ms));
      return this.loss(logits, ts, ws) as import('@tensorflow/tfjs').Scalar;
    }, this.params);
    const out = logits!.dataSync() as Float32Array;
    logits!.dispose();
    return {loss: value.dataSync()[0]!, logits: out, grads: this.params.map((p) => grads[p.name]!)};
  }

  /** Loss and gradients of a batch (no update): used by the gradient tests. */
  lossAndGradients(x: Float32Array, labels: ArrayLike<number>, dropoutSeed = ''): {loss: number; logits: Float32Array; grads: Float32Array[]} {
    return this.tf.tidy(() => {
      const r = this.batchGradients(x, labels, dropoutSeed);
      return {...r, grads: r.grads.map((g) => g.dataSync() as Float32Array)};
    });
  }

  /** One optimizer step (t = 1-based step number, for Adam's bias correction). */
  step(x: Float32Array, labels: ArrayLike<number>, lr: number, t: number, dropoutSeed: string): StepResult {
    return this.tf.tidy(() => {
      const {loss, logits, grads} = this.batchGradients(x, labels, dropoutSeed);
      adamwUpdate(this.tf, this.params.map((p, i) => ({variable: p, decay: this.shapes[i]!.decay, lr})), {m: this.m, v: this.v, ema: this.ema}, grads, this.optimizer, t);
      return {loss, logits};
    });
  }

  /** Logits of rows of x (n x D) with the live weights, or the EMA weights when on and `useEma`. */
  predict(x: Float32Array, n: number, useEma = true, batch = 4096): Float32Array {
    const tf = this.tf;
    const weights = useEma && this.ema ? this.ema : this.params;
    const out = new Float32Array(n * this.spec.classes);
    for (let start = 0; start < n; start += batch) {
      const k = Math.min(batch, n - start);
      const logits = tf.tidy(() => this.forward(tf.tensor2d(x.subarray(start * this.spec.inputDim, (start + k) * this.spec.inputDim), [k, this.spec.inputDim]), weights).dataSync());
      out.set(logits, start * this.spec.classes);
    }
    return out;
  }

  /** The weights to evaluate and export: EMA when on, else live. */
  exportWeights(): NamedArray[] {
    const src = this.ema ?? this.params;
    return this.shapes.map((s, i) => ({name: s.name, shape: s.shape, data: src[i]!.dataSync() as Float32Array}));
  }

  /** Live weights, then EMA weights (`ema/` prefix) when on: what a checkpoint stores as weights. */
  checkpointWeights(): NamedArray[] {
    const live = this.shapes.map((s, i) => ({name: s.name, shape: s.shape, data: Float32Array.from(this.params[i]!.dataSync() as Float32Array)}));
    const ema = this.ema ? this.shapes.map((s, i) => ({name: `ema/${s.name}`, shape: s.shape, data: Float32Array.from(this.ema![i]!.dataSync() as Float32Array)})) : [];
    return [...live, ...ema];
  }

  optimizerState(): NamedArray[] {
    return [...this.shapes.map((s, i) => ({name: `adamw/m/${s.name}`, shape: s.shape, data: Float32Array.from(this.m[i]!.dataSync() as Float32Array)})), ...this.shapes.map((s, i) => ({name: `adamw/v/${s.name}`, shape: s.shape, data: Float32Array.from(this.v[i]!.dataSync() as Float32Array)}))];
  }

  restoreOptimizer(state: NamedArray[]): void {
    const byName = new Map(state.map((a) => [a.name, a]));
    this.shapes.forEach((s, i) => {
      const m = byName.get(`adamw/m/${s.name}`);
      const v = byName.get(`adamw/v/${s.name}`);
      if (m) this.m[i]!.assign(this.tf.tensor(m.data, s.shape));
      if (v) this.v[i]!.assign(this.tf.tensor(v.data, s.shape));
    });
  }

  dispose(): void {
    this.tf.dispose([...this.params, ...this.m, ...this.v, ...(this.ema ?? [])]);
  }
}

/**
 * ViT-, ResNet- and MobileNet-shaped ONNX graphs built in memory with the project's encoder types, with the node
 * names and op patterns torch.onnx.export produces (`/blocks/blocks.0/attn/MatMul`, Erf-based GELU, shape
 * sub-graphs for the batch size, BatchNormalization after every Conv, Clip as ReLU6, HardSwish, squeeze-excite).
 * Used by the executor tests and by bench/onnx-exec.ts.
 */
import {floatTensor, int64Tensor, type OnnxModelSpec, type OnnxNode, type OnnxTensor} from '../../src/lib/onnx/model.js';
import {SeededRandom} from '../../src/lib/util/random.js';

class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly rng: SeededRandom;
  private count = 0;
  private consts = new Map<string, string>();

  constructor(seed: number) {
    this.rng = new SeededRandom(seed);
  }

  node(scope: string, opType: string, inputs: string[], attributes?: OnnxNode['attributes'], outputs = 1): string[] {
    const name = `${scope}/${opType}${this.count ? `_${this.count}` : ''}`;
    this.count++;
    const outs = Array.from({length: outputs}, (_, i) => `${name}_output_${i}`);
    this.nodes.push({name, opType, inputs, outputs: outs, attributes});
    return outs;
  }

  op(scope: string, opType: string, inputs: string[], attributes?: OnnxNode['attributes']): string {
    return this.node(scope, opType, inputs, attributes)[0]!;
  }

  /** A weight, N(0, std) (He-style by default). */
  weight(name: string, dims: number[], std?: number): string {
    const fanIn = dims.length > 1 ? dims.slice(1).reduce((a, b) => a * b, 1) : dims[0]!;
    const s = std ?? Math.sqrt(2 / fanIn);
    this.initializers.push(floatTensor(name, dims, Array.from({length: dims.reduce((a, b) => a * b, 1)}, () => this.rng.normal() * s)));
    return name;
  }

  filled(name: string, dims: number[], f: () => number): string {
    this.initializers.push(floatTensor(name, dims, Array.from({length: dims.reduce((a, b) => a * b, 1)}, f)));
    return name;
  }

  float(value: number): string {
    const key = `f${value}`;
    if (!this.consts.has(key)) {
      const name = `onnx::Constant_f${this.consts.size}`;
      this.initializers.push(floatTensor(name, [], [value]));
      this.consts.set(key, name);
    }
    return this.consts.get(key)!;
  }

  ints(values: number[], scalar = false): string {
    const key = `i${scalar ? 's' : ''}${values.join(',')}`;
    if (!this.consts.has(key)) {
      const name = `onnx::Constant_i${this.consts.size}`;
      this.initializers.push(int64Tensor(name, scalar ? [] : [values.length], values));
      this.consts.set(key, name);
    }
    return this.consts.get(key)!;
  }

  random(): number {
    return this.rng.next();
  }

  conv(scope: string, x: string, cin: number, cout: number, k: number, stride: number, group = 1, bias = false): string {
    const w = this.weight(`${scope.slice(1).replace(/\//g, '.')}.weight`, [cout, cin / group, k, k]);
    const inputs = [x, w];
    if (bias) inputs.push(this.weight(`${scope.slice(1).replace(/\//g, '.')}.bias`, [cout], 0.05));
    const p = Math.floor(k / 2);
    return this.op(`${scope}`, 'Conv', inputs, {kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], group, dilations: [1, 1]});
  }

  bn(scope: string, x: string, c: number): string {
    const base = scope.slice(1).replace(/\//g, '.');
    const g = this.filled(`${base}.weight`, [c], () => 0.8 + 0.4 * this.rng.next());
    const b = this.filled(`${base}.bias`, [c], () => 0.1 * this.rng.normal());
    const m = this.filled(`${base}.running_mean`, [c], () => 0.1 * this.rng.normal());
    const v = this.filled(`${base}.running_var`, [c], () => 0.5 + this.rng.next());
    return this.op(scope, 'BatchNormalization', [x, g, b, m, v], {epsilon: {float: 1e-5}, momentum: {float: 0.9}});
  }

  linear(scope: string, x: string, din: number, dout: number): string {
    const base = scope.slice(1).replace(/\//g, '.');
    const w = this.weight(`onnx::MatMul_${base}`, [din, dout], Math.sqrt(1 / din));
    const b = this.weight(`${base}.bias`, [dout], 0.02);
    return this.op(scope, 'Add', [this.op(scope, 'MatMul', [x, w]), b]);
  }

  layerNorm(scope: string, x: string, d: number, decomposed: boolean): string {
    const base = scope.slice(1).replace(/\//g, '.');
    const g = this.filled(`${base}.weight`, [d], () => 1 + 0.1 * this.rng.normal());
    const b = this.filled(`${base}.bias`, [d], () => 0.05 * this.rng.normal());
    if (!decomposed) return this.op(scope, 'LayerNormalization', [x, g, b], {axis: -1, epsilon: {float: 1e-6}});
    const mean = this.op(scope, 'ReduceMean', [x], {axes: [-1]});
    const d0 = this.op(scope, 'Sub', [x, mean]);
    const var0 = this.op(scope, 'ReduceMean', [this.op(scope, 'Pow', [d0, this.float(2)])], {axes: [-1]});
    const n = this.op(scope, 'Div', [d0, this.op(scope, 'Sqrt', [this.op(scope, 'Add', [var0, this.float(1e-6)])])]);
    return this.op(scope, 'Add', [this.op(scope, 'Mul', [n, g]), b]);
  }

  /** GELU as torch.onnx exports nn.GELU(): x * 0.5 * (1 + erf(x / sqrt(2))). */
  gelu(scope: string, x: string): string {
    const e = this.op(scope, 'Erf', [this.op(scope, 'Div', [x, this.float(Math.SQRT2)])]);
    return this.op(scope, 'Mul', [this.op(scope, 'Mul', [x, this.op(scope, 'Add', [e, this.float(1)])]), this.float(0.5)]);
  }

  /** [batch, ...rest] as a shape tensor, the batch taken from `x` at run time (torch's dynamic-batch pattern). */
  batchShape(scope: string, x: string, rest: number[]): string {
    const batch = this.op(scope, 'Gather', [this.op(scope, 'Shape', [x]), this.ints([0], true)], {axis: 0});
    return this.op(scope, 'Concat', [this.op(scope, 'Unsqueeze', [batch, this.ints([0])]), this.ints(rest)], {axis: 0});
  }
}

export interface VitOptions {
  image: number;
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  mlp: number;
  classes: number;
  /** LayerNorm as the opset-17 op (default) or decomposed (older exports). */
  decomposedLayerNorm?: boolean;
  seed?: number;
}

/** A ViT (timm-style names) with a CLS token, learned positions, pre-norm blocks and a linear head on CLS. */
export function vitGraph(o: VitOptions): OnnxModelSpec {
  const b = new GraphBuilder(o.seed ?? 1);
  const tokens = (o.image / o.patch) ** 2;
  const dh = o.dim / o.heads;
  const pe = b.op('/patch_embed/proj', 'Conv', ['pixel_values', b.weight('patch_embed.proj.weight', [o.dim, 3, o.patch, o.patch]), b.weight('patch_embed.proj.bias', [o.dim], 0.02)], {kernel_shape: [o.patch, o.patch], strides: [o.patch, o.patch]});
  const flat = b.op('/patch_embed', 'Reshape', [pe, b.batchShape('/patch_embed', pe, [o.dim, tokens])]);
  const seq = b.op('/patch_embed', 'Transpose', [flat], {perm: [0, 2, 1]});
  const cls = b.op('', 'Expand', [b.weight('cls_token', [1, 1, o.dim], 0.02), b.batchShape('', seq, [1, 1])]);
  let x = b.op('', 'Add', [b.op('', 'Concat', [cls, seq], {axis: 1}), b.weight('pos_embed', [1, tokens + 1, o.dim], 0.02)]);
  for (let i = 0; i < o.depth; i++) {
    const s = `/blocks/blocks.${i}`;
    const h = b.layerNorm(`${s}/norm1`, x, o.dim, o.decomposedLayerNorm ?? false);
    const qkv = b.linear(`${s}/attn/qkv`, h, o.dim, 3 * o.dim);
    const heads = b.op(`${s}/attn`, 'Transpose', [b.op(`${s}/attn`, 'Reshape', [qkv, b.batchShape(`${s}/attn`, h, [tokens + 1, 3, o.heads, dh])])], {perm: [2, 0, 3, 1, 4]});
    const q = b.op(`${s}/attn`, 'Gather', [heads, b.ints([0], true)], {axis: 0});
    const k = b.op(`${s}/attn`, 'Gather', [heads, b.ints([1], true)], {axis: 0});
    const v = b.op(`${s}/attn`, 'Gather', [heads, b.ints([2], true)], {axis: 0});
    const scores = b.op(`${s}/attn`, 'Mul', [b.op(`${s}/attn`, 'MatMul', [q, b.op(`${s}/attn`, 'Transpose', [k], {perm: [0, 1, 3, 2]})]), b.float(1 / Math.sqrt(dh))]);
    const attn = b.op(`${s}/attn`, 'Softmax', [scores], {axis: -1});
    const ctx = b.op(`${s}/attn`, 'Transpose', [b.op(`${s}/attn`, 'MatMul', [attn, v])], {perm: [0, 2, 1, 3]});
    const merged = b.op(`${s}/attn`, 'Reshape', [ctx, b.batchShape(`${s}/attn`, ctx, [tokens + 1, o.dim])]);
    x = b.op(s, 'Add', [x, b.linear(`${s}/attn/proj`, merged, o.dim, o.dim)]);
    const h2 = b.layerNorm(`${s}/norm2`, x, o.dim, o.decomposedLayerNorm ?? false);
    const m = b.linear(`${s}/mlp/fc2`, b.gelu(`${s}/mlp/act`, b.linear(`${s}/mlp/fc1`, h2, o.dim, o.mlp)), o.mlp, o.dim);
    x = b.op(s, 'Add', [x, m]);
  }
  const normed = b.layerNorm('/norm', x, o.dim, o.decomposedLayerNorm ?? false);
  const clsOut = b.op('', 'Gather', [normed, b.ints([0], true)], {axis: 1});
  const logits = b.op('/head', 'Gemm', [clsOut, b.weight('head.weight', [o.classes, o.dim], 0.05), b.weight('head.bias', [o.classes], 0.01)], {transB: 1});
  return finish(b, 'vit', o.image, logits, o.classes, o.decomposedLayerNorm ? 13 : 17);
}

function finish(b: GraphBuilder, name: string, image: number, logits: string, classes: number, opset: number): OnnxModelSpec {
  b.nodes.push({name: '/Identity_logits', opType: 'Identity', inputs: [logits], outputs: ['logits']});
  return {graphName: name, nodes: b.nodes, initializers: b.initializers, inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', 3, image, image]}], outputs: [{name: 'logits', type: 'float', shape: ['batch', classes]}], opset};
}

export interface ResnetOptions {
  image: number;
  widths: number[];
  blocks: number[];
  classes: number;
  seed?: number;
}

/** A ResNet with basic blocks (torchvision names: /layer1/layer1.0/conv1/Conv). */
export function resnetGraph(o: ResnetOptions): OnnxModelSpec {
  const b = new GraphBuilder(o.seed ?? 2);
  let x = b.op('/relu', 'Relu', [b.bn('/bn1', b.conv('/conv1', 'pixel_values', 3, o.widths[0]!, 7, 2), o.widths[0]!)]);
  x = b.op('/maxpool', 'MaxPool', [x], {kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]});
  let cin = o.widths[0]!;
  o.widths.forEach((w, stage) => {
    for (let i = 0; i < o.blocks[stage]!; i++) {
      const s = `/layer${stage + 1}/layer${stage + 1}.${i}`;
      const stride = i === 0 && stage > 0 ? 2 : 1;
      let y = b.op(`${s}/relu`, 'Relu', [b.bn(`${s}/bn1`, b.conv(`${s}/conv1`, x, cin, w, 3, stride), w)]);
      y = b.bn(`${s}/bn2`, b.conv(`${s}/conv2`, y, w, w, 3, 1), w);
      const skip = stride !== 1 || cin !== w ? b.bn(`${s}/downsample/downsample.1`, b.conv(`${s}/downsample/downsample.0`, x, cin, w, 1, stride), w) : x;
      x = b.op(`${s}/relu_1`, 'Relu', [b.op(s, 'Add', [y, skip])]);
      cin = w;
    }
  });
  const pooled = b.op('/flatten', 'Flatten', [b.op('/avgpool', 'GlobalAveragePool', [x])], {axis: 1});
  const logits = b.op('/fc', 'Gemm', [pooled, b.weight('fc.weight', [o.classes, cin], 0.05), b.weight('fc.bias', [o.classes], 0.01)], {transB: 1});
  return finish(b, 'resnet', o.image, logits, o.classes, 13);
}

export interface MobilenetOptions {
  image: number;
  /** [expansion, out channels, stride] per inverted-residual block. */
  blocks: Array<[number, number, number]>;
  classes: number;
  seed?: number;
}

/** MobileNetV2/V3-style: inverted residuals (ReLU6 as Clip), depthwise convs, one squeeze-excite, HardSwish head. */
export function mobilenetGraph(o: MobilenetOptions): OnnxModelSpec {
  const b = new GraphBuilder(o.seed ?? 3);
  const relu6 = (scope: string, x: string): string => b.op(scope, 'Clip', [x, b.float(0), b.float(6)]);
  let cin = 16;
  let x = relu6('/features/features.0/features.0.2', b.bn('/features/features.0/features.0.1', b.conv('/features/features.0/features.0.0', 'pixel_values', 3, cin, 3, 2), cin));
  o.blocks.forEach(([t, cout, stride], i) => {
    const s = `/features/features.${i + 1}/conv`;
    const hidden = cin * t;
    let y = x;
    if (t !== 1) y = relu6(`${s}/conv.0/conv.0.2`, b.bn(`${s}/conv.0/conv.0.1`, b.conv(`${s}/conv.0/conv.0.0`, y, cin, hidden, 1, 1), hidden));
    y = relu6(`${s}/conv.1/conv.1.2`, b.bn(`${s}/conv.1/conv.1.1`, b.conv(`${s}/conv.1/conv.1.0`, y, hidden, hidden, 3, stride, hidden), hidden));
    if (i === 1) {
      // Squeeze-excite (MobileNetV3): global pool -> 1x1 conv -> ReLU -> 1x1 conv -> HardSigmoid -> scale.
      const se = b.op(`${s}/se/fc2`, 'HardSigmoid', [b.conv(`${s}/se/fc2`, b.op(`${s}/se/relu`, 'Relu', [b.conv(`${s}/se/fc1`, b.op(`${s}/se/avgpool`, 'GlobalAveragePool', [y]), hidden, 8, 1, 1, 1, true)]), 8, hidden, 1, 1, 1, true)], {alpha: {float: 1 / 6}, beta: {float: 0.5}});
      y = b.op(`${s}/se`, 'Mul', [y, se]);
    }
    y = b.bn(`${s}/conv.3`, b.conv(`${s}/conv.2`, y, hidden, cout, 1, 1), cout);
    x = stride === 1 && cin === cout ? b.op(`/features/features.${i + 1}`, 'Add', [x, y]) : y;
    cin = cout;
  });
  const last = `/features/features.${o.blocks.length + 1}`;
  x = b.op(`${last}/act`, 'HardSwish', [b.bn(`${last}/bn`, b.conv(`${last}/conv`, x, cin, 64, 1, 1), 64)]);
  const pooled = b.op('/flatten', 'Flatten', [b.op('/avgpool', 'GlobalAveragePool', [x])]);
  const logits = b.op('/classifier', 'Gemm', [pooled, b.weight('classifier.weight', [o.classes, 64], 0.05), b.weight('classifier.bias', [o.classes], 0.01)], {transB: 1});
  return finish(b, 'mobilenet', o.image, logits, o.classes, 14);
}

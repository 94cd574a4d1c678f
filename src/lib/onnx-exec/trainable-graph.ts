/**
 * A user's ONNX graph split for fine-tuning: the frozen prefix runs in onnxruntime (CUDA when present) and never
 * on TF.js, its outputs at the freeze boundary feed the trainable tail, which runs on TF.js with gradients for the
 * tail's initializers (tf.Variables by ONNX name). `all` trains everything on TF.js.
 */
import type {Tensor, Variable} from '@tensorflow/tfjs';
import {openSession, ort, type Device} from '../cascade/onnx-session.js';
import type {OnnxModelSpec} from '../onnx/model.js';
import {encodeOnnxModel} from '../onnx/model.js';
import type {Tf} from '../runtime/tf-type.js';
import {OnnxExecutor, type Feed} from './executor.js';
import {cutAt, findBlocks, indexGraph, prefixSpec, trainFrom, type Block, type Cut} from './graph.js';
import {host} from './values.js';
import {errorMessage} from '../errors.js';

export type TrainSelection = {all: true} | {last: number} | {from: string};

export interface TrainableGraphOptions {
  train: TrainSelection;
  /** Name for messages (the model file). */
  model: string;
  /** The output the tail computes (default: the graph's first output). */
  output?: string;
  device?: Device;
  /** onnxruntime intra-op threads for the frozen prefix (0 = its default). */
  threads?: number;
}

export class TrainableGraph {
  private constructor(
    readonly cut: Cut,
    readonly blocks: Block[],
    readonly executor: OnnxExecutor,
    readonly output: string,
    private readonly input: string,
    private readonly session: ort.InferenceSession | undefined,
    /** Where the frozen prefix runs ('none' when nothing is frozen; 'tfjs' when onnxruntime could not run it). */
    readonly prefixDevice: 'cpu' | 'cuda' | 'none' | 'tfjs',
    /** Why the prefix runs on TF.js, when it does. */
    readonly fallbackReason?: string,
  ) {}

  static async create(tf: Tf, spec: OnnxModelSpec, options: TrainableGraphOptions): Promise<TrainableGraph> {
    const g = indexGraph(spec, options.model);
    const from = trainFrom(g, options.train);
    const cut = cutAt(g, from);
    const executor = new OnnxExecutor(tf, g.spec, {model: options.model, trainable: cut.trainable});
    const prefix = prefixSpec(g, cut);
    let session: ort.InferenceSession | undefined;
    let device: 'cpu' | 'cuda' | 'none' | 'tfjs' = 'none';
    let fallbackReason: string | undefined;
    if (prefix) {
      // A prefix onnxruntime cannot load (e.g. a cut through a sub-graph it will not type) runs on TF.js instead:
      // the executor then computes it from the input on every step, still without gradients for its values.
      try {
        const opened = await openSession(encodeOnnxModel(prefix), {device: options.device ?? 'auto', threads: options.threads ?? 0});
        session = opened.session;
        device = opened.device;
      } catch (error) {
        device = 'tfjs';
        fallbackReason = `onnxruntime could not run the frozen prefix cut at "${cut.from}" (${errorMessage(error).split('\n')[0]}); it runs on TF.js`;
      }
    }
    return new TrainableGraph(cut, findBlocks(g), executor, options.output ?? g.outputs[0]!, g.inputs[0]!, session, device, fallbackReason);
  }

  get variables(): ReadonlyMap<string, Variable> {
    return this.executor.variables;
  }

  /** The frozen prefix on one NCHW batch: the boundary values, ready to feed `forward` (no gradient needed). */
  async prefix(tf: Tf, batch: Float32Array, dims: number[]): Promise<Record<string, Feed>> {
    if (!this.session) return {[this.input]: tf.tensor(batch, dims)};
    const out = await this.session.run({[this.input]: new ort.Tensor('float32', batch, dims)});
    return this.feedsOf(tf, batch, dims, out);
  }

  /**
   * The boundary values of a batch as float arrays (each with its dims), to be kept and fed later as they are (the
   * boundary cache); undefined when nothing is frozen in onnxruntime or a boundary value is not a float32 tensor
   * with the batch as its first dimension (shape values).
   */
  async boundaryArrays(batch: Float32Array, dims: number[]): Promise<Array<{name: string; dims: number[]; data: Float32Array}> | undefined> {
    if (!this.session) return undefined;
    const out = await this.session.run({[this.input]: new ort.Tensor('float32', batch, dims)});
    const arrays: Array<{name: string; dims: number[]; data: Float32Array}> = [];
    for (const name of this.cut.boundary) {
      if (name === this.input) {
        arrays.push({name, dims: [...dims], data: batch});
        continue;
      }
      const t = out[name]!;
      if (t.type !== 'float32' || t.dims[0] !== dims[0]) return undefined;
      arrays.push({name, dims: [...t.dims], data: t.data as Float32Array});
    }
    return arrays;
  }

  private feedsOf(tf: Tf, batch: Float32Array, dims: number[], out: ort.InferenceSession.OnnxValueMapType): Record<string, Feed> {
    const feeds: Record<string, Feed> = {};
    for (const name of this.cut.boundary) {
      if (name === this.input) {
        feeds[name] = tf.tensor(batch, dims);
        continue;
      }
      const t = out[name]!;
      feeds[name] = t.type === 'float32' ? tf.tensor(t.data as Float32Array, [...t.dims]) : host('int64', [...t.dims], Array.from(t.data as ArrayLike<number | bigint>, Number));
    }
    return feeds;
  }

  /** The trainable tail on the boundary values: differentiable with respect to `variables`. */
  forward(feeds: Record<string, Feed>): Tensor {
    return this.executor.run(feeds, [this.output])[this.output]!;
  }

  async dispose(): Promise<void> {
    this.executor.dispose();
    await this.session?.release();
  }
}

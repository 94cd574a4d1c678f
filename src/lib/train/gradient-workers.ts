/**
 * Data-parallel gradients for fine-tuning on backends that use one core (wasm, cpu): worker threads
 * (gradient-worker.ts), each with its own TF.js backend and a replica of the tuned model, compute the gradients of
 * a share of each batch's micro-batches while the main thread computes the first share. Only inputs, per-micro-batch
 * gradients (transferred, not copied) and, after each optimizer step, the new values cross threads; the optimizer
 * and its state live on the main thread alone.
 *
 * The FineTuner adds every micro-batch's gradient in micro-batch order, whichever thread computed it (the same wasm
 * code on the same inputs gives the same bits), so a step is bit-identical on one thread or several, and a run can
 * resume on a machine with another core count. A worker that fails to start or dies is dropped with a warning and
 * its share runs on the main thread: slower, the same numbers.
 *
 * Workers are closed by message, never terminated: onnxruntime-node aborts the process when a thread is stopped
 * inside its native run (see runtime/model-worker.ts), and the frozen prefix runs there.
 */
import os from 'node:os';
import {Worker} from 'node:worker_threads';
import type {Device} from '../cascade/onnx-session.js';
import type {Preprocessing} from '../image/preprocess.js';
import type {OnnxModelSpec} from '../onnx/model.js';
import type {TrainSelection} from '../onnx-exec/trainable-graph.js';
import {workerEntry} from '../util/worker-entry.js';
import type {HeadSpec} from './head.js';
import {inputBuffers, type MicroBatchTargets, type ModelInput} from './tuned-model.js';

export interface GradientWorkerInit {
  backend: 'wasm' | 'cpu';
  featureGraph: OnnxModelSpec;
  /** The model file, for messages. */
  model: string;
  output: string;
  selection: TrainSelection;
  device: Device;
  /** onnxruntime intra-op threads of the worker's frozen prefix. */
  prefixThreads: number;
  head: HeadSpec;
  preprocessing: Pick<Preprocessing, 'layout' | 'width' | 'height'>;
  /** The tuned model's values to start from, in parameter order. */
  values: Float32Array[];
}

/** A share of a batch: consecutive micro-batches, their input (images or boundary values), and the whole batch's weight. */
export interface GradientShare {
  input: ModelInput;
  parts: Array<{size: number} & Omit<MicroBatchTargets, 'totalWeight'>>;
  totalWeight: number;
}

/** A micro-batch's result as it crosses threads. */
export interface WireResult {
  loss: number;
  logits: Float32Array;
  grads: Float32Array[];
}

export type ToGradientWorker = {type: 'values'; values: Float32Array[]} | ({type: 'gradients'; id: number} & GradientShare) | {type: 'close'};

export type FromGradientWorker = {type: 'ready'} | {type: 'failed'; message: string} | {type: 'gradients'; id: number; results: WireResult[]} | {type: 'error'; id: number; message: string};

/**
 * How many threads compute gradients: `asked` (a count, or auto = one per core, at most 4), never more than the
 * micro-batches of a batch (a thread without a share would only hold memory), and 1 off wasm / cpu (tfjs-node runs
 * its kernels on all cores already). `note` says why the count differs from an explicit request.
 */
export function resolveGradientThreads(asked: number | 'auto', backend: string, microBatchesPerBatch: number, cores = os.availableParallelism()): {count: number; note?: string} {
  if (backend !== 'wasm' && backend !== 'cpu') return {count: 1, ...(asked !== 'auto' && asked > 1 ? {note: `gradient-threads ${asked} applies to the wasm and cpu backends; ${backend} uses every core by itself`} : {})};
  const wanted = asked === 'auto' ? Math.min(cores, 4) : asked;
  const count = Math.max(1, Math.min(wanted, microBatchesPerBatch));
  return {count, ...(asked !== 'auto' && count < asked ? {note: `gradient-threads ${asked}: a batch has ${microBatchesPerBatch} micro-batch(es), so ${count} thread(s) compute them (lower micro-batch for more)`} : {})};
}

interface Live {
  worker: Worker;
  pending?: {id: number; resolve: (results: WireResult[]) => void; reject: (error: Error) => void};
  exited: Promise<void>;
}

export class GradientWorkers {
  private readonly live: Live[] = [];
  private nextId = 1;

  private constructor(private readonly warn: (message: string) => void) {}

  /** Starts `count` workers; those that fail to start are dropped with a warning. */
  static async start(count: number, init: GradientWorkerInit, warn: (message: string) => void): Promise<GradientWorkers> {
    const pool = new GradientWorkers(warn);
    const started = await Promise.allSettled(Array.from({length: count}, () => pool.startOne(init)));
    const failures = started.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => (s.reason as Error).message);
    if (failures.length) warn(`${failures.length} of ${count} gradient worker(s) did not start (${failures[0]}); their share runs on the main thread`);
    return pool;
  }

  /** Workers alive: the main thread plus these compute each batch. */
  get size(): number {
    return this.live.length;
  }

  private startOne(init: GradientWorkerInit): Promise<void> {
    const entry = workerEntry(import.meta.url, 'gradient-worker');
    const worker = new Worker(entry.source, {eval: entry.eval, workerData: init, stdout: false, stderr: false});
    let exited!: () => void;
    const slot: Live = {worker, exited: new Promise<void>((resolve) => (exited = resolve))};
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: FromGradientWorker) => {
        if (message.type === 'ready') {
          ready = true;
          this.live.push(slot);
          resolve();
        } else if (message.type === 'failed') {
          reject(new Error(message.message));
        } else if (slot.pending && message.id === slot.pending.id) {
          const {resolve: done, reject: fail} = slot.pending;
          slot.pending = undefined;
          if (message.type === 'gradients') {
            done(message.results);
          } else {
            fail(new Error(message.message));
            this.drop(slot, message.message);
            worker.postMessage({type: 'close'} satisfies ToGradientWorker);
          }
        }
      });
      const lost = (why: string): void => {
        if (!ready) reject(new Error(why));
        this.drop(slot, why);
      };
      worker.on('error', (error) => lost(error.message));
      worker.on('exit', (code) => {
        exited();
        lost(`exited with code ${code}`);
      });
    });
  }

  /** Removes a worker that failed; its pending share is rejected so the caller computes it. */
  private drop(slot: Live, why: string): void {
    const at = this.live.indexOf(slot);
    if (at < 0) return;
    this.live.splice(at, 1);
    slot.pending?.reject(new Error(why));
    slot.pending = undefined;
    this.warn(`A gradient worker stopped (${why}); its share of each batch runs on the main thread from now on`);
  }

  /** The gradients of a share on worker `rank` (0-based among the live ones); rejects when that worker fails. */
  compute(rank: number, share: GradientShare): Promise<WireResult[]> {
    const slot = this.live[rank]!;
    const id = this.nextId++;
    return new Promise<WireResult[]>((resolve, reject) => {
      slot.pending = {id, resolve, reject};
      // The input is the caller's copy for this worker: hand it over.
      slot.worker.postMessage({type: 'gradients', id, ...share} satisfies ToGradientWorker, inputBuffers(share.input));
    });
  }

  /** Every worker takes the optimizer's new values (in parameter order) before its next share. */
  assign(values: Float32Array[]): void {
    for (const [i, slot] of this.live.entries()) {
      // The last worker may take the arrays themselves; the others get copies.
      const last = i === this.live.length - 1;
      slot.worker.postMessage({type: 'values', values} satisfies ToGradientWorker, last ? values.map((v) => v.buffer as ArrayBuffer) : []);
    }
  }

  /** Asks every worker to finish and waits until they have exited. */
  async close(): Promise<void> {
    const slots = this.live.splice(0);
    for (const slot of slots) slot.worker.postMessage({type: 'close'} satisfies ToGradientWorker);
    await Promise.all(slots.map((s) => s.exited));
  }
}

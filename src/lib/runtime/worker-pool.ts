/**
 * A pool of worker threads for ONE model (`replicas` workers, each holding its own onnxruntime session), so that
 * onnxruntime-node's blocking `session.run` never blocks the main thread: deadlines fire on time, the models of a
 * stage run at once, and decoding goes on meanwhile.
 *
 * - Calls wait in a bounded FIFO queue (back-pressure: `run()` itself waits while the queue is full) and go to the
 *   first idle worker; the input buffer is transferred, not copied, when the caller allows it.
 * - `timeoutMs` counts from the moment a worker starts the call. On a miss the call rejects at once
 *   (ModelTimeoutError) and the worker is retired: it gets a CloseRequest, finishes its native run, drops the answer
 *   and exits by itself, while a fresh worker takes its place (never `worker.terminate()` during a run: that aborts
 *   the process, see model-worker.ts). At most `replicas` retired workers live at once; beyond that the
 *   replacement waits for one to exit.
 * - An AbortSignal abandons a call: a queued call leaves the queue, a running one is answered to nobody.
 * - `close()` refuses new calls, lets running calls finish, and waits for every worker (retired ones too) to exit.
 */
import {Worker} from 'node:worker_threads';
import {ExitCode, NatixError} from '../errors.js';
import {workerEntry} from '../util/worker-entry.js';
import {
  ModelTimeoutError,
  RunAbandonedError,
  type FromWorker,
  type InputTensorLike,
  type ModelOutput,
  type ModelRunner,
  type RunnerStats,
  type RunOptions,
  type SessionInfo,
  type WireTensor,
  type WorkerInit,
} from './protocol.js';

export interface WorkerPoolOptions {
  device: 'auto' | 'cpu' | 'cuda';
  /** Intra-op threads of each worker's session (0 = onnxruntime's default). */
  threads: number;
  replicas: number;
  /** Calls that may wait for a worker (default 2 per replica); beyond it run() waits for room. */
  queueLimit?: number;
  outputName?: string;
}

interface Job {
  id: number;
  input: WireTensor;
  timeoutMs?: number;
  signal?: AbortSignal;
  resolve: (output: ModelOutput) => void;
  reject: (error: Error) => void;
  /** The caller has its answer (result, error, timeout or abandonment); later news is dropped. */
  settled: boolean;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
}

interface Slot {
  worker?: Worker;
  /** The worker's session is open. */
  ready: boolean;
  job?: Job;
  /** Why the last start failed (the slot retries on the next call after a pause). */
  failed?: {message: string; at: number};
}

const RESTART_PAUSE_MS = 1000;

/** Copies or hands over a tensor's bytes for postMessage. */
function toWire(input: InputTensorLike, transfer: boolean): {tensor: WireTensor; transferList: ArrayBuffer[]} {
  const view = input.data;
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
  const data = transfer && whole ? (view.buffer as ArrayBuffer) : (view.slice().buffer as ArrayBuffer);
  return {tensor: {data, dtype: input.dtype, dims: [...input.dims]}, transferList: [data]};
}

export class WorkerPool implements ModelRunner {
  readonly placement: ModelRunner['placement'];
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly roomWaiters: Array<() => void> = [];
  private readonly retired = new Set<Worker>();
  private readonly exits = new Set<Promise<void>>();
  /** Replacements waiting for a retired worker to exit (bounded memory under repeated timeouts). */
  private pendingStarts = 0;
  private nextId = 1;
  private closing = false;
  private readonly counts = {ran: 0, failed: 0, timedOut: 0, abandoned: 0, replaced: 0};
  private readonly queueLimit: number;
  info!: SessionInfo;

  private constructor(
    private readonly modelFile: string,
    private readonly options: WorkerPoolOptions,
  ) {
    this.queueLimit = Math.max(1, options.queueLimit ?? options.replicas * 2);
    this.placement = {runtime: 'workers', replicas: options.replicas, threads: options.threads};
  }

  /** Starts `replicas` workers and waits until every session is open; a model that cannot load rejects. */
  static async open(modelFile: string, options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(modelFile, options);
    const started = await Promise.allSettled(Array.from({length: Math.max(1, options.replicas)}, () => pool.startSlot()));
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await pool.close();
      throw failure.reason;
    }
    return pool;
  }

  /** Calls that can be in the pool at once (running + queued): what a producer needs to keep every worker busy. */
  get capacity(): number {
    return this.options.replicas + this.queueLimit;
  }

  stats(): RunnerStats {
    return {...this.counts, workers: this.slots.filter((s) => s.worker).length + this.retired.size, retired: this.retired.size, queued: this.queue.length};
  }

  async run(input: InputTensorLike, options: RunOptions = {}): Promise<ModelOutput> {
    if (this.closing) throw new RunAbandonedError('the model runner is closed');
    if (options.signal?.aborted) {
      this.counts.abandoned++;
      throw new RunAbandonedError(String(options.signal.reason ?? 'abandoned'));
    }
    while (this.queue.length >= this.queueLimit) {
      // Wait for room, or for the caller to give up (its signal), whichever comes first.
      await new Promise<void>((resolve) => {
        const signal = options.signal;
        const onAbort = (): void => {
          const i = this.roomWaiters.indexOf(wake);
          if (i >= 0) this.roomWaiters.splice(i, 1);
          resolve();
        };
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.roomWaiters.push(wake);
        signal?.addEventListener('abort', onAbort, {once: true});
      });
      if (this.closing) throw new RunAbandonedError('the model runner is closed');
      if (options.signal?.aborted) {
        this.counts.abandoned++;
        this.wakeProducer(); // pass the room on to the next waiting caller
        throw new RunAbandonedError(String(options.signal.reason ?? 'abandoned'));
      }
    }
    const {tensor} = toWire(input, options.transfer ?? false);
    return new Promise<ModelOutput>((resolve, reject) => {
      const job: Job = {id: this.nextId++, input: tensor, timeoutMs: options.timeoutMs, signal: options.signal, resolve, reject, settled: false};
      if (options.signal) {
        job.onAbort = () => this.abandon(job, String(options.signal!.reason ?? 'abandoned'));
        options.signal.addEventListener('abort', job.onAbort, {once: true});
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Refuses new calls, lets running ones finish, closes every worker and waits until all have exited. */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) this.settle(job, new RunAbandonedError('the model runner is closed'));
    for (const wake of this.roomWaiters.splice(0)) wake();
    // Running calls finish and are answered; each worker then handles its CloseRequest and exits.
    for (const slot of this.slots) {
      slot.worker?.ref();
      slot.worker?.postMessage({type: 'close'});
    }
    while (this.exits.size > 0) await Promise.all([...this.exits]);
  }

  private settle(job: Job, outcome: Error | ModelOutput): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
  }

  private abandon(job: Job, reason: string): void {
    if (job.settled) return;
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.wakeProducer();
    }
    this.counts.abandoned++;
    // A running job keeps its worker (and its timer: a run that also overruns its timeout still retires the worker).
    this.settle(job, new RunAbandonedError(reason));
  }

  private wakeProducer(): void {
    this.roomWaiters.shift()?.();
  }

  /** Starts a worker in a new or given slot; resolves once its session is open. */
  private startSlot(slot: Slot = {ready: false}): Promise<void> {
    if (!this.slots.includes(slot)) this.slots.push(slot);
    const init: WorkerInit = {modelFile: this.modelFile, settings: {device: this.options.device, threads: this.options.threads}, outputName: this.options.outputName};
    const entry = workerEntry(import.meta.url, 'model-worker');
    const worker = new Worker(entry.source, {eval: entry.eval, workerData: init, stdout: false, stderr: false});
    // A worker keeps the process alive while something waits for it (its start, a run, its exit after close); an
    // idle one does not, and may be stopped at exit (safe, unlike stopping one inside onnxruntime's native run).
    slot.worker = worker;
    slot.ready = false;
    let exited!: () => void;
    const exit = new Promise<void>((resolve) => (exited = resolve));
    this.exits.add(exit);
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          opened = true;
          this.info ??= message.info;
          if (!slot.job && !this.closing) worker.unref();
          slot.ready = true;
          slot.failed = undefined;
          resolve();
          this.pump();
        } else if (message.type === 'load-failed') {
          const error = message.natix
            ? new NatixError(message.message, {code: message.natix.code, exitCode: message.natix.exitCode as ExitCode, actions: message.natix.actions})
            : new Error(message.message);
          slot.failed = {message: message.message, at: performance.now()};
          reject(error);
        } else if (message.type === 'result') {
          this.onResult(slot, worker, message);
        }
      });
      worker.on('error', (error) => {
        if (!opened) {
          slot.failed = {message: error.message, at: performance.now()};
          reject(error);
        }
        this.onWorkerGone(slot, worker, `the model worker crashed: ${error.message}`);
      });
      worker.on('exit', () => {
        this.exits.delete(exit);
        exited();
        if (!opened) reject(new Error('the model worker exited before opening its session'));
        this.onWorkerGone(slot, worker, 'the model worker exited');
        if (this.retired.delete(worker)) this.startPending();
      });
    });
  }

  private onResult(slot: Slot, worker: Worker, message: Extract<FromWorker, {type: 'result'}>): void {
    if (slot.worker !== worker || slot.job?.id !== message.id) return; // a retired worker's late answer
    const job = slot.job;
    slot.job = undefined;
    if (!this.closing) worker.unref();
    clearTimeout(job.timer);
    if (message.error !== undefined) {
      if (!job.settled) this.counts.failed++;
      this.settle(job, new Error(message.error));
    } else {
      if (!job.settled) this.counts.ran++;
      this.settle(job, {data: message.data!, dims: message.dims!});
    }
    this.pump();
  }

  /** A serving worker crashed or exited: fail its call and start another one in its slot. */
  private onWorkerGone(slot: Slot, worker: Worker, reason: string): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      clearTimeout(job.timer);
      if (!job.settled) this.counts.failed++;
      this.settle(job, new Error(reason));
    }
    if (!this.closing && slot.failed === undefined) this.startSlot(slot).catch(() => undefined);
  }

  /** The running call of `slot` overran its timeout: answer the caller now, retire the worker, replace it. */
  private onTimeout(slot: Slot, job: Job): void {
    if (slot.job !== job) return;
    if (!job.settled) this.counts.timedOut++;
    this.settle(job, new ModelTimeoutError(job.timeoutMs!));
    const worker = slot.worker!;
    slot.worker = undefined;
    slot.job = undefined;
    slot.ready = false;
    this.retired.add(worker);
    worker.postMessage({type: 'close'});
    this.counts.replaced++;
    if (this.closing) return;
    if (this.retired.size <= this.options.replicas) this.startSlot(slot).catch(() => undefined);
    else {
      this.slots.splice(this.slots.indexOf(slot), 1);
      this.pendingStarts++;
    }
  }

  private startPending(): void {
    if (this.pendingStarts === 0 || this.closing) return;
    this.pendingStarts--;
    this.startSlot().catch(() => undefined);
  }

  /** Hands queued calls to idle workers; restarts failed slots after a pause; fails calls when no worker can load. */
  private pump(): void {
    if (this.closing) return;
    for (const slot of this.slots) {
      if (!slot.worker && slot.failed && performance.now() - slot.failed.at >= RESTART_PAUSE_MS && this.queue.length > 0) {
        slot.failed = undefined;
        this.startSlot(slot).catch(() => undefined);
      }
    }
    const alive = this.slots.some((s) => s.worker) || this.retired.size > 0 || this.pendingStarts > 0;
    if (!alive) {
      const why = this.slots.find((s) => s.failed)?.failed?.message ?? 'no model worker is running';
      for (const job of this.queue.splice(0)) {
        this.counts.failed++;
        this.settle(job, new Error(`the model could not be restarted: ${why}`));
      }
      for (const wake of this.roomWaiters.splice(0)) wake();
      return;
    }
    for (const slot of this.slots) {
      if (!slot.ready || slot.job || !slot.worker) continue;
      let job: Job | undefined;
      while ((job = this.queue.shift()) && job.settled);
      if (!job) break;
      this.wakeProducer();
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({type: 'run', id: job.id, input: job.input}, [job.input.data]);
      if (job.timeoutMs !== undefined) job.timer = setTimeout(() => this.onTimeout(slot, job!), job.timeoutMs);
    }
  }
}

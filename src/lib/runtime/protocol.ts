/**
 * The messages between the main thread and a model worker (src/lib/runtime/model-worker.ts), and the contract every
 * model runner keeps (worker pool or in-thread). One place, so both sides agree on every field.
 *
 *   main -> worker: workerData = WorkerInit; then RunRequest* and finally CloseRequest.
 *   worker -> main: Ready | LoadFailed once; then one RunReply per RunRequest (in order); exits after CloseRequest.
 * Input tensors travel as transferred ArrayBuffers (no copy); outputs are small and are copied.
 */

export type TensorDType = 'float32' | 'uint8';

/** A tensor as it crosses the thread boundary. */
export interface WireTensor {
  /** Exactly the tensor's bytes (a view into a larger buffer is copied out first). */
  data: ArrayBuffer;
  dtype: TensorDType;
  dims: number[];
}

export interface SessionSettingsWire {
  device: 'auto' | 'cpu' | 'cuda';
  /** Intra-op threads of this worker's session (0 = onnxruntime's default). */
  threads: number;
}

export interface WorkerInit {
  /** Absolute path of the .onnx file. */
  modelFile: string;
  settings: SessionSettingsWire;
  /** Output to fetch (default: the model's first output). */
  outputName?: string;
}

/** What the worker learnt when it opened the session (the main thread derives preprocessing from it). */
export interface SessionInfo {
  inputNames: string[];
  outputNames: string[];
  /** onnxruntime's input metadata: shape (numbers or symbolic names) and element type per input. */
  inputs: Array<{shape?: Array<number | string>; type?: string}>;
  device: 'cpu' | 'cuda';
  fallbackReason?: string;
}

export interface ReadyMessage {
  type: 'ready';
  info: SessionInfo;
}

export interface LoadFailedMessage {
  type: 'load-failed';
  message: string;
  /** Set when the failure is already a NatixError (e.g. CUDA requested but missing). */
  natix?: {code: string; exitCode: number; actions: string[]};
}

export interface RunRequest {
  type: 'run';
  id: number;
  input: WireTensor;
}

export interface CloseRequest {
  type: 'close';
}

export interface RunReply {
  type: 'result';
  id: number;
  /** Output values (float32) and dims, or the error message. */
  data?: Float32Array;
  dims?: number[];
  error?: string;
  /** Time inside session.run, measured in the worker (ms). */
  runMs: number;
}

export type ToWorker = RunRequest | CloseRequest;
export type FromWorker = ReadyMessage | LoadFailedMessage | RunReply;

export interface ModelOutput {
  data: Float32Array;
  dims: readonly number[];
}

export interface InputTensorLike {
  data: Float32Array | Uint8Array;
  dims: readonly number[];
  dtype: TensorDType;
}

export interface RunOptions {
  /** Run-time limit from the moment a worker starts the call (ms). A miss rejects with ModelTimeoutError. */
  timeoutMs?: number;
  /** Stop waiting (a stage or cascade deadline): a queued call leaves the queue, a running one is abandoned. */
  signal?: AbortSignal;
  /** Hand the input's buffer over to the worker (the caller must not use the tensor afterwards). */
  transfer?: boolean;
}

/** Runs one model: a worker pool, or a session on this thread. The cascade engine sees nothing else. */
export interface ModelRunner {
  readonly info: SessionInfo;
  /** Where and how it runs, for describe() and reports. */
  readonly placement: {runtime: 'workers' | 'in-thread'; replicas: number; threads: number};
  run(input: InputTensorLike, options?: RunOptions): Promise<ModelOutput>;
  stats(): RunnerStats;
  close(): Promise<void>;
}

export interface RunnerStats {
  /** Calls answered, failed (error), timed out, abandoned (deadline), and workers replaced after a timeout. */
  ran: number;
  failed: number;
  timedOut: number;
  abandoned: number;
  replaced: number;
  /** Workers alive now (serving + retired ones still finishing a run) and calls waiting. */
  workers: number;
  retired: number;
  queued: number;
}

/** A model missed its own run-time limit. */
export class ModelTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'ModelTimeoutError';
  }
}

/** The caller stopped waiting (its AbortSignal fired): not the model's fault. */
export class RunAbandonedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'RunAbandonedError';
  }
}

/** What a loaded cascade model is (ONNX in workers or in-thread, TF.js), apart from how it is loaded: model.ts and tfjs-model.ts both produce it. */
import type {InputTensor, Preprocessing} from '../image/preprocess.js';
import type {ModelOutput, ModelRunner, RunnerStats, RunOptions} from '../runtime/protocol.js';
import type {OutputSpec} from './decode-output.js';
import type {SessionSettings} from './onnx-session.js';

export interface LoadedModel {
  name: string;
  source: string;
  kind: 'onnx' | 'hf' | 'tfjs';
  preprocessing: Preprocessing;
  output: OutputSpec;
  timeoutMs: number;
  device: 'cpu' | 'cuda';
  fallbackReason?: string;
  /** Where the preprocessing came from (e.g. "preprocessor_config.json: CLIPImageProcessor"), and what natix could not reproduce. */
  preprocessingSource: string;
  preprocessingWarnings: string[];
  /** Class names by index, when the model declares them (Hugging Face id2label). */
  labels?: string[];
  /** Whether the model's input has a free batch dimension (several images in one call). */
  canBatch: boolean;
  /** Where it runs: worker threads (replicas, intra-op threads each) or the main thread. */
  placement: ModelRunner['placement'];
  /**
   * Runs the model. Rejects with ModelTimeoutError when the run overruns `timeoutMs` (a worker is replaced),
   * with RunAbandonedError when `signal` fires first; `transfer` hands the input buffer to the worker.
   */
  infer(input: InputTensor, options?: RunOptions): Promise<ModelOutput>;
  /** Call counts of the runner (ran, failed, timed out, abandoned, workers replaced, ...). */
  stats(): RunnerStats;
  close(): Promise<void>;
}

export interface LoadModelOptions extends SessionSettings {
  /** Default timeout per inference when the config gives none. */
  defaultTimeoutMs: number;
  /** `workers` (default): worker threads; `in-thread`: a session on the main thread (blocks it while it runs). */
  runtime?: 'workers' | 'in-thread';
  /** Workers for this model (the config's `replicas` wins); default 1. */
  replicas?: number;
}

/**
 * The public contract of the cascade library, used by test-inference, bench and train's validation.
 * (Implementation: the other files of this folder. Keep these fields stable: bench and reports read them.)
 */

/** Timing and outcome of one model on one image. */
export interface ModelTrace {
  /** Model name from the cascade file (or the file name for a single model). */
  name: string;
  /** 'ran' | 'failed' (error, timeout) | 'skipped' (circuit open, stage not reached) | 'fallback' (ran as a fallback). */
  status: 'ran' | 'failed' | 'skipped' | 'fallback';
  preprocessMs: number;
  inferenceMs: number;
  postprocessMs: number;
  /** The model's roadwork probability, when it ran. */
  probability?: number;
  error?: string;
  /** Why it was skipped (e.g. 'circuit-open'). */
  reason?: string;
  /** When the model ran once for several images: the batch size (inferenceMs is the call's time / batch). */
  batch?: number;
}

/** Outcome of one stage on one image. */
export interface StageTrace {
  name: string;
  ran: boolean;
  /** Why the stage did not run (e.g. 'confident: 0.03 outside [0.15, 0.85]'), or why it failed. */
  reason?: string;
  /** Combined probability of the stage's models, when any answered. */
  probability?: number;
  /** Wall time of the stage (models may run concurrently). */
  ms: number;
  models: ModelTrace[];
}

/** The cascade's answer for one image. */
export interface CascadeResult {
  id?: string;
  path?: string;
  /** probability > decision threshold (0.5 by default: the subnet's rule). */
  roadwork: boolean;
  /** Final probability, always finite and in [0, 1]. */
  probability: number;
  /** True when a stage failed entirely and the answer comes from earlier stages. */
  degraded: boolean;
  /** Why the answer is degraded (a stage failed, the cascade deadline expired, ...). */
  degradedReason?: string;
  decodeMs: number;
  /** End-to-end wall time: decode + every stage + bookkeeping. */
  totalMs: number;
  stages: StageTrace[];
  /**
   * Set when the image could not be decoded ('unreadable image: ...') or no stage answered ('no stage answered').
   * The probability is then 0.5 (decision "none") and `degraded` is true; benchmarks count these as errors.
   */
  error?: string;
}

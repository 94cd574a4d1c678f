/**
 * The cascade engine: decode an image once, run stage after stage (models of a stage concurrently), combine, and
 * escalate to the next stage only when the rule says so. Failures (timeouts, errors, open circuits) are handled per
 * model with fallbacks; a failed stage degrades the answer instead of failing it. Every answer carries a trace.
 *
 * Threads are not its business: a model is `infer(tensor, {timeoutMs, signal, transfer})` (src/lib/runtime runs it
 * in worker threads, so a timeout answers at once). Three clocks:
 *   model `timeoutMs`   run-time limit of one call; a miss fails the model now (fallback or skip), counts for its
 *                       breaker, and its stuck worker is replaced;
 *   stage `deadlineMs`  the stage combines the models that answered in time; late ones count as failures;
 *   cascade `deadlineMs` when it expires the best answer so far is returned, marked degraded; calls still running
 *                       are abandoned (not held against the models).
 */
import {decodeImage, type DecodedImage} from '../image/decode.js';
import {decodeOptionsFor, preprocessForModel, preprocessingKey, type InputTensor} from '../image/preprocess.js';
import type {InferenceLogs} from '../logging/inference-logs.js';
import {errorMessage} from '../errors.js';
import {CircuitBreaker, type BreakerState} from './circuit-breaker.js';
import {clampProbability, combineProbabilities, type Combiner} from './combine.js';
import {outputProbability} from './decode-output.js';
import {ModelTimeoutError, RunAbandonedError} from '../runtime/protocol.js';
import type {LoadedModel, ModelOutput} from './model.js';
import type {CascadeResult, ModelTrace, StageTrace} from './types.js';

export interface StagePlan {
  name: string;
  members: Array<{model: LoadedModel; weight: number}>;
  combine: Combiner;
  escalate?: {when: 'inside' | 'outside'; band: [number, number]};
  /** 'skip' drops failing models; a model runs in place of each failing one. */
  fallback?: 'skip' | LoadedModel;
  /** Combine the models that answered within this many ms of the stage's start. */
  deadlineMs?: number;
}

export interface CascadeOptions {
  threshold: number;
  breaker: {failures: number; cooldownMs: number};
  /** Per-model breaker overrides. */
  breakers?: Record<string, {failures?: number; cooldownMs?: number}>;
  logs?: InferenceLogs;
  now?: () => number;
  /** The circuit breakers' clock (ms); injectable so tests can step through the cool-down. */
  breakerClock?: () => number;
  /** Answer with what is available this many ms after a predict call starts (marked degraded). */
  deadlineMs?: number;
}

export interface CascadeDescription {
  threshold: number;
  decodeMinSide: number;
  devices: string[];
  deviceNotes: string[];
  /** What natix could not reproduce of the models' preprocessor configs (unknown processor types or keys). */
  preprocessingWarnings: string[];
  /** Cascade-level deadline (ms), when set. */
  deadlineMs?: number;
  stages: Array<{
    name: string;
    combine: Combiner;
    escalate?: StagePlan['escalate'];
    fallback?: string;
    deadlineMs?: number;
    models: Array<{name: string; weight: number; kind: string; source: string; input: string; resample: string; device: string; runtime: string; replicas: number; threads: number; timeoutMs: number}>;
  }>;
}

/** Per-image state while a batch goes through the stages. */
interface Entry {
  meta: {id?: string; path?: string};
  image?: DecodedImage;
  error?: string;
  decodeMs: number;
  tensors: Map<string, Promise<{tensor: InputTensor; ms: number}>>;
  traces: StageTrace[];
  probability?: number;
  degraded: boolean;
  degradedReason?: string;
  stop?: string;
}

/** Concatenates single-image tensors along the batch dimension. */
function stackTensors(tensors: InputTensor[]): InputTensor {
  const first = tensors[0]!;
  const size = first.data.length;
  const data = first.dtype === 'uint8' ? new Uint8Array(size * tensors.length) : new Float32Array(size * tensors.length);
  tensors.forEach((t, i) => data.set(t.data, i * size));
  return {data, dims: [tensors.length, first.dims[1], first.dims[2], first.dims[3]], dtype: first.dtype};
}

/** Splits a batched output [B, ...] into B outputs [1, ...]. */
function splitOutput(output: ModelOutput, batch: number): ModelOutput[] {
  const per = output.data.length / batch;
  return Array.from({length: batch}, (_, i) => ({data: output.data.subarray(i * per, (i + 1) * per), dims: [1, ...output.dims.slice(1)]}));
}

/** Resolves with the promise, or rejects with RunAbandonedError when the signal fires first. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  promise.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new RunAbandonedError(String(signal.reason)));
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new RunAbandonedError(String(signal.reason)));
    signal.addEventListener('abort', onAbort, {once: true});
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

/** A signal that fires after `ms` (unless cleared) and when `parent` fires. */
function deadlineSignal(ms: number, reason: string, parent?: AbortSignal): {signal: AbortSignal; clear: () => void} {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(reason), ms);
  const onParent = (): void => controller.abort(parent!.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParent, {once: true});
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/** Which clock stopped a call: the cascade's deadline (not the model's fault) or the stage's (it is). */
interface Clocks {
  cascade?: AbortSignal;
  stage?: AbortSignal;
  stageDeadlineMs?: number;
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

export class Cascade {
  readonly threshold: number;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly decodeMinSide: number;
  private readonly now: () => number;
  /** How many model uses each preprocessing has: a tensor with one consumer is handed over, not copied. */
  private readonly consumers = new Map<string, number>();

  constructor(
    readonly stages: StagePlan[],
    private readonly options: CascadeOptions,
  ) {
    this.threshold = options.threshold;
    this.now = options.now ?? (() => performance.now());
    const models = this.models();
    for (const m of models) {
      const o = options.breakers?.[m.name] ?? {};
      this.breakers.set(m.name, new CircuitBreaker({failures: o.failures ?? options.breaker.failures, cooldownMs: o.cooldownMs ?? options.breaker.cooldownMs, now: options.breakerClock}));
    }
    for (const s of stages) {
      for (const m of [...s.members.map((x) => x.model), ...(s.fallback && s.fallback !== 'skip' ? [s.fallback] : [])]) {
        const key = preprocessingKey(m.preprocessing);
        this.consumers.set(key, (this.consumers.get(key) ?? 0) + 1);
      }
    }
    // Decode once: at full resolution when a model uses the Pillow-exact resampler, else just large enough for the
    // most demanding model (shrink-on-load does the rest).
    this.decodeMinSide = decodeOptionsFor(models.map((m) => m.preprocessing)).minSide ?? 0;
  }

  /** Every distinct model (stage members and fallbacks). */
  models(): LoadedModel[] {
    const set = new Set<LoadedModel>();
    for (const s of this.stages) {
      for (const m of s.members) set.add(m.model);
      if (s.fallback && s.fallback !== 'skip') set.add(s.fallback);
    }
    return [...set];
  }

  breakerState(model: string): BreakerState | undefined {
    return this.breakers.get(model)?.state;
  }

  /** Calls in flight that keep every model worker busy (workers + their queues); a good batch concurrency. */
  capacity(): number {
    return Math.max(1, ...this.stages.map((s) => s.members.reduce((sum, {model}) => sum + model.placement.replicas, 0))) * 2;
  }

  /** Per model: calls answered, failed, timed out, abandoned, workers replaced, workers alive, calls queued. */
  runtimeStats(): Record<string, ReturnType<LoadedModel['stats']>> {
    return Object.fromEntries(this.models().map((m) => [m.name, m.stats()]));
  }

  describe(): CascadeDescription {
    const models = this.models();
    return {
      threshold: this.threshold,
      decodeMinSide: this.decodeMinSide,
      devices: [...new Set(models.map((m) => m.device))],
      deviceNotes: [...new Set(models.map((m) => m.fallbackReason).filter((r): r is string => Boolean(r)))],
      preprocessingWarnings: [...new Set(models.flatMap((m) => m.preprocessingWarnings))],
      ...(this.options.deadlineMs === undefined ? {} : {deadlineMs: this.options.deadlineMs}),
      stages: this.stages.map((s) => ({
        name: s.name,
        combine: s.combine,
        escalate: s.escalate,
        fallback: s.fallback === undefined ? undefined : s.fallback === 'skip' ? 'skip' : s.fallback.name,
        ...(s.deadlineMs === undefined ? {} : {deadlineMs: s.deadlineMs}),
        models: s.members.map(({model: m, weight}) => ({
          name: m.name,
          weight,
          kind: m.kind,
          source: m.source,
          input: `${m.preprocessing.width}x${m.preprocessing.height} ${m.preprocessing.layout} ${m.preprocessing.resize}`,
          resample: `${m.preprocessing.resample} (${m.preprocessing.resampler})`,
          device: m.device,
          runtime: m.placement.runtime,
          replicas: m.placement.replicas,
          threads: m.placement.threads,
          timeoutMs: m.timeoutMs,
        })),
      })),
    };
  }

  /** Runs the cascade on one image (a path or encoded bytes). Never throws for a bad image or a failing model. */
  async predict(input: string | Uint8Array, meta: {id?: string; path?: string} = {}): Promise<CascadeResult> {
    return (await this.predictBatch([{input, meta}]))[0]!;
  }

  /**
   * Runs the cascade on several images at once: decoded concurrently, and every model whose input has a free batch
   * dimension runs ONE session call per stage for all the images still in that stage (their inference time is
   * the call's time shared equally, `batch` in the trace). Results come back in input order.
   * `allStages` ignores the escalation rules: every stage runs on every image (bench --tune records them all).
   */
  async predictBatch(items: Array<{input: string | Uint8Array; meta?: {id?: string; path?: string}}>, options: {allStages?: boolean} = {}): Promise<CascadeResult[]> {
    const started = this.now();
    const deadline = this.options.deadlineMs === undefined ? undefined : deadlineSignal(this.options.deadlineMs, `cascade deadline (${this.options.deadlineMs} ms)`);
    const cascadeSignal = deadline?.signal;
    try {
      const entries: Entry[] = await Promise.all(
        items.map(async ({input, meta = {}}) => {
          const t0 = this.now();
          try {
            const image = await unlessAborted(decodeImage(input, this.decodeMinSide ? {minSide: this.decodeMinSide} : {}), cascadeSignal);
            return {meta, image, decodeMs: this.now() - t0, tensors: new Map(), traces: [], degraded: false} as Entry;
          } catch (error) {
            const message = error instanceof RunAbandonedError ? `${error.message} expired while decoding` : `unreadable image: ${errorMessage(error)}`;
            return {meta, decodeMs: this.now() - t0, tensors: new Map(), traces: [], degraded: true, error: message, ...(error instanceof RunAbandonedError ? {degradedReason: message} : {})} as Entry;
          }
        }),
      );
      for (const stage of this.stages) {
        if (cascadeSignal?.aborted) {
          for (const e of entries.filter((x) => x.image && !x.stop)) {
            e.stop = `${String(cascadeSignal.reason)} expired`;
            e.degraded = true;
            e.degradedReason ??= `${String(cascadeSignal.reason)} expired before stage ${stage.name}`;
          }
        }
        const active = entries.filter((e) => e.image && !e.stop);
        for (const e of entries.filter((x) => x.image && x.stop)) {
          e.traces.push({name: stage.name, ran: false, reason: e.stop, ms: 0, models: stage.members.map(({model}) => ({name: model.name, status: 'skipped', preprocessMs: 0, inferenceMs: 0, postprocessMs: 0, reason: 'stage not reached'}))});
        }
        if (active.length === 0) continue;
        const traces = await this.runStage(stage, active, cascadeSignal);
        active.forEach((e, k) => {
          const trace = traces[k]!;
          e.traces.push(trace);
          if (cascadeSignal?.aborted) {
            e.degraded = true;
            e.degradedReason ??= `${String(cascadeSignal.reason)} expired during stage ${stage.name}`;
          }
          if (trace.probability === undefined) {
            e.degraded = true;
            e.degradedReason ??= `stage ${stage.name}: ${trace.reason ?? 'no answer'}`;
            return;
          }
          e.probability = trace.probability;
          if (stage.escalate && !options.allStages) {
            const [lo, hi] = stage.escalate.band;
            const inside = trace.probability >= lo && trace.probability <= hi;
            const go = stage.escalate.when === 'inside' ? inside : !inside;
            if (!go) e.stop = `${stage.name} was decisive: ${round(trace.probability)} ${inside ? 'inside' : 'outside'} [${lo}, ${hi}]`;
          }
        });
      }
      const total = this.now() - started;
      return entries.map((e) => this.finish(e, total, items.length));
    } finally {
      deadline?.clear();
    }
  }

  /** The result record of one entry (and its log lines). */
  private finish(e: Entry, total: number, batch: number): CascadeResult {
    if (!e.image) {
      this.options.logs?.errors.error({image: e.meta.path ?? e.meta.id, error: e.error}, 'decode-failed');
      return {...e.meta, roadwork: false, probability: 0.5, degraded: true, decodeMs: round(e.decodeMs), totalMs: round(batch === 1 ? total : e.decodeMs), stages: [], error: e.error, ...(e.degradedReason ? {degradedReason: e.degradedReason} : {})};
    }
    const final = clampProbability(e.probability ?? 0.5);
    const result: CascadeResult = {
      ...e.meta,
      roadwork: final > this.threshold,
      probability: final,
      degraded: e.degraded,
      ...(e.degraded && e.degradedReason ? {degradedReason: e.degradedReason} : {}),
      decodeMs: round(e.decodeMs),
      // One image: its wall time. A batch: the batch's wall time (the images were processed together).
      totalMs: round(total),
      stages: e.traces,
      ...(e.probability === undefined ? {error: 'no stage answered'} : {}),
    };
    this.options.logs?.inference.info({
      image: e.meta.path ?? e.meta.id,
      ...(e.meta.id !== undefined && e.meta.id !== e.meta.path ? {id: e.meta.id} : {}),
      decision: result.roadwork ? 'roadwork' : 'none',
      probability: result.probability,
      models: e.traces.flatMap((s) => s.models.filter((m) => m.status === 'ran' || m.status === 'fallback').map((m) => m.name)),
      degraded: result.degraded,
      totalMs: result.totalMs,
      ...(result.error ? {error: result.error} : {}),
      ...(batch > 1 ? {batch} : {}),
    });
    return result;
  }

  /**
   * One stage for every active entry: its models concurrently (each call settles by its own timeout, the stage's
   * deadline or the cascade's), one fallback call per entry with failures, then the combiner on what answered.
   */
  private async runStage(stage: StagePlan, entries: Entry[], cascadeSignal: AbortSignal | undefined): Promise<StageTrace[]> {
    const t0 = this.now();
    const stageClock = stage.deadlineMs === undefined ? undefined : deadlineSignal(stage.deadlineMs, `stage deadline (${stage.deadlineMs} ms)`, cascadeSignal);
    const clocks: Clocks = {cascade: cascadeSignal, stage: stageClock?.signal ?? cascadeSignal, stageDeadlineMs: stage.deadlineMs};
    try {
      const perModel = await Promise.all(stage.members.map(({model}) => this.runModel(model, entries, clocks)));
      const fallback = stage.fallback && stage.fallback !== 'skip' ? stage.fallback : undefined;
      const needFallback = entries.map((_, k) => perModel.some((traces) => traces[k]!.probability === undefined));
      const fallbackTraces = new Map<number, ModelTrace>();
      if (fallback && !clocks.stage?.aborted && needFallback.some(Boolean)) {
        const ks = needFallback.flatMap((need, k) => (need ? [k] : []));
        const traces = await this.runModel(fallback, ks.map((k) => entries[k]!), clocks);
        ks.forEach((k, i) => fallbackTraces.set(k, traces[i]!));
      }
      return entries.map((entry, k) => {
        const answers: Array<{p: number; weight: number}> = [];
        const models: ModelTrace[] = [];
        const failed: Array<{weight: number; name: string}> = [];
        perModel.forEach((traces, i) => {
          const trace = traces[k]!;
          models.push(trace);
          if (trace.probability !== undefined) answers.push({p: trace.probability, weight: stage.members[i]!.weight});
          else {
            failed.push({weight: stage.members[i]!.weight, name: trace.name});
            this.options.logs?.errors.error({image: entry.meta.path ?? entry.meta.id, stage: stage.name, model: trace.name, error: trace.error ?? trace.reason}, 'model-failed');
          }
        });
        const fb = fallbackTraces.get(k);
        if (fb) {
          models.push({...fb, status: fb.status === 'ran' ? 'fallback' : fb.status, reason: `in place of ${failed.map((f) => f.name).join(', ')}`});
          if (fb.probability !== undefined) for (const f of failed) answers.push({p: fb.probability, weight: f.weight});
        }
        const ms = round(this.now() - t0);
        return answers.length === 0 ? {name: stage.name, ran: true, reason: 'every model failed', ms, models} : {name: stage.name, ran: true, probability: combineProbabilities(answers, stage.combine, this.threshold), ms, models};
      });
    } finally {
      stageClock?.clear();
    }
  }

  /** The tensor of `model`'s preprocessing for an entry (made once per image and preprocessing), and whether it was made here. */
  private async tensorFor(model: LoadedModel, e: Entry): Promise<{tensor: InputTensor; ms: number; owner: boolean}> {
    const key = preprocessingKey(model.preprocessing);
    let pending = e.tensors.get(key);
    const owner = !pending;
    if (!pending) {
      const t = this.now();
      pending = preprocessForModel(e.image!, model.preprocessing).then((tensor) => ({tensor, ms: this.now() - t}));
      e.tensors.set(key, pending);
    }
    const {tensor, ms} = await pending;
    return {tensor, ms, owner};
  }

  /** Turns a failed call into its trace, and tells the breaker (an abandoned call is not the model's fault). */
  private failure(model: LoadedModel, error: unknown, clocks: Clocks): Pick<ModelTrace, 'status' | 'error' | 'reason'> {
    const breaker = this.breakers.get(model.name)!;
    if (error instanceof RunAbandonedError) {
      if (clocks.cascade?.aborted) {
        breaker.onAbandoned();
        return {status: 'skipped', reason: `${String(clocks.cascade.reason)} expired`};
      }
      breaker.onFailure();
      return {status: 'failed', error: `missed the stage deadline (${clocks.stageDeadlineMs} ms)`};
    }
    breaker.onFailure();
    return {status: 'failed', error: error instanceof ModelTimeoutError ? error.message : errorMessage(error)};
  }

  /** Runs a model for every entry: one batched call when its input has a free batch dimension, else one call each. */
  private async runModel(model: LoadedModel, entries: Entry[], clocks: Clocks): Promise<ModelTrace[]> {
    const breaker = this.breakers.get(model.name)!;
    const blank = (): ModelTrace => ({name: model.name, status: 'skipped', preprocessMs: 0, inferenceMs: 0, postprocessMs: 0});
    const transfer = this.consumers.get(preprocessingKey(model.preprocessing)) === 1;
    const decode = (trace: ModelTrace, output: ModelOutput): void => {
      const t2 = this.now();
      const p = outputProbability(output.data, output.dims, model.output);
      trace.postprocessMs = round(this.now() - t2);
      if (!Number.isFinite(p)) {
        trace.status = 'failed';
        trace.error = `model output is not a finite probability (${p})`;
      } else {
        trace.probability = clampProbability(p);
        trace.status = 'ran';
      }
    };
    if (model.canBatch && entries.length > 1) {
      if (!breaker.allow()) return entries.map(() => ({...blank(), reason: 'circuit-open'}));
      const traces = entries.map(() => blank());
      try {
        const tensors = await Promise.all(
          entries.map(async (e, k) => {
            const {tensor, ms, owner} = await this.tensorFor(model, e);
            traces[k]!.preprocessMs = owner ? round(ms) : 0; // a shared tensor is charged to the model that made it
            return tensor;
          }),
        );
        const t1 = this.now();
        const output = await model.infer(stackTensors(tensors), {timeoutMs: model.timeoutMs * tensors.length, signal: clocks.stage, transfer: true});
        const inferenceMs = round((this.now() - t1) / tensors.length);
        splitOutput(output, tensors.length).forEach((out, k) => {
          traces[k]!.inferenceMs = inferenceMs;
          traces[k]!.batch = tensors.length;
          decode(traces[k]!, out);
        });
        if (traces.every((t) => t.status === 'failed')) breaker.onFailure();
        else breaker.onSuccess();
        return traces;
      } catch (error) {
        const outcome = this.failure(model, error, clocks);
        return traces.map((t) => ({...t, ...outcome}));
      }
    }
    return Promise.all(
      entries.map(async (e) => {
        if (!breaker.allow()) return {...blank(), reason: 'circuit-open'};
        const trace = blank();
        try {
          const {tensor, ms, owner} = await this.tensorFor(model, e);
          trace.preprocessMs = owner ? round(ms) : 0;
          const t1 = this.now();
          const output = await model.infer(tensor, {timeoutMs: model.timeoutMs, signal: clocks.stage, transfer});
          trace.inferenceMs = round(this.now() - t1);
          decode(trace, output);
          if (trace.status === 'failed') breaker.onFailure();
          else breaker.onSuccess();
          return trace;
        } catch (error) {
          return {...trace, ...this.failure(model, error, clocks)};
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.models().map((m) => m.close()));
    await this.options.logs?.close();
  }
}

/**
 * The cascade engine: decode an image once, run stage after stage (models of a stage concurrently), combine, and
 * escalate to the next stage only when the rule says so. Failures (timeouts, errors, open circuits) are handled per
 * model with fallbacks; a failed stage degrades the answer instead of failing it. Every answer carries a trace.
 */
import {decodeImage, type DecodedImage} from '../image/decode.js';
import {preprocessImage, preprocessingKey, type InputTensor} from '../image/preprocess.js';
import type {InferenceLogs} from '../logging/inference-logs.js';
import {errorMessage} from '../errors.js';
import {CircuitBreaker, type BreakerState} from './circuit-breaker.js';
import {clampProbability, combineProbabilities, type Combiner} from './combine.js';
import {outputProbability} from './decode-output.js';
import type {LoadedModel} from './model.js';
import type {CascadeResult, ModelTrace, StageTrace} from './types.js';

export interface StagePlan {
  name: string;
  members: Array<{model: LoadedModel; weight: number}>;
  combine: Combiner;
  escalate?: {when: 'inside' | 'outside'; band: [number, number]};
  /** 'skip' drops failing models; a model runs in place of each failing one. */
  fallback?: 'skip' | LoadedModel;
}

export interface CascadeOptions {
  threshold: number;
  breaker: {failures: number; cooldownMs: number};
  /** Per-model breaker overrides. */
  breakers?: Record<string, {failures?: number; cooldownMs?: number}>;
  logs?: InferenceLogs;
  now?: () => number;
}

export interface CascadeDescription {
  threshold: number;
  decodeMinSide: number;
  devices: string[];
  deviceNotes: string[];
  stages: Array<{name: string; combine: Combiner; escalate?: StagePlan['escalate']; fallback?: string; models: Array<{name: string; weight: number; kind: string; source: string; input: string; device: string}>}>;
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

export class Cascade {
  readonly threshold: number;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly decodeMinSide: number;
  private readonly now: () => number;

  constructor(
    readonly stages: StagePlan[],
    private readonly options: CascadeOptions,
  ) {
    this.threshold = options.threshold;
    this.now = options.now ?? (() => performance.now());
    const models = this.models();
    for (const m of models) {
      const o = options.breakers?.[m.name] ?? {};
      this.breakers.set(m.name, new CircuitBreaker({failures: o.failures ?? options.breaker.failures, cooldownMs: o.cooldownMs ?? options.breaker.cooldownMs}));
    }
    // Decode once, just large enough for the most demanding model (shrink-on-load does the rest).
    this.decodeMinSide = Math.max(...models.map((m) => Math.max(m.preprocessing.width, m.preprocessing.height, m.preprocessing.shortestEdge ?? 0)));
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

  describe(): CascadeDescription {
    const models = this.models();
    return {
      threshold: this.threshold,
      decodeMinSide: this.decodeMinSide,
      devices: [...new Set(models.map((m) => m.device))],
      deviceNotes: [...new Set(models.map((m) => m.fallbackReason).filter((r): r is string => Boolean(r)))],
      stages: this.stages.map((s) => ({
        name: s.name,
        combine: s.combine,
        escalate: s.escalate,
        fallback: s.fallback === undefined ? undefined : s.fallback === 'skip' ? 'skip' : s.fallback.name,
        models: s.members.map(({model: m, weight}) => ({
          name: m.name,
          weight,
          kind: m.kind,
          source: m.source,
          input: `${m.preprocessing.width}x${m.preprocessing.height} ${m.preprocessing.layout} ${m.preprocessing.resize}`,
          device: m.device,
        })),
      })),
    };
  }

  /** Runs the cascade on one image (a path or encoded bytes). Never throws for a bad image or a failing model. */
  async predict(input: string | Uint8Array, meta: {id?: string; path?: string} = {}): Promise<CascadeResult> {
    const started = this.now();
    let image: DecodedImage;
    try {
      image = await decodeImage(input, {minSide: this.decodeMinSide});
    } catch (error) {
      const result: CascadeResult = {
        ...meta,
        roadwork: false,
        probability: 0.5,
        degraded: true,
        decodeMs: round(this.now() - started),
        totalMs: round(this.now() - started),
        stages: [],
        error: `unreadable image: ${errorMessage(error)}`,
      };
      this.options.logs?.errors.error({image: meta.path ?? meta.id, error: result.error}, 'decode-failed');
      return result;
    }
    const decodeMs = this.now() - started;
    const tensors = new Map<string, Promise<{tensor: InputTensor; ms: number}>>();
    const traces: StageTrace[] = [];
    let probability: number | undefined;
    let degraded = false;
    let stop: string | undefined;
    for (const stage of this.stages) {
      if (stop) {
        traces.push({name: stage.name, ran: false, reason: stop, ms: 0, models: stage.members.map(({model}) => ({name: model.name, status: 'skipped', preprocessMs: 0, inferenceMs: 0, postprocessMs: 0, reason: 'stage not reached'}))});
        continue;
      }
      const trace = await this.runStage(stage, image, tensors, meta);
      traces.push(trace);
      if (trace.probability === undefined) {
        degraded = true;
        continue;
      }
      probability = trace.probability;
      if (stage.escalate) {
        const [lo, hi] = stage.escalate.band;
        const inside = probability >= lo && probability <= hi;
        const go = stage.escalate.when === 'inside' ? inside : !inside;
        if (!go) stop = `${stage.name} was decisive: ${round(probability)} ${inside ? 'inside' : 'outside'} [${lo}, ${hi}]`;
      }
    }
    const final = clampProbability(probability ?? 0.5);
    const result: CascadeResult = {
      ...meta,
      roadwork: final > this.threshold,
      probability: final,
      degraded,
      decodeMs: round(decodeMs),
      totalMs: round(this.now() - started),
      stages: traces,
      ...(probability === undefined ? {error: 'no stage answered'} : {}),
    };
    this.options.logs?.inference.info({
      image: meta.path ?? meta.id,
      decision: result.roadwork ? 'roadwork' : 'none',
      probability: result.probability,
      models: traces.flatMap((s) => s.models.filter((m) => m.status === 'ran' || m.status === 'fallback').map((m) => m.name)),
      degraded,
      totalMs: result.totalMs,
    });
    return result;
  }

  private async runStage(stage: StagePlan, image: DecodedImage, tensors: Map<string, Promise<{tensor: InputTensor; ms: number}>>, meta: {id?: string; path?: string}): Promise<StageTrace> {
    const t0 = this.now();
    const traces = await Promise.all(stage.members.map(({model}) => this.runModel(model, image, tensors)));
    const answers: Array<{p: number; weight: number}> = [];
    const fallbacks: ModelTrace[] = [];
    for (let i = 0; i < traces.length; i++) {
      const trace = traces[i]!;
      const weight = stage.members[i]!.weight;
      if (trace.probability !== undefined) {
        answers.push({p: trace.probability, weight});
        continue;
      }
      this.options.logs?.errors.error({image: meta.path ?? meta.id, stage: stage.name, model: trace.name, error: trace.error ?? trace.reason}, 'model-failed');
      if (stage.fallback && stage.fallback !== 'skip') {
        const fb = await this.runModel(stage.fallback, image, tensors);
        fallbacks.push({...fb, status: fb.status === 'ran' ? 'fallback' : fb.status, reason: `in place of ${trace.name}`});
        if (fb.probability !== undefined) answers.push({p: fb.probability, weight});
      }
    }
    const models = [...traces, ...fallbacks];
    const ms = round(this.now() - t0);
    if (answers.length === 0) return {name: stage.name, ran: true, reason: 'every model failed', ms, models};
    return {name: stage.name, ran: true, probability: combineProbabilities(answers, stage.combine, this.threshold), ms, models};
  }

  private async runModel(model: LoadedModel, image: DecodedImage, tensors: Map<string, Promise<{tensor: InputTensor; ms: number}>>): Promise<ModelTrace> {
    const breaker = this.breakers.get(model.name)!;
    const trace: ModelTrace = {name: model.name, status: 'skipped', preprocessMs: 0, inferenceMs: 0, postprocessMs: 0};
    if (!breaker.allow()) return {...trace, reason: 'circuit-open'};
    try {
      const key = preprocessingKey(model.preprocessing);
      let pending = tensors.get(key);
      const owner = !pending;
      if (!pending) {
        const t = this.now();
        pending = preprocessImage(image, model.preprocessing).then((tensor) => ({tensor, ms: this.now() - t}));
        tensors.set(key, pending);
      }
      const {tensor, ms} = await pending;
      trace.preprocessMs = owner ? round(ms) : 0; // a shared tensor is charged to the model that made it
      const t1 = this.now();
      const output = await withTimeout(model.infer(tensor), model.timeoutMs);
      trace.inferenceMs = round(this.now() - t1);
      // onnxruntime-node runs a session synchronously (inside setImmediate), so the race above cannot interrupt it:
      // a run that finished late still counts as a timeout.
      if (trace.inferenceMs > model.timeoutMs) throw new TimeoutError(`timed out after ${model.timeoutMs} ms (took ${trace.inferenceMs} ms)`);
      const t2 = this.now();
      const p = outputProbability(output.data, output.dims, model.output);
      trace.postprocessMs = round(this.now() - t2);
      if (!Number.isFinite(p)) throw new Error(`model output is not a finite probability (${p})`);
      trace.probability = clampProbability(p);
      trace.status = 'ran';
      breaker.onSuccess();
      return trace;
    } catch (error) {
      breaker.onFailure();
      return {...trace, status: 'failed', error: errorMessage(error)};
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.models().map((m) => m.close()));
    await this.options.logs?.close();
  }
}

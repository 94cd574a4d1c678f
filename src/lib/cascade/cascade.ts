/**
 * The cascade engine: decode an image once, run stage after stage (models of a stage concurrently), combine, and
 * escalate to the next stage only when the rule says so. Failures (timeouts, errors, open circuits) are handled per
 * model with fallbacks; a failed stage degrades the answer instead of failing it. Every answer carries a trace.
 */
import {decodeImage, type DecodedImage} from '../image/decode.js';
import {decodeOptionsFor, preprocessForModel, preprocessingKey, type InputTensor} from '../image/preprocess.js';
import type {InferenceLogs} from '../logging/inference-logs.js';
import {errorMessage} from '../errors.js';
import {CircuitBreaker, type BreakerState} from './circuit-breaker.js';
import {clampProbability, combineProbabilities, type Combiner} from './combine.js';
import {outputProbability} from './decode-output.js';
import type {LoadedModel, ModelOutput} from './model.js';
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
  /** The circuit breakers' clock (ms); injectable so tests can step through the cool-down. */
  breakerClock?: () => number;
}

export interface CascadeDescription {
  threshold: number;
  decodeMinSide: number;
  devices: string[];
  deviceNotes: string[];
  /** What natix could not reproduce of the models' preprocessor configs (unknown processor types or keys). */
  preprocessingWarnings: string[];
  stages: Array<{name: string; combine: Combiner; escalate?: StagePlan['escalate']; fallback?: string; models: Array<{name: string; weight: number; kind: string; source: string; input: string; resample: string; device: string}>}>;
}

class TimeoutError extends Error {}

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
      this.breakers.set(m.name, new CircuitBreaker({failures: o.failures ?? options.breaker.failures, cooldownMs: o.cooldownMs ?? options.breaker.cooldownMs, now: options.breakerClock}));
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

  describe(): CascadeDescription {
    const models = this.models();
    return {
      threshold: this.threshold,
      decodeMinSide: this.decodeMinSide,
      devices: [...new Set(models.map((m) => m.device))],
      deviceNotes: [...new Set(models.map((m) => m.fallbackReason).filter((r): r is string => Boolean(r)))],
      preprocessingWarnings: [...new Set(models.flatMap((m) => m.preprocessingWarnings))],
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
          resample: `${m.preprocessing.resample} (${m.preprocessing.resampler})`,
          device: m.device,
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
   */
  async predictBatch(items: Array<{input: string | Uint8Array; meta?: {id?: string; path?: string}}>): Promise<CascadeResult[]> {
    const started = this.now();
    const entries: Entry[] = await Promise.all(
      items.map(async ({input, meta = {}}) => {
        const t0 = this.now();
        try {
          const image = await decodeImage(input, this.decodeMinSide ? {minSide: this.decodeMinSide} : {});
          return {meta, image, decodeMs: this.now() - t0, tensors: new Map(), traces: [], degraded: false} as Entry;
        } catch (error) {
          return {meta, decodeMs: this.now() - t0, tensors: new Map(), traces: [], degraded: true, error: `unreadable image: ${errorMessage(error)}`} as Entry;
        }
      }),
    );
    for (const stage of this.stages) {
      const active = entries.filter((e) => e.image && !e.stop);
      for (const e of entries.filter((x) => x.image && x.stop)) {
        e.traces.push({name: stage.name, ran: false, reason: e.stop, ms: 0, models: stage.members.map(({model}) => ({name: model.name, status: 'skipped', preprocessMs: 0, inferenceMs: 0, postprocessMs: 0, reason: 'stage not reached'}))});
      }
      if (active.length === 0) continue;
      const traces = await this.runStage(stage, active);
      active.forEach((e, k) => {
        const trace = traces[k]!;
        e.traces.push(trace);
        if (trace.probability === undefined) {
          e.degraded = true;
          return;
        }
        e.probability = trace.probability;
        if (stage.escalate) {
          const [lo, hi] = stage.escalate.band;
          const inside = trace.probability >= lo && trace.probability <= hi;
          const go = stage.escalate.when === 'inside' ? inside : !inside;
          if (!go) e.stop = `${stage.name} was decisive: ${round(trace.probability)} ${inside ? 'inside' : 'outside'} [${lo}, ${hi}]`;
        }
      });
    }
    const total = this.now() - started;
    return entries.map((e) => {
      if (!e.image) {
        this.options.logs?.errors.error({image: e.meta.path ?? e.meta.id, error: e.error}, 'decode-failed');
        return {...e.meta, roadwork: false, probability: 0.5, degraded: true, decodeMs: round(e.decodeMs), totalMs: round(items.length === 1 ? total : e.decodeMs), stages: [], error: e.error};
      }
      const final = clampProbability(e.probability ?? 0.5);
      const result: CascadeResult = {
        ...e.meta,
        roadwork: final > this.threshold,
        probability: final,
        degraded: e.degraded,
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
        ...(items.length > 1 ? {batch: items.length} : {}),
      });
      return result;
    });
  }

  /** One stage for every active entry: its models concurrently, fallbacks for the failures, then the combiner. */
  private async runStage(stage: StagePlan, entries: Entry[]): Promise<StageTrace[]> {
    const t0 = this.now();
    const perModel = await Promise.all(stage.members.map(({model}) => this.runModel(model, entries)));
    const out: StageTrace[] = [];
    for (let k = 0; k < entries.length; k++) {
      const answers: Array<{p: number; weight: number}> = [];
      const models: ModelTrace[] = [];
      const failed: Array<{weight: number; name: string}> = [];
      perModel.forEach((traces, i) => {
        const trace = traces[k]!;
        models.push(trace);
        if (trace.probability !== undefined) answers.push({p: trace.probability, weight: stage.members[i]!.weight});
        else {
          failed.push({weight: stage.members[i]!.weight, name: trace.name});
          this.options.logs?.errors.error({image: entries[k]!.meta.path ?? entries[k]!.meta.id, stage: stage.name, model: trace.name, error: trace.error ?? trace.reason}, 'model-failed');
        }
      });
      if (failed.length > 0 && stage.fallback && stage.fallback !== 'skip') {
        for (const f of failed) {
          const [fb] = await this.runModel(stage.fallback, [entries[k]!]);
          models.push({...fb!, status: fb!.status === 'ran' ? 'fallback' : fb!.status, reason: `in place of ${f.name}`});
          if (fb!.probability !== undefined) answers.push({p: fb!.probability, weight: f.weight});
        }
      }
      const ms = round(this.now() - t0);
      out.push(answers.length === 0 ? {name: stage.name, ran: true, reason: 'every model failed', ms, models} : {name: stage.name, ran: true, probability: combineProbabilities(answers, stage.combine, this.threshold), ms, models});
    }
    return out;
  }

  /** Preprocesses each entry (sharing tensors by preprocessing), runs the model - batched when it can - and decodes. */
  private async runModel(model: LoadedModel, entries: Entry[]): Promise<ModelTrace[]> {
    const breaker = this.breakers.get(model.name)!;
    const blank = (): ModelTrace => ({name: model.name, status: 'skipped', preprocessMs: 0, inferenceMs: 0, postprocessMs: 0});
    if (!breaker.allow()) return entries.map(() => ({...blank(), reason: 'circuit-open'}));
    const traces = entries.map(() => blank());
    try {
      const key = preprocessingKey(model.preprocessing);
      const tensors = await Promise.all(
        entries.map(async (e, k) => {
          let pending = e.tensors.get(key);
          const owner = !pending;
          if (!pending) {
            const t = this.now();
            pending = preprocessForModel(e.image!, model.preprocessing).then((tensor) => ({tensor, ms: this.now() - t}));
            e.tensors.set(key, pending);
          }
          const {tensor, ms} = await pending;
          traces[k]!.preprocessMs = owner ? round(ms) : 0; // a shared tensor is charged to the model that made it
          return tensor;
        }),
      );
      const outputs: ModelOutput[] = [];
      const t1 = this.now();
      if (model.canBatch && tensors.length > 1) {
        const output = await withTimeout(model.infer(stackTensors(tensors)), model.timeoutMs * tensors.length);
        outputs.push(...splitOutput(output, tensors.length));
      } else {
        for (const tensor of tensors) outputs.push(await withTimeout(model.infer(tensor), model.timeoutMs));
      }
      const inferenceMs = (this.now() - t1) / tensors.length;
      // onnxruntime-node runs a session synchronously (inside setImmediate), so the race above cannot interrupt it:
      // a run that finished late still counts as a timeout.
      if (inferenceMs > model.timeoutMs) throw new TimeoutError(`timed out after ${model.timeoutMs} ms (took ${round(inferenceMs)} ms)`);
      outputs.forEach((output, k) => {
        const t2 = this.now();
        const p = outputProbability(output.data, output.dims, model.output);
        const trace = traces[k]!;
        trace.inferenceMs = round(inferenceMs);
        trace.postprocessMs = round(this.now() - t2);
        if (tensors.length > 1 && model.canBatch) trace.batch = tensors.length;
        if (!Number.isFinite(p)) {
          trace.status = 'failed';
          trace.error = `model output is not a finite probability (${p})`;
        } else {
          trace.probability = clampProbability(p);
          trace.status = 'ran';
        }
      });
      if (traces.every((t) => t.status === 'failed')) breaker.onFailure();
      else breaker.onSuccess();
      return traces;
    } catch (error) {
      breaker.onFailure();
      return traces.map((t) => ({...t, status: 'failed', error: errorMessage(error)}));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.models().map((m) => m.close()));
    await this.options.logs?.close();
  }
}

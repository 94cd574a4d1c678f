/**
 * Running a cascade over a dataset with bounded concurrency, and summarising: decisions, latency percentiles,
 * throughput over the wall-clock window, and accuracy/MCC when the samples carry labels.
 */
import type {Sample} from '../data/sample.js';
import {ConfusionMatrix, classificationMetrics, type ClassificationMetrics} from '../metrics/classification.js';
import {latencyPercentiles, type LatencyStats} from '../metrics/latency.js';
import type {Cascade} from './cascade.js';
import type {CascadeResult} from './types.js';

export interface BatchRecord extends CascadeResult {
  label: number | null;
  split?: string;
}

export interface BatchSummary {
  count: number;
  decisions: {roadwork: number; none: number};
  errors: number;
  degraded: number;
  latency: LatencyStats;
  /** Images per second over the whole run's wall-clock window. */
  throughput: number;
  wallSeconds: number;
  concurrency: number;
  /** Present when every answered image had a label. */
  metrics?: ClassificationMetrics;
  /** How often each stage ran. */
  stageRuns: Record<string, number>;
}

export interface BatchOptions {
  concurrency: number;
  /** Images per cascade call (models with a free batch dimension run them in one session call). Default 1. */
  batchSize?: number;
  onResult?: (record: BatchRecord) => void;
}

/** Runs every sample through the cascade; results come back in input order. */
export async function runBatch(cascade: Cascade, samples: AsyncIterable<Sample> | Iterable<Sample>, options: BatchOptions): Promise<{records: BatchRecord[]; summary: BatchSummary}> {
  const records: BatchRecord[] = [];
  const started = performance.now();
  const iterator = (Symbol.asyncIterator in samples ? samples[Symbol.asyncIterator]() : (samples as Iterable<Sample>)[Symbol.iterator]()) as AsyncIterator<Sample> | Iterator<Sample>;
  let index = 0;
  const size = Math.max(1, options.batchSize ?? 1);
  const worker = async (): Promise<void> => {
    for (;;) {
      const chunk: Array<{sample: Sample; slot: number}> = [];
      while (chunk.length < size) {
        const next = await iterator.next();
        if (next.done) break;
        chunk.push({sample: next.value, slot: index++});
      }
      if (chunk.length === 0) return;
      const results = await cascade.predictBatch(chunk.map(({sample}) => ({input: sample.bytes ?? sample.absPath!, meta: {id: sample.id, path: sample.path}})));
      results.forEach((result, k) => {
        const {sample, slot} = chunk[k]!;
        const record: BatchRecord = {...result, label: sample.label, split: sample.split};
        records[slot] = record;
        options.onResult?.(record);
      });
      if (chunk.length < size) return;
    }
  };
  await Promise.all(Array.from({length: Math.max(1, options.concurrency)}, worker));
  const wallSeconds = (performance.now() - started) / 1000;
  return {records, summary: summarise(records, wallSeconds, options.concurrency)};
}

export function summarise(records: BatchRecord[], wallSeconds: number, concurrency: number): BatchSummary {
  const answered = records.filter((r) => !r.error);
  const stageRuns: Record<string, number> = {};
  for (const r of records) for (const s of r.stages) if (s.ran) stageRuns[s.name] = (stageRuns[s.name] ?? 0) + 1;
  let metrics: ClassificationMetrics | undefined;
  if (answered.length > 0 && answered.every((r) => r.label !== null)) {
    const cm = new ConfusionMatrix(2);
    for (const r of answered) cm.add(r.label!, r.roadwork ? 1 : 0);
    metrics = classificationMetrics(cm);
  }
  return {
    count: records.length,
    // Errors are never decisions: an unanswered image is neither roadwork nor none.
    decisions: {roadwork: answered.filter((r) => r.roadwork).length, none: answered.filter((r) => !r.roadwork).length},
    errors: records.length - answered.length,
    degraded: records.filter((r) => r.degraded).length,
    latency: latencyPercentiles(answered.map((r) => r.totalMs)),
    throughput: wallSeconds > 0 ? records.length / wallSeconds : 0,
    wallSeconds,
    concurrency,
    metrics,
    stageRuns,
  };
}

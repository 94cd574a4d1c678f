/**
 * Multi-source training data: `dataset` as a list of `{path, format, weight, label-map, split}` (NATIX parquet
 * shards + CMU ROADWork COCO + extra folders...). Every sample keeps its source; the run reports per-source counts;
 * training draws samples by source weight (P(source s) = w_s / sum w, uniform inside a source; with equal weights
 * an epoch is a plain shuffle); validation metrics are computed overall and per source.
 */
import path from 'node:path';
import type {TrainConfig} from '../config/schemas/train.js';
import {openDataset, type FormatChoice} from '../data/open.js';
import type {Sample} from '../data/sample.js';
import {SeededRandom} from '../util/random.js';

export interface ResolvedSource {
  name: string;
  path: string;
  format: string;
  weight: number;
  labelMap?: Record<string, number>;
  split: 'auto' | 'train' | 'val';
  trainSplit: string;
  valSplit: string;
  splitRatios: [number, number];
}

export interface SourcedSample {
  sample: Sample;
  label: number;
  /** Index into the sources. */
  source: number;
}

export interface SourceCounts {
  name: string;
  weight: number;
  train: number;
  val: number;
  /** Images per label (index = label) in train / val. */
  trainByLabel: number[];
  valByLabel: number[];
}

export interface LoadedSources {
  train: SourcedSample[];
  val: SourcedSample[];
  counts: SourceCounts[];
}

/** The sources of a config (`dataset` as one object or a list), paths resolved against `root`. */
export function resolveSources(dataset: TrainConfig['dataset'], root: string): ResolvedSource[] {
  const list = Array.isArray(dataset) ? dataset : [dataset];
  const names = new Set<string>();
  return list.map((d, i) => {
    const src = d as Record<string, unknown> & {path: string};
    let name = (src.name as string | undefined) ?? (path.basename(path.resolve(root, src.path)).replace(/[^A-Za-z0-9._-]/g, '_') || `source${i}`);
    while (names.has(name)) name = `${name}-${i}`;
    names.add(name);
    return {
      name,
      path: path.resolve(root, src.path),
      format: (src.format as string | undefined) ?? 'auto',
      weight: (src.weight as number | undefined) ?? 1,
      ...(src['label-map'] ? {labelMap: src['label-map'] as Record<string, number>} : {}),
      split: (src.split as ResolvedSource['split'] | undefined) ?? 'auto',
      trainSplit: (src['train-split'] as string | undefined) ?? 'train',
      valSplit: (src['val-split'] as string | undefined) ?? 'val',
      splitRatios: (src['split-ratios'] as [number, number] | undefined) ?? [0.8, 0.2],
    };
  });
}

function countLabels(list: SourcedSample[]): number[] {
  const counts: number[] = [];
  for (const s of list) counts[s.label] = (counts[s.label] ?? 0) + 1;
  return Array.from(counts, (c) => c ?? 0);
}

/** Reads every source and splits it (its own splits, split-ratios drawn with the seed, or all to train / val). */
export async function loadSources(sources: ResolvedSource[], seed: number): Promise<LoadedSources> {
  const train: SourcedSample[] = [];
  const val: SourcedSample[] = [];
  const counts: SourceCounts[] = [];
  for (const [index, src] of sources.entries()) {
    const dataset = await openDataset(src.path, src.format as FormatChoice, src.labelMap ? {classMap: src.labelMap} : {});
    const labelled: SourcedSample[] = [];
    for await (const sample of dataset.samples()) {
      const mapped = src.labelMap && sample.labelName !== undefined && sample.labelName in src.labelMap ? src.labelMap[sample.labelName]! : sample.label;
      if (mapped !== null && mapped !== undefined) labelled.push({sample, label: mapped, source: index});
    }
    let t: SourcedSample[];
    let v: SourcedSample[];
    if (src.split === 'train') [t, v] = [labelled, []];
    else if (src.split === 'val') [t, v] = [[], labelled];
    else if (labelled.some((s) => s.sample.split === src.trainSplit)) {
      t = labelled.filter((s) => s.sample.split === src.trainSplit);
      v = labelled.filter((s) => s.sample.split === src.valSplit);
    } else {
      const order = new SeededRandom(`${seed}:split:${src.name}`).shuffle(labelled.map((_, i) => i));
      const nTrain = Math.round(labelled.length * src.splitRatios[0]);
      const nVal = Math.round(labelled.length * src.splitRatios[1]);
      t = order.slice(0, nTrain).map((i) => labelled[i]!);
      v = order.slice(nTrain, nTrain + nVal).map((i) => labelled[i]!);
    }
    train.push(...t);
    val.push(...v);
    counts.push({name: src.name, weight: src.weight, train: t.length, val: v.length, trainByLabel: countLabels(t), valByLabel: countLabels(v)});
  }
  return {train, val, counts};
}

/**
 * The training order of an epoch (indices into `train`), from (seed, epoch) alone: a shuffle when every source
 * has the same weight, else `train.length` draws with replacement, P(sample of source s) = w_s / sum w / n_s.
 */
export function epochSampleOrder(train: SourcedSample[], weights: number[], seed: number, epoch: number): number[] {
  const rng = new SeededRandom(`${seed}:order:${epoch}`);
  const present = [...new Set(train.map((s) => s.source))];
  const equal = present.every((s) => weights[s] === weights[present[0]!]);
  if (equal) return rng.shuffle(train.map((_, i) => i));
  const perSource = new Map<number, number>();
  for (const s of train) perSource.set(s.source, (perSource.get(s.source) ?? 0) + 1);
  const total = present.reduce((a, s) => a + weights[s]!, 0);
  const cumulative = new Float64Array(train.length);
  let acc = 0;
  train.forEach((s, i) => {
    acc += weights[s.source]! / total / perSource.get(s.source)!;
    cumulative[i] = acc;
  });
  return Array.from({length: train.length}, () => {
    const u = rng.next() * acc;
    let lo = 0;
    let hi = train.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  });
}

/**
 * `synthesizeDataset`: many scenes -> a dataset on disk in one of the layouts natix reads (folder, manifest, YOLO,
 * COCO, NATIX-style parquet). Frames of one "video" share a scene, a label, a split, a `vid_id` and a GPS point.
 *
 * Determinism: image i draws only from generators seeded by (seed, video, frame), never from completion order, so
 * the same options give byte-identical files whatever the concurrency.
 */
import {mkdir, readdir, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type {Box} from '../data/sample.js';
import {ExitCode, NatixError} from '../errors.js';
import {SeededRandom} from '../util/random.js';
import {renderScene} from './render.js';
import {makeCamera, makeSceneSpec, ROADWORK_CLASSES, type SceneSpec} from './scene.js';
import {writeDatasetIndex, type SynthFormat, type SynthRecord} from './writers.js';

export type {SynthFormat} from './writers.js';
export const SYNTH_FORMATS: SynthFormat[] = ['folder', 'manifest', 'yolo', 'coco', 'parquet'];

export interface SynthOptions {
  out: string;
  count: number;
  seed: number;
  width: number;
  height: number;
  /** Train/val/test fractions, summing to 1. */
  splits: [number, number, number];
  positiveRatio: number;
  format: SynthFormat;
  /** JPEG quality range (inclusive). */
  quality: [number, number];
  /** Frames per video (consecutive frames of one scene); 1 = independent images. */
  framesPerVideo: number;
  overwrite: boolean;
  concurrency?: number;
  onProgress?: (done: number) => void;
}

export interface SynthSummary {
  out: string;
  format: SynthFormat;
  seed: number;
  images: number;
  videos: number;
  bytes: number;
  seconds: number;
  imagesPerSecond: number;
  splits: Record<string, {roadwork: number; none: number}>;
  boxes: number;
}

/**
 * Splits n items by ratios with the largest-remainder rule, giving each split with a non-zero ratio at least one
 * item when n allows (so small datasets still have every split).
 */
export function allocate(n: number, ratios: readonly number[]): number[] {
  const exact = ratios.map((r) => n * r);
  const counts = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; counts.reduce((a, b) => a + b, 0) < n; k++) counts[order[k % order.length]![1]]!++;
  for (let i = 0; i < counts.length; i++) {
    if (ratios[i]! > 0 && counts[i] === 0) {
      const donor = counts.indexOf(Math.max(...counts));
      if (counts[donor]! > 1) {
        counts[donor]!--;
        counts[i] = 1;
      }
    }
  }
  return counts;
}

/** Plans videos: label and split per video, stratified so every split gets both classes in proportion. */
function planVideos(options: SynthOptions): Array<{label: 0 | 1; split: string; frames: number}> {
  const videos = Math.ceil(options.count / options.framesPerVideo);
  const rng = new SeededRandom(`${options.seed}:plan`);
  const positives = Math.round(videos * options.positiveRatio);
  const labels: Array<0 | 1> = Array.from({length: videos}, (_, i) => (i < positives ? 1 : 0));
  const plan: Array<{label: 0 | 1; split: string; frames: number}> = [];
  for (const label of [1, 0] as const) {
    const idx = labels.map((l, i) => (l === label ? i : -1)).filter((i) => i >= 0);
    const [nTrain, nVal] = allocate(idx.length, options.splits) as [number, number, number];
    idx.forEach((_, k) => plan.push({label, split: k < nTrain ? 'train' : k < nTrain + nVal ? 'val' : 'test', frames: 0}));
  }
  rng.shuffle(plan);
  let remaining = options.count;
  for (const v of plan) {
    v.frames = Math.min(options.framesPerVideo, remaining);
    remaining -= v.frames;
  }
  return plan.filter((v) => v.frames > 0);
}

const CITIES = [
  ['Berlin', 52.52, 13.405],
  ['Munich', 48.137, 11.575],
  ['Vienna', 48.208, 16.373],
  ['Lisbon', 38.722, -9.139],
  ['Warsaw', 52.229, 21.012],
  ['Austin', 30.267, -97.743],
  ['Osaka', 34.693, 135.502],
] as const;

async function ensureEmpty(out: string, overwrite: boolean): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(out);
  } catch {
    // does not exist yet
  }
  if (entries.length > 0 && !overwrite) {
    throw new NatixError(`Output folder ${out} is not empty`, {
      code: 'OUTPUT_NOT_EMPTY',
      exitCode: ExitCode.Usage,
      actions: ['Choose an empty folder, or pass --overwrite to write into it (existing files with the same names are replaced).'],
    });
  }
  await mkdir(out, {recursive: true});
}

/** Where the image of `record` goes, relative to `out`, for each layout. */
export function imagePathFor(format: SynthFormat, split: string, label: 0 | 1, id: string): string {
  switch (format) {
    case 'folder':
      return `${split}/${label === 1 ? 'roadwork' : 'none'}/${id}.jpg`;
    case 'manifest':
      return `images/${id}.jpg`;
    case 'yolo':
    case 'coco':
      return `images/${split}/${id}.jpg`;
    case 'parquet':
      return `${id}.jpg`; // stored inside the shard, as the image struct's `path`
  }
}

export async function synthesizeDataset(options: SynthOptions): Promise<SynthSummary> {
  const started = performance.now();
  await ensureEmpty(options.out, options.overwrite);
  const classId = new Map<string, number>(ROADWORK_CLASSES.map((c, i) => [c, i]));
  const plan = planVideos(options);
  const jobs: Array<{index: number; video: number; frame: number; label: 0 | 1; split: string}> = [];
  let index = 0;
  plan.forEach((v, video) => {
    for (let frame = 0; frame < v.frames; frame++) jobs.push({index: index++, video, frame, label: v.label, split: v.split});
  });
  // Recomputed per frame (cheap) from the video's own generator: frames of a video share it exactly.
  const specFor = (video: number, label: 0 | 1): {spec: SceneSpec; city: (typeof CITIES)[number]; gps: [number, number]} => {
    const rng = new SeededRandom(`${options.seed}:video:${video}`);
    const spec = makeSceneSpec(rng, options.width, options.height, label === 1);
    const city = rng.pick(CITIES);
    return {spec, city, gps: [city[1] + rng.uniform(-0.08, 0.08), city[2] + rng.uniform(-0.08, 0.08)]};
  };
  const records: SynthRecord[] = new Array(jobs.length);
  const inParquet = options.format === 'parquet';
  let bytes = 0;
  let done = 0;
  let next = 0;
  const workers = Math.max(1, options.concurrency ?? os.availableParallelism() * 2);
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const {spec, city, gps} = specFor(job.video, job.label);
      const rng = new SeededRandom(`${options.seed}:video:${job.video}:frame:${job.frame}`);
      const camera = makeCamera(rng, job.frame);
      const quality = rng.intBetween(options.quality[0], options.quality[1]);
      const rendered = await renderScene(spec, camera, rng, classId, quality);
      const id = `synth-${options.seed}-${String(job.index).padStart(6, '0')}`;
      const rel = imagePathFor(options.format, job.split, job.label, id);
      if (!inParquet) {
        const file = path.join(options.out, rel);
        await mkdir(path.dirname(file), {recursive: true});
        await writeFile(file, rendered.jpeg);
        bytes += rendered.jpeg.length;
      }
      records[job.index] = {
        id,
        path: rel,
        label: job.label,
        split: job.split,
        width: options.width,
        height: options.height,
        boxes: rendered.boxes as Box[],
        jpeg: inParquet ? rendered.jpeg : undefined,
        quality,
        daytime: spec.daytime,
        weather: spec.weather,
        environment: spec.environment,
        travelAlteration: spec.roadwork ? `lane narrowing (${spec.side})` : 'none',
        description: spec.description,
        videoId: `vid-${options.seed}-${String(job.video).padStart(5, '0')}`,
        frame: job.frame,
        city: city[0],
        gps,
      };
      done++;
      options.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({length: workers}, worker));
  bytes += await writeDatasetIndex(options.format, options.out, records, {seed: options.seed});
  const seconds = (performance.now() - started) / 1000;
  const splits: SynthSummary['splits'] = {};
  for (const r of records) {
    const s = (splits[r.split] ??= {roadwork: 0, none: 0});
    if (r.label === 1) s.roadwork++;
    else s.none++;
  }
  return {
    out: options.out,
    format: options.format,
    seed: options.seed,
    images: records.length,
    videos: plan.length,
    bytes,
    seconds: Math.round(seconds * 100) / 100,
    imagesPerSecond: Math.round((records.length / seconds) * 10) / 10,
    splits,
    boxes: records.reduce((n, r) => n + r.boxes.length, 0),
  };
}

/**
 * Training data: every image decoded ONCE at the training size (stretched to size x size, RGB uint8, through the
 * same preprocessForModel as inference: Pillow-exact by default) and kept in
 * memory for all epochs; batches are assembled from that cache with augmentation drawn from per-(epoch, image)
 * generators, so the data order and the augmentations are reproducible and need no state to resume.
 */
import os from 'node:os';
import sharp from 'sharp';
import type {Dataset, Sample} from '../data/sample.js';
import {decodeImage} from '../image/decode.js';
import {decodeOptionsFor, DEFAULT_PREPROCESSING, preprocessForModel, type Preprocessing, type Resampler} from '../image/preprocess.js';
import {SeededRandom} from '../util/random.js';

export interface ImageSet {
  images: Uint8Array[];
  labels: number[];
  ids: string[];
  /** Larger copies (aspect kept), for augmentations that crop and rotate like the subnet's validators. */
  sources?: Array<{data: Buffer; width: number; height: number}>;
}

export interface SplitData {
  train: ImageSet;
  val: ImageSet;
  skipped: Array<{path: string; error: string}>;
}

/** The model input natix trains on: size x size, bilinear, RGB uint8 (HWC), through the same function inference uses. */
export function trainingPreprocessing(size: number, resampler: Resampler): Preprocessing {
  return {...DEFAULT_PREPROCESSING, width: size, height: size, resize: 'stretch', resample: 'bilinear', resampler, layout: 'nhwc', dtype: 'uint8'};
}

async function decodeAt(sample: Sample, p: Preprocessing, sourceSide?: number): Promise<{image: Uint8Array; source?: {data: Buffer; width: number; height: number}}> {
  const input = sample.bytes ?? sample.absPath!;
  // The model's pixels come from preprocessForModel (full-resolution decode + Pillow resize, or the vips path),
  // exactly as at inference; the larger copy for validator-style augmentation is decoded once more only when the
  // vips path's shrink-on-load decode is too small for it.
  const decoded = await decodeImage(input, sourceSide && p.resampler === 'vips' ? {minSide: sourceSide} : decodeOptionsFor([p]));
  const image = (await preprocessForModel(p.resampler === 'vips' && sourceSide ? input : decoded, p)).data as Uint8Array;
  if (!sourceSide) return {image};
  const scale = sourceSide / Math.min(decoded.width, decoded.height);
  if (scale >= 1) return {image, source: {data: decoded.data, width: decoded.width, height: decoded.height}};
  const width = Math.round(decoded.width * scale);
  const height = Math.round(decoded.height * scale);
  const data = await sharp(decoded.data, {raw: {width: decoded.width, height: decoded.height, channels: 3}}).resize(width, height, {fit: 'fill', kernel: 'linear'}).raw().toBuffer();
  return {image, source: {data, width, height}};
}

export interface LoadOptions {
  size: number;
  trainSplit: string;
  valSplit: string;
  /** When the dataset has no splits: [train, val] fractions, drawn with the seed. */
  splitRatios: [number, number];
  seed: number;
  /** Also keep the training images at this shorter side (for validator-style augmentation). */
  sourceSide?: number;
  /** How model inputs are resized (default pillow); recorded in the run config and the exported preprocessor config. */
  resampler?: Resampler;
  onProgress?: (done: number) => void;
  /** Polled between images: true stops decoding early (the caller then stops too). */
  shouldStop?: () => boolean;
  /** Called with the chosen samples before any is decoded (e.g. to refuse a one-class training set early). */
  checkSplits?: (train: Sample[], val: Sample[]) => void;
}

export async function loadSplits(dataset: Dataset, options: LoadOptions): Promise<SplitData> {
  const samples: Sample[] = [];
  for await (const s of dataset.samples()) if (s.label !== null) samples.push(s);
  const hasSplits = samples.some((s) => s.split === options.trainSplit);
  let train: Sample[];
  let val: Sample[];
  if (hasSplits) {
    train = samples.filter((s) => s.split === options.trainSplit);
    val = samples.filter((s) => s.split === options.valSplit);
  } else {
    const order = new SeededRandom(`${options.seed}:split`).shuffle(samples.map((_, i) => i));
    const nTrain = Math.round(samples.length * options.splitRatios[0]);
    const nVal = Math.round(samples.length * options.splitRatios[1]);
    train = order.slice(0, nTrain).map((i) => samples[i]!);
    val = order.slice(nTrain, nTrain + nVal).map((i) => samples[i]!);
  }
  options.checkSplits?.(train, val);
  const skipped: SplitData['skipped'] = [];
  const preprocessing = trainingPreprocessing(options.size, options.resampler ?? 'pillow');
  let done = 0;
  const decodeAll = async (list: Sample[], withSources: boolean): Promise<ImageSet> => {
    const images: Array<Uint8Array | undefined> = new Array(list.length);
    const sources: Array<{data: Buffer; width: number; height: number} | undefined> = new Array(list.length);
    let next = 0;
    await Promise.all(
      Array.from({length: os.availableParallelism() * 2}, async () => {
        while (next < list.length && !options.shouldStop?.()) {
          const i = next++;
          try {
            const decoded = await decodeAt(list[i]!, preprocessing, withSources ? options.sourceSide : undefined);
            images[i] = decoded.image;
            sources[i] = decoded.source;
          } catch (error) {
            skipped.push({path: list[i]!.path, error: (error as Error).message});
          }
          options.onProgress?.(++done);
        }
      }),
    );
    const keep = list.map((_, i) => i).filter((i) => images[i]);
    return {images: keep.map((i) => images[i]!), labels: keep.map((i) => list[i]!.label!), ids: keep.map((i) => list[i]!.path), ...(withSources && options.sourceSide ? {sources: keep.map((i) => sources[i]!)} : {})};
  };
  // Validation images are never augmented: no larger copies for them.
  return {train: await decodeAll(train, true), val: await decodeAll(val, false), skipped};
}

export interface Augmentation {
  flip: boolean;
  colorJitter: number;
  randomCrop: number;
  /** Random rotation up to +- this many degrees (nearest neighbour, black corners); 0 = off. */
  rotation?: number;
  /** The subnet's challenge augmentations (level 0-3 drawn uniformly, 224 px, JPEG q75), then resized. */
  validator?: boolean;
}

/**
 * One training image through the subnet's validator pipeline: a level drawn uniformly from {0..3}, the exact
 * augmentation of that level, the 224x224 JPEG at quality 75 a miner receives, then resized to the training size.
 */
export async function validatorAugmented(source: {data: Buffer; width: number; height: number}, size: number, rng: SeededRandom, resampler: Resampler = 'pillow'): Promise<Uint8Array> {
  const {applyChallengeAugmentation, encodeChallengeJpeg} = await import('../validator/augment.js');
  const level = rng.int(4) as 0 | 1 | 2 | 3;
  const {rgb} = await applyChallengeAugmentation(source, level, rng);
  const jpeg = await encodeChallengeJpeg(rgb);
  // The 224x224 JPEG a miner receives, preprocessed as the cascade would preprocess it.
  return (await preprocessForModel(jpeg, trainingPreprocessing(size, resampler))).data as Uint8Array;
}

/** Writes image `src` (size x size RGB) into `out` at `offset` as floats in [0, 1], augmented with `rng`. */
export function fillAugmented(out: Float32Array, offset: number, src: Uint8Array, size: number, aug: Augmentation | undefined, rng: SeededRandom | undefined): void {
  const flip = aug?.flip && rng ? rng.bool(0.5) : false;
  const gain = aug && aug.colorJitter > 0 && rng ? 1 + rng.uniform(-aug.colorJitter, aug.colorJitter) : 1;
  const bias = aug && aug.colorJitter > 0 && rng ? rng.uniform(-aug.colorJitter, aug.colorJitter) * 0.5 : 0;
  // Random crop: sample a window of at least randomCrop x size and stretch it back (nearest).
  let crop = size;
  let cx = 0;
  let cy = 0;
  if (aug && aug.randomCrop < 1 && rng) {
    crop = Math.max(2, Math.round(size * rng.uniform(aug.randomCrop, 1)));
    cx = rng.int(size - crop + 1);
    cy = rng.int(size - crop + 1);
  }
  const scale = crop / size;
  const angle = aug?.rotation && rng ? (rng.uniform(-aug.rotation, aug.rotation) * Math.PI) / 180 : 0;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const half = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = offset + (y * size + x) * 3;
      // Rotate the output position back into the (cropped, flipped) source: nearest neighbour, black outside.
      const rx = angle ? Math.round(half + (x - half) * cos + (y - half) * sin) : x;
      const ry = angle ? Math.round(half - (x - half) * sin + (y - half) * cos) : y;
      if (rx < 0 || ry < 0 || rx >= size || ry >= size) {
        out[d] = 0;
        out[d + 1] = 0;
        out[d + 2] = 0;
        continue;
      }
      const sy = cy + Math.min(crop - 1, Math.floor(ry * scale));
      const sxBase = cx + Math.min(crop - 1, Math.floor(rx * scale));
      const sx = flip ? cx + crop - 1 - (sxBase - cx) : sxBase;
      const s = (sy * size + sx) * 3;
      for (let c = 0; c < 3; c++) {
        const v = (src[s + c]! / 255) * gain + bias;
        out[d + c] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
}

/** Samples per epoch: all of them, or (balanced sampling) the largest class's count times the number of classes. */
export function epochLength(labels: number[], balance: 'none' | 'sampling'): number {
  if (balance === 'none') return labels.length;
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return Math.max(...counts.values()) * counts.size;
}

/** The sample order of an epoch: shuffled (and class-balanced by oversampling when asked), from the seed alone. */
export function epochOrder(labels: number[], seed: number, epoch: number, balance: 'none' | 'sampling'): number[] {
  const rng = new SeededRandom(`${seed}:order:${epoch}`);
  let indices = labels.map((_, i) => i);
  if (balance === 'sampling') {
    const byClass = new Map<number, number[]>();
    labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
    const max = Math.max(...[...byClass.values()].map((v) => v.length));
    indices = [];
    for (const list of byClass.values()) for (let k = 0; k < max; k++) indices.push(list[k % list.length]!);
  }
  return rng.shuffle(indices);
}

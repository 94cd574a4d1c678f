/**
 * validate-data's engine: reads a dataset through the shared reader, decodes each image once at reduced size
 * (concurrently, so libvips keeps both cores busy), computes its properties, then runs the per-image, cross-image
 * and label checks. Never writes to the dataset.
 */
import path from 'node:path';
import type {CheckId} from '../config/schemas/validate-data.js';
import type {DataIssue, Dataset, Sample} from '../data/sample.js';
import {decodeImage, DEFAULT_PIXEL_LIMIT} from '../image/decode.js';
import {errorMessage} from '../errors.js';
import {UserFileError} from '../util/user-files.js';
import {BkTree, signatureCorrelation} from './hash.js';
import {computeProperties, type ImageProperties} from './properties.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  check: CheckId;
  severity: Severity;
  path: string;
  message: string;
  related?: string[];
  value?: unknown;
  threshold?: unknown;
}

export const DEFAULT_SEVERITIES: Record<CheckId, Severity> = {
  unreadable: 'error',
  'extension-mismatch': 'warning',
  'too-small': 'warning',
  'too-large': 'error',
  dark: 'warning',
  light: 'warning',
  blurry: 'warning',
  'low-information': 'warning',
  grayscale: 'warning',
  'odd-aspect-ratio': 'warning',
  'odd-size': 'warning',
  'exact-duplicate': 'warning',
  'near-duplicate': 'warning',
  'split-leak': 'error',
  'class-imbalance': 'warning',
  'split-ratio': 'warning',
  'label-missing': 'error',
  'label-malformed': 'error',
  'label-class-unknown': 'error',
  'box-out-of-bounds': 'error',
  'box-degenerate': 'error',
  'duplicate-box': 'error',
  'label-description-mismatch': 'error',
  'path-escape': 'error',
};

/** CleanVision's defaults where it is right; natix's own for blur. */
export const DEFAULT_THRESHOLDS = {
  dark: 0.32,
  light: 0.05,
  'low-information': 0.3,
  'odd-aspect-ratio': 0.35,
  blurry: 25,
  'too-small': 10,
  'too-large': DEFAULT_PIXEL_LIMIT,
  'odd-size': 3,
  'class-imbalance': 0.7,
  'split-ratio': 0.15,
};
export type Thresholds = typeof DEFAULT_THRESHOLDS;

export interface ValidateOptions {
  thresholds: Thresholds;
  severities: Partial<Record<CheckId, Severity | 'off'>>;
  hamming: number;
  concurrency: number;
  /** Longest side of the analysis decode (default 256). */
  maxSide: number;
  expectedSplits: Record<string, number>;
  /** Keep the bytes of in-file images (parquet rows) for the report / quarantine (costs memory). */
  keepBytes?: boolean;
  onImage?: (done: number) => void;
}

export interface ImageRecord {
  path: string;
  split?: string;
  label: number | null;
  props?: ImageProperties;
  metadata: Record<string, unknown>;
  /**
   * Where to read the image again (report thumbnails, duplicate confirmation, quarantine): a file path, or - for
   * rows inside a file (parquet) - the bytes, kept only when `keepBytes` is set so memory stays flat by default.
   */
  source?: string | Uint8Array;
}

export interface ValidationResult {
  findings: Finding[];
  images: ImageRecord[];
  statistics: {
    splits: Record<string, number>;
    classes: Record<string, number>;
    bySplitAndClass: Record<string, Record<string, number>>;
    width: {min: number; median: number; max: number} | null;
    height: {min: number; median: number; max: number} | null;
    brightness: {p5: number; median: number; p95: number} | null;
    unreadable: number;
  };
  seconds: number;
}

/** Colour-thumbnail correlation a pHash candidate needs to count as a near duplicate. */
export const NEAR_DUPLICATE_MIN_CORRELATION = 0.99;

const EXT_FORMAT: Record<string, string> = {jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp', gif: 'gif', tif: 'tiff', tiff: 'tiff', avif: 'heif', heic: 'heif'};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A decoder message with the image's absolute path (and the root) replaced by root-relative paths. */
function relativeMessage(message: string, sample: Sample, root: string): string {
  let out = message;
  if (sample.absPath) out = out.split(sample.absPath).join(sample.path);
  return out.split(`${root}${path.sep}`).join('').split(root).join('.');
}

export async function validateDataset(dataset: Dataset, issues: DataIssue[], options: ValidateOptions): Promise<ValidationResult> {
  const started = performance.now();
  const findings: Finding[] = [];
  const severityOf = (check: CheckId): Severity | 'off' => options.severities[check] ?? DEFAULT_SEVERITIES[check];
  const add = (f: Omit<Finding, 'severity'>): void => {
    const severity = severityOf(f.check);
    if (severity !== 'off') findings.push({...f, severity});
  };
  const t = options.thresholds;
  const images: ImageRecord[] = [];

  const analyse = async (sample: Sample, slot: number): Promise<void> => {
    const record: ImageRecord = {path: sample.path, split: sample.split, label: sample.label, metadata: sample.metadata, source: sample.absPath ?? (options.keepBytes ? sample.bytes : undefined)};
    const input = sample.absPath ?? sample.bytes!;
    images[slot] = record;
    if (sample.bytes && sample.bytes.byteLength === 0) return add({check: 'unreadable', path: sample.path, message: 'empty image bytes'});
    try {
      const decoded = await decodeImage(input, {maxSide: options.maxSide, pixelLimit: t['too-large']});
      record.props = computeProperties(decoded);
    } catch (error) {
      // Say what happened (missing, permission denied, a FIFO, a directory, a symlink loop...), with paths
      // relative to the dataset root, never an absolute path.
      if (error instanceof UserFileError) return add({check: 'unreadable', path: sample.path, message: `the file ${error.what}`});
      const message = relativeMessage(errorMessage(error), sample, dataset.root);
      if (/pixel limit/i.test(message)) return add({check: 'too-large', path: sample.path, message: `more than ${t['too-large']} pixels: refused before decoding (decompression bomb guard)`, threshold: t['too-large']});
      return add({check: 'unreadable', path: sample.path, message: `cannot decode: ${message.split('\n')[0]}`});
    }
    const p = record.props;
    const ext = /\.([a-z0-9]+)$/i.exec(sample.absPath ?? String(sample.metadata['image.path'] ?? ''))?.[1]?.toLowerCase();
    if (ext && EXT_FORMAT[ext] && EXT_FORMAT[ext] !== p.format) add({check: 'extension-mismatch', path: sample.path, message: `named .${ext} but the content is ${p.format}`, value: p.format});
    if (Math.min(p.width, p.height) < t['too-small']) add({check: 'too-small', path: sample.path, message: `${p.width}x${p.height} is under ${t['too-small']} px a side`, value: [p.width, p.height], threshold: t['too-small']});
    if (p.brightnessP99 < t.dark) add({check: 'dark', path: sample.path, message: `dark: 99th-percentile brightness ${p.brightnessP99.toFixed(3)} < ${t.dark}`, value: p.brightnessP99, threshold: t.dark});
    if (1 - p.brightnessP5 < t.light) add({check: 'light', path: sample.path, message: `washed out: light score ${(1 - p.brightnessP5).toFixed(3)} < ${t.light}`, value: 1 - p.brightnessP5, threshold: t.light});
    const info = Math.min(1, 0.1 * p.entropy);
    if (info < t['low-information']) add({check: 'low-information', path: sample.path, message: `low information: entropy ${p.entropy.toFixed(2)} bits (score ${info.toFixed(3)} < ${t['low-information']})`, value: info, threshold: t['low-information']});
    else if (p.blurVariance < t.blurry) add({check: 'blurry', path: sample.path, message: `blurry: Laplacian variance ${p.blurVariance.toFixed(1)} < ${t.blurry}`, value: p.blurVariance, threshold: t.blurry});
    if (p.grayscale) add({check: 'grayscale', path: sample.path, message: p.channels <= 2 ? 'single-channel (grayscale) image' : 'RGB image whose channels are equal: grayscale content', value: p.channels});
    if (p.aspectRatio < t['odd-aspect-ratio']) add({check: 'odd-aspect-ratio', path: sample.path, message: `aspect ratio ${p.aspectRatio.toFixed(3)} < ${t['odd-aspect-ratio']} (${p.width}x${p.height})`, value: p.aspectRatio, threshold: t['odd-aspect-ratio']});
    if ('scene_description' in sample.metadata && sample.label !== null) {
      const description = String(sample.metadata.scene_description ?? '').trim();
      if (sample.label === 1 && description === '') add({check: 'label-description-mismatch', path: sample.path, message: 'label 1 (roadwork) with an empty scene_description: validators never use such a row as a challenge'});
      if (sample.label === 0 && description !== '') add({check: 'label-description-mismatch', path: sample.path, message: 'label 0 with a non-empty scene_description: validators never use such a row as a challenge', value: description.slice(0, 80)});
    }
  };

  // Bounded concurrency over the async sample stream: memory stays flat whatever the dataset size.
  const iterator = dataset.samples()[Symbol.asyncIterator]();
  let slot = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      await analyse(next.value, slot++);
      options.onImage?.(++done);
    }
  };
  await Promise.all(Array.from({length: options.concurrency}, worker));

  for (const issue of issues) add({check: issue.check, path: issue.path, message: issue.message, value: issue.value});
  await crossImageChecks(images.filter(Boolean), options, add);

  const decoded = images.filter((r) => r?.props);
  const widths = decoded.map((r) => r.props!.width).sort((a, b) => a - b);
  const heights = decoded.map((r) => r.props!.height).sort((a, b) => a - b);
  const brightness = decoded.map((r) => r.props!.meanBrightness).sort((a, b) => a - b);
  const splits: Record<string, number> = {};
  const classes: Record<string, number> = {};
  const bySplitAndClass: Record<string, Record<string, number>> = {};
  for (const r of images.filter(Boolean)) {
    const s = r.split ?? '(none)';
    const c = r.label === null ? '(unlabelled)' : String(r.label);
    splits[s] = (splits[s] ?? 0) + 1;
    classes[c] = (classes[c] ?? 0) + 1;
    (bySplitAndClass[s] ??= {})[c] = (bySplitAndClass[s]![c] ?? 0) + 1;
  }
  return {
    findings,
    images: images.filter(Boolean),
    statistics: {
      splits,
      classes,
      bySplitAndClass,
      width: widths.length ? {min: widths[0]!, median: quantile(widths, 0.5), max: widths.at(-1)!} : null,
      height: heights.length ? {min: heights[0]!, median: quantile(heights, 0.5), max: heights.at(-1)!} : null,
      brightness: brightness.length ? {p5: quantile(brightness, 0.05), median: quantile(brightness, 0.5), p95: quantile(brightness, 0.95)} : null,
      unreadable: findings.filter((f) => f.check === 'unreadable').length,
    },
    seconds: (performance.now() - started) / 1000,
  };
}

async function crossImageChecks(images: ImageRecord[], options: ValidateOptions, add: (f: Omit<Finding, 'severity'>) => void): Promise<void> {
  const t = options.thresholds;
  const decoded = images.filter((r) => r.props);
  // odd-size: sqrt(w*h) outside Q1 - k*IQR .. Q3 + k*IQR over the dataset.
  if (decoded.length >= 4) {
    const sizes = decoded.map((r) => r.props!.sizeScore).sort((a, b) => a - b);
    const q1 = quantile(sizes, 0.25);
    const q3 = quantile(sizes, 0.75);
    const iqr = q3 - q1;
    const lo = q1 - t['odd-size'] * iqr;
    const hi = q3 + t['odd-size'] * iqr;
    for (const r of decoded) {
      const s = r.props!.sizeScore;
      if (s < lo || s > hi) add({check: 'odd-size', path: r.path, message: `size ${r.props!.width}x${r.props!.height} is far from the dataset's (sqrt(w*h) ${s.toFixed(0)} outside ${lo.toFixed(0)}..${hi.toFixed(0)})`, value: s, threshold: [lo, hi]});
    }
  }
  // Exact duplicates: candidates share the original shape and the pixels at the analysis resolution; each
  // candidate is then confirmed by comparing full-resolution pixels (rare, so cheap overall).
  const byPixels = new Map<string, ImageRecord[]>();
  for (const r of decoded) byPixels.set(r.props!.pixelHash, [...(byPixels.get(r.props!.pixelHash) ?? []), r]);
  for (const [key, group] of byPixels) {
    if (group.length < 2) continue;
    // Rows whose bytes were not kept are trusted on the reduced-pixel hash and shape.
    if (group.some((r) => !r.source)) continue;
    const full = await Promise.all(group.map((r) => decodeImage(r.source!, {strict: false}).then((d) => d.data).catch(() => undefined)));
    const confirmed = group.filter((_, i) => full[i] && full[0] && full[i]!.equals(full[0]));
    byPixels.set(key, confirmed.length >= 2 ? confirmed : [group[0]!]);
  }
  const exactPairs = new Set<string>();
  const leak = (a: ImageRecord, b: ImageRecord, how: string): void => {
    if (a.split && b.split && a.split !== b.split) add({check: 'split-leak', path: a.path, related: [b.path], message: `${how} of ${b.path} across splits (${a.split} vs ${b.split})`});
  };
  for (const group of byPixels.values()) {
    if (group.length < 2) continue;
    const [first, ...rest] = group;
    for (const r of rest) {
      exactPairs.add(`${first!.path}|${r.path}`);
      add({check: 'exact-duplicate', path: r.path, related: [first!.path], message: `same pixels as ${first!.path}`});
      leak(r, first!, 'exact duplicate');
    }
  }
  // Near duplicates: pHash within the Hamming radius (BK-tree), excluding exact ones.
  const tree = new BkTree();
  decoded.forEach((r, i) => tree.add(r.props!.phash, i));
  const reported = new Set<string>();
  decoded.forEach((r, i) => {
    for (const {id, distance} of tree.search(r.props!.phash, options.hamming)) {
      if (id <= i) continue;
      const other = decoded[id]!;
      const key = `${r.path}|${other.path}`;
      if (exactPairs.has(key) || exactPairs.has(`${other.path}|${r.path}`) || reported.has(key) || r.props!.pixelHash === other.props!.pixelHash) continue;
      const correlation = signatureCorrelation(r.props!.signature, other.props!.signature);
      if (correlation < NEAR_DUPLICATE_MIN_CORRELATION) continue;
      reported.add(key);
      add({check: 'near-duplicate', path: other.path, related: [r.path], message: `near duplicate of ${r.path} (perceptual-hash distance ${distance} <= ${options.hamming}, colour-thumbnail correlation ${correlation.toFixed(3)})`, value: distance, threshold: options.hamming});
      leak(other, r, 'near duplicate');
    }
  });
  // NATIX rows from the same video in different splits.
  const videoSplit = new Map<string, ImageRecord>();
  for (const r of images) {
    const vid = r.metadata['video_info.vid_id'] ?? r.metadata.vid_id;
    if (vid === undefined || vid === null || vid === '' || !r.split) continue;
    const first = videoSplit.get(String(vid));
    if (!first) videoSplit.set(String(vid), r);
    else if (first.split !== r.split) add({check: 'split-leak', path: r.path, related: [first.path], message: `same video (vid_id ${String(vid)}) as ${first.path} in another split (${r.split} vs ${first.split}): split by video`});
  }
  // Class balance and split proportions.
  const labelled = images.filter((r) => r.label !== null);
  const counts = new Map<number, number>();
  for (const r of labelled) counts.set(r.label!, (counts.get(r.label!) ?? 0) + 1);
  if (counts.size >= 2) {
    const values = [...counts.values()];
    const major = Math.max(...values);
    const share = major / labelled.length;
    const minor = Math.min(...values);
    if (share > t['class-imbalance']) add({check: 'class-imbalance', path: '.', message: `majority class holds ${(share * 100).toFixed(1)}% of labelled images (> ${t['class-imbalance'] * 100}%); ratio ${(major / minor).toFixed(2)}:1. Validators draw labels 50/50: weight or resample classes when training.`, value: share, threshold: t['class-imbalance']});
  } else if (counts.size === 1 && labelled.length > 0) {
    add({check: 'class-imbalance', path: '.', message: `only one class (${[...counts.keys()][0]}) is present`, value: 1, threshold: t['class-imbalance']});
  }
  const withSplit = images.filter((r) => r.split);
  if (withSplit.length > 0) {
    const total = images.length;
    for (const [split, expected] of Object.entries(options.expectedSplits)) {
      const n = images.filter((r) => r.split === split).length;
      if (expected > 0 && n === 0) add({check: 'split-ratio', path: '.', message: `split "${split}" is empty (expected about ${(expected * 100).toFixed(0)}%)`, value: 0, threshold: expected});
      else if (Math.abs(n / total - expected) > t['split-ratio']) add({check: 'split-ratio', path: '.', message: `split "${split}" holds ${((n / total) * 100).toFixed(1)}% of images, expected about ${(expected * 100).toFixed(0)}%`, value: n / total, threshold: expected});
    }
  }
}

/**
 * validate-data's engine: reads a dataset through the shared reader, decodes each image once at reduced size
 * (concurrently, so libvips keeps both cores busy), computes its properties and runs the per-image checks, keeping
 * only a ~1 KB fingerprint per image; then the cross-image checks (duplicates, leaks, label conflicts, balance) run
 * over the fingerprints. With a shard, only the shard's images are analysed and the cross-image checks are left to
 * `mergeShards` (shard.ts), which runs them over every shard's fingerprints. Never writes to the dataset.
 */
import {existsSync} from 'node:fs';
import path from 'node:path';
import type {CheckId} from '../config/schemas/validate-data.js';
import type {DataIssue, Dataset, Sample} from '../data/sample.js';
import {decodeImage, DEFAULT_PIXEL_LIMIT} from '../image/decode.js';
import {errorMessage} from '../errors.js';
import {UserFileError} from '../util/user-files.js';
import {FingerprintTable} from './fingerprints.js';
import {NEAR_DUPLICATE_MAX_CELL_DIFFERENCE, signatureMaxDifference} from './hash.js';
import {pairsWithin, type PairSearchStats} from './hash-index.js';
import type {PixelKernels} from './pixel-kernels.js';
import {PixelWorkPool} from './pixel-pool.js';
import {needsExactBrightness, type ImageProperties} from './properties.js';
import {inShard, type Shard} from './shard-key.js';

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
  'label-conflict': 'error',
  'class-imbalance': 'warning',
  'single-class': 'error',
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
  /** Expected share of each split (the config's `expected-splits`), checked +- thresholds['split-ratio']; when
   * absent, the usual ranges (DEFAULT_SPLIT_RANGES) are checked instead. */
  expectedSplits?: Record<string, number>;
  /** Keep the bytes of in-file images (parquet rows) for the report / quarantine (costs memory). */
  keepBytes?: boolean;
  /** Worker threads for the per-image pixel work (default defaultPixelWorkers(): none on <= 2 cores); 0: main thread. */
  pixelWorkers?: number;
  /** The pixel kernels of the main-thread path (default: WebAssembly where available; identical results either way). */
  pixelKernels?: PixelKernels;
  /**
   * Settle CleanVision's dark / light verdicts on full-resolution pixels where the thumbnail cannot (default true);
   * false keeps the thumbnail's verdict for every image (faster; findings then say "(thumbnail)").
   */
  exactBrightness?: boolean;
  /** Analyse only this shard's images (by a stable hash of the sample id) and skip the cross-image checks. */
  shard?: Shard;
  onImage?: (done: number) => void;
  /** Progress of the near-duplicate search: (queries done, total). */
  onSearch?: (done: number, total: number) => void;
}

export interface ImageRecord {
  /** Position of the sample in the reader's stream: the order cross-image checks see images in, in every shard. */
  ordinal: number;
  path: string;
  split?: string;
  label: number | null;
  /** NATIX `video_info.vid_id` (or `vid_id`), for the video-leak check. */
  video?: string;
  /** Its row in the run's FingerprintTable; absent when the image could not be decoded. */
  fingerprint?: number;
  /** Its dark / light verdict needed a second decode at full resolution (the thumbnail could not settle it). */
  fullResolution?: true;
  /**
   * Where to read the image again (report thumbnails, duplicate confirmation, quarantine): a file path, or - for
   * rows inside a file (parquet) - the bytes, kept only when `keepBytes` is set so memory stays flat by default.
   */
  source?: string | Uint8Array;
}

export interface ValidationStatistics {
  splits: Record<string, number>;
  classes: Record<string, number>;
  bySplitAndClass: Record<string, Record<string, number>>;
  width: {min: number; median: number; max: number} | null;
  height: {min: number; median: number; max: number} | null;
  brightness: {p5: number; median: number; p95: number} | null;
  unreadable: number;
  /** Images decoded a second time, at full resolution, for CleanVision's exact dark / light verdicts. */
  fullResolution: number;
}

export interface ValidationResult {
  /** Sorted: severity (errors first), check, path, message, related. */
  findings: Finding[];
  /** In reader order. */
  images: ImageRecord[];
  /** The fingerprints the images' `fingerprint` rows refer to. */
  fingerprints: FingerprintTable;
  statistics: ValidationStatistics;
  /** The near-duplicate search's cost (absent for a shard, whose cross-image checks run in merge). */
  search?: PairSearchStats;
  seconds: number;
}

/**
 * Split shares that are normal when the user declared none: 80/10/10, 70/15/15 and 60/20/20 are all common (the
 * bundled sample is 60/20/20). Flagged: a training split under half the data, or a val/test split that is tiny or
 * larger than train would normally leave. A split that is absent is not flagged (train/val only is common).
 */
export const DEFAULT_SPLIT_RANGES: Record<string, [number, number]> = {train: [0.5, 0.95], val: [0.02, 0.3], validation: [0.02, 0.3], test: [0.02, 0.3]};

/** Images larger than this keep their thumbnail brightness percentiles (a full decode would cost ~3 bytes a pixel). */
const EXACT_BRIGHTNESS_MAX_PIXELS = 40_000_000;

const EXT_FORMAT: Record<string, string> = {jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp', gif: 'gif', tif: 'tiff', tiff: 'tiff', avif: 'heif', heic: 'heif'};
const RANK: Record<Severity, number> = {info: 0, warning: 1, error: 2};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A decoder message with the image's absolute path (and the root) replaced by root-relative paths. */
function relativeMessage(message: string, sample: Sample, root: string): string {
  let out = message;
  if (sample.absPath) out = out.split(sample.absPath).join(sample.path);
  return out.split(`${root}${path.sep}`).join('').split(root).join('.');
}

/** A total order on findings, so a report does not depend on which image finished decoding first (or on sharding). */
export function sortFindings(findings: Finding[]): Finding[] {
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return findings.sort((a, b) => RANK[b.severity] - RANK[a.severity] || cmp(a.check, b.check) || cmp(a.path, b.path) || cmp(a.message, b.message) || cmp((a.related ?? []).join('\n'), (b.related ?? []).join('\n')));
}

/** Adds a finding at its configured severity, or drops it when the check is off. */
export function findingSink(options: Pick<ValidateOptions, 'severities'>, findings: Finding[]): (f: Omit<Finding, 'severity'>) => void {
  return (f) => {
    const severity = options.severities[f.check] ?? DEFAULT_SEVERITIES[f.check];
    if (severity !== 'off') findings.push({...f, severity});
  };
}

export async function validateDataset(dataset: Dataset, issues: DataIssue[], options: ValidateOptions): Promise<ValidationResult> {
  const started = performance.now();
  const findings: Finding[] = [];
  const add = findingSink(options, findings);
  const t = options.thresholds;
  const images: ImageRecord[] = [];
  const fingerprints = new FingerprintTable();
  // The per-image pixel work, on worker threads where cores allow (pixel-pool.ts), else on the main thread.
  const pixels = new PixelWorkPool(options.pixelWorkers, options.pixelKernels);
  const checkOn = (check: CheckId): boolean => (options.severities[check] ?? DEFAULT_SEVERITIES[check]) !== 'off';
  const brightnessThresholds = {dark: checkOn('dark') ? t.dark : -1, light: checkOn('light') ? t.light : -1};

  const analyse = async (sample: Sample, record: ImageRecord): Promise<void> => {
    const input = sample.absPath ?? sample.bytes!;
    if (sample.bytes && sample.bytes.byteLength === 0) return add({check: 'unreadable', path: sample.path, message: 'empty image bytes'});
    let p: ImageProperties;
    try {
      const decoded = await decodeImage(input, {maxSide: options.maxSide, pixelLimit: t['too-large']});
      p = await pixels.properties(decoded);
    } catch (error) {
      // Say what happened (missing, permission denied, a FIFO, a directory, a symlink loop...), with paths
      // relative to the dataset root, never an absolute path.
      if (error instanceof UserFileError) return add({check: 'unreadable', path: sample.path, message: `the file ${error.what}`});
      let message = errorMessage(error);
      // decodeImage already retries a failed decode alone (its message is then its own); should the generic failOn
      // text still come back, retrying gets the decoder's own reason, so a report does not depend on timing.
      for (let retry = 0; retry < 3 && /due to failOn/.test(message); retry++) {
        message = await decodeImage(input, {maxSide: options.maxSide, pixelLimit: t['too-large']}).then(() => message, (e: unknown) => errorMessage(e));
      }
      message = relativeMessage(message, sample, dataset.root);
      if (/pixel limit/i.test(message)) return add({check: 'too-large', path: sample.path, message: `more than ${t['too-large']} pixels: refused before decoding (decompression bomb guard)`, threshold: t['too-large']});
      return add({check: 'unreadable', path: sample.path, message: `cannot decode: ${message.split('\n')[0]}`});
    }
    // Dark / light as CleanVision decides them (99th / 5th percentile over every full-resolution pixel): when the
    // thumbnail cannot settle the verdict, decode again at full size and compute the exact percentiles. Only for a
    // check that is on: a threshold of -1 is never uncertain, so that side keeps its thumbnail value unused.
    let exactBrightness = false;
    if (options.exactBrightness !== false && needsExactBrightness(p, brightnessThresholds.dark, brightnessThresholds.light) && p.width * p.height <= EXACT_BRIGHTNESS_MAX_PIXELS) {
      const full = await decodeImage(input, {pixelLimit: t['too-large'], strict: false}).catch(() => undefined);
      if (full) {
        Object.assign(p, await pixels.fullResolutionBrightness(full.data, p, brightnessThresholds.dark, brightnessThresholds.light));
        exactBrightness = true;
        record.fullResolution = true;
      }
    }
    const resolution = exactBrightness ? 'full resolution' : 'thumbnail';
    record.fingerprint = fingerprints.add({width: p.width, height: p.height, meanBrightness: p.meanBrightness, phash: p.phash, signature: p.signature, pixelKey: p.pixelKey});
    const ext = /\.([a-z0-9]+)$/i.exec(sample.absPath ?? String(sample.metadata['image.path'] ?? ''))?.[1]?.toLowerCase();
    if (ext && EXT_FORMAT[ext] && EXT_FORMAT[ext] !== p.format) add({check: 'extension-mismatch', path: sample.path, message: `named .${ext} but the content is ${p.format}`, value: p.format});
    if (Math.min(p.width, p.height) < t['too-small']) add({check: 'too-small', path: sample.path, message: `${p.width}x${p.height} is under ${t['too-small']} px a side`, value: [p.width, p.height], threshold: t['too-small']});
    if (p.brightnessP99 < t.dark) add({check: 'dark', path: sample.path, message: `dark: 99th-percentile brightness ${p.brightnessP99.toFixed(3)} < ${t.dark} (${resolution})`, value: p.brightnessP99, threshold: t.dark});
    if (1 - p.brightnessP5 < t.light) add({check: 'light', path: sample.path, message: `washed out: light score ${(1 - p.brightnessP5).toFixed(3)} < ${t.light} (${resolution})`, value: 1 - p.brightnessP5, threshold: t.light});
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
  let ordinal = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const sample = next.value;
      const position = ordinal++;
      if (options.shard && !inShard(sample.id, options.shard)) continue;
      const video = sample.metadata['video_info.vid_id'] ?? sample.metadata.vid_id;
      const record: ImageRecord = {ordinal: position, path: sample.path, split: sample.split, label: sample.label, source: sample.absPath ?? (options.keepBytes ? sample.bytes : undefined)};
      if (video !== undefined && video !== null && video !== '') record.video = String(video);
      images.push(record);
      await analyse(sample, record);
      options.onImage?.(++done);
    }
  };
  try {
    await Promise.all(Array.from({length: options.concurrency}, worker));
  } finally {
    await pixels.close();
  }
  images.sort((a, b) => a.ordinal - b.ordinal);

  // Reader issues: in a shard, each is reported by the shard its path hashes to (so merged shards report it once).
  for (const issue of issues) if (!options.shard || inShard(issue.path, options.shard)) add({check: issue.check, path: issue.path, message: issue.message, value: issue.value});
  if (options.shard) return {findings: sortFindings(findings), images, fingerprints, statistics: datasetStatistics(images, fingerprints, findings), seconds: (performance.now() - started) / 1000};
  const search = await crossImageChecks(images, fingerprints, options, add);
  return {findings: sortFindings(findings), images, fingerprints, statistics: datasetStatistics(images, fingerprints, findings), search, seconds: (performance.now() - started) / 1000};
}

/** Split, class, size and brightness statistics of the images (any order: the result does not depend on it). */
export function datasetStatistics(images: ImageRecord[], fingerprints: FingerprintTable, findings: Finding[]): ValidationStatistics {
  const decoded = images.flatMap((r) => (r.fingerprint === undefined ? [] : [r.fingerprint]));
  const widths = decoded.map((row) => fingerprints.width(row)).sort((a, b) => a - b);
  const heights = decoded.map((row) => fingerprints.height(row)).sort((a, b) => a - b);
  const brightness = decoded.map((row) => fingerprints.meanBrightness(row)).sort((a, b) => a - b);
  const splits: Record<string, number> = {};
  const classes: Record<string, number> = {};
  const bySplitAndClass: Record<string, Record<string, number>> = {};
  for (const r of images) {
    const s = r.split ?? '(none)';
    const c = r.label === null ? '(unlabelled)' : String(r.label);
    splits[s] = (splits[s] ?? 0) + 1;
    classes[c] = (classes[c] ?? 0) + 1;
    (bySplitAndClass[s] ??= {})[c] = (bySplitAndClass[s]![c] ?? 0) + 1;
  }
  const sortKeys = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    splits: sortKeys(splits),
    classes: sortKeys(classes),
    bySplitAndClass: sortKeys(Object.fromEntries(Object.entries(bySplitAndClass).map(([k, v]) => [k, sortKeys(v)]))),
    width: widths.length ? {min: widths[0]!, median: quantile(widths, 0.5), max: widths.at(-1)!} : null,
    height: heights.length ? {min: heights[0]!, median: quantile(heights, 0.5), max: heights.at(-1)!} : null,
    brightness: brightness.length ? {p5: quantile(brightness, 0.05), median: quantile(brightness, 0.5), p95: quantile(brightness, 0.95)} : null,
    unreadable: findings.filter((f) => f.check === 'unreadable').length,
    fullResolution: images.filter((r) => r.fullResolution).length,
  };
}

/**
 * The checks that compare images: odd size, exact and near duplicates, label conflicts, split leaks (duplicates and
 * videos), class balance and split proportions. `images` must be in reader order (ordinal); every step is O(n) or
 * O(n log n) plus the near-duplicate search (multi-index hashing, hash-index.ts).
 */
export async function crossImageChecks(images: ImageRecord[], fingerprints: FingerprintTable, options: Omit<ValidateOptions, 'concurrency' | 'maxSide'>, add: (f: Omit<Finding, 'severity'>) => void): Promise<PairSearchStats> {
  const t = options.thresholds;
  const decoded = images.filter((r) => r.fingerprint !== undefined);
  const fp = (r: ImageRecord): number => r.fingerprint!;
  // odd-size: sqrt(w*h) outside Q1 - k*IQR .. Q3 + k*IQR over the dataset.
  if (decoded.length >= 4) {
    const size = (r: ImageRecord): number => Math.sqrt(fingerprints.width(fp(r)) * fingerprints.height(fp(r)));
    const sizes = decoded.map(size).sort((a, b) => a - b);
    const q1 = quantile(sizes, 0.25);
    const q3 = quantile(sizes, 0.75);
    const iqr = q3 - q1;
    const lo = q1 - t['odd-size'] * iqr;
    const hi = q3 + t['odd-size'] * iqr;
    for (const r of decoded) {
      const s = size(r);
      if (s < lo || s > hi) add({check: 'odd-size', path: r.path, message: `size ${fingerprints.width(fp(r))}x${fingerprints.height(fp(r))} is far from the dataset's (sqrt(w*h) ${s.toFixed(0)} outside ${lo.toFixed(0)}..${hi.toFixed(0)})`, value: s, threshold: [lo, hi]});
    }
  }
  // A pair of copies: different labels make it a label conflict (the same picture cannot be both; or the match is
  // false), the same label in different splits a leak.
  const pair = (a: ImageRecord, b: ImageRecord, how: string): void => {
    if (a.label !== null && b.label !== null && a.label !== b.label) {
      add({check: 'label-conflict', path: a.path, related: [b.path], message: `${how} of ${b.path} with a different label (${a.label} vs ${b.label}${a.split !== b.split && a.split && b.split ? `, ${a.split} vs ${b.split}` : ''}): one label is wrong, or the images differ in a detail the match missed - compare them in --report`});
    } else if (a.split && b.split && a.split !== b.split) {
      add({check: 'split-leak', path: a.path, related: [b.path], message: `${how} of ${b.path} across splits (${a.split} vs ${b.split})`});
    }
  };
  // Exact duplicates: candidates share the original shape and the pixels at the analysis resolution (hash map);
  // each candidate group is then confirmed by comparing full-resolution pixels (rare, so cheap overall).
  // Groups: sort by key (no string per image), then runs of equal keys.
  const byKey = decoded.slice().sort((a, b) => fingerprints.comparePixelKey(fp(a), fp(b)));
  const groups: ImageRecord[][] = [];
  for (let i = 0; i < byKey.length; ) {
    let j = i + 1;
    while (j < byKey.length && fingerprints.samePixelKey(fp(byKey[i]!), fp(byKey[j]!))) j++;
    // In reader order within the group (the first is the one the others duplicate).
    if (j - i >= 2) groups.push(byKey.slice(i, j).sort((a, b) => a.ordinal - b.ordinal));
    i = j;
  }
  for (const [g, group] of groups.entries()) {
    // Rows whose bytes were not kept (and files no longer where a shard saw them) are trusted on the key and shape.
    if (group.some((r) => !r.source || (typeof r.source === 'string' && !existsSync(r.source)))) continue;
    const full = await Promise.all(group.map((r) => decodeImage(r.source!, {strict: false}).then((d) => d.data).catch(() => undefined)));
    const confirmed = group.filter((_, i) => full[i] && full[0] && full[i]!.equals(full[0]));
    groups[g] = confirmed.length >= 2 ? confirmed : [group[0]!];
  }
  const exact = new Set<ImageRecord>();
  for (const group of groups) {
    if (group.length < 2) continue;
    const [first, ...rest] = group;
    exact.add(first!);
    for (const r of rest) {
      exact.add(r);
      add({check: 'exact-duplicate', path: r.path, related: [first!.path], message: `same pixels as ${first!.path}`});
      pair(r, first!, 'exact duplicate');
    }
  }
  // Near duplicates: pHash within the Hamming radius (multi-index search), confirmed cell by cell on the grey
  // thumbnails; pairs already reported as exact duplicates are skipped.
  const words = fingerprints.phashWords(decoded.map(fp));
  const search = pairsWithin(words, options.hamming, (i, j, distance) => {
    const a = decoded[i]!;
    const b = decoded[j]!;
    if (fingerprints.samePixelKey(fp(a), fp(b)) && exact.has(a) && exact.has(b)) return;
    const difference = signatureMaxDifference(fingerprints.signature(fp(a)), fingerprints.signature(fp(b)));
    if (difference > NEAR_DUPLICATE_MAX_CELL_DIFFERENCE) return;
    add({check: 'near-duplicate', path: b.path, related: [a.path], message: `near duplicate of ${a.path} (perceptual-hash distance ${distance} <= ${options.hamming}, thumbnails within ${difference.toFixed(2)} <= ${NEAR_DUPLICATE_MAX_CELL_DIFFERENCE} std in every cell)`, value: distance, threshold: options.hamming});
    pair(b, a, 'near duplicate');
  }, {onProgress: options.onSearch});
  // NATIX rows from the same video in different splits.
  const videoSplit = new Map<string, ImageRecord>();
  for (const r of images) {
    if (r.video === undefined || !r.split) continue;
    const first = videoSplit.get(r.video);
    if (!first) videoSplit.set(r.video, r);
    else if (first.split !== r.split) add({check: 'split-leak', path: r.path, related: [first.path], message: `same video (vid_id ${r.video}) as ${first.path} in another split (${r.split} vs ${first.split}): split by video`});
  }
  // Class balance and split proportions.
  const counts = new Map<number, number>();
  let labelled = 0;
  for (const r of images) {
    if (r.label === null) continue;
    labelled++;
    counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  }
  if (counts.size >= 2) {
    const values = [...counts.values()];
    const major = Math.max(...values);
    const share = major / labelled;
    const minor = Math.min(...values);
    if (share > t['class-imbalance']) add({check: 'class-imbalance', path: '.', message: `majority class holds ${(share * 100).toFixed(1)}% of labelled images (> ${t['class-imbalance'] * 100}%); ratio ${(major / minor).toFixed(2)}:1. Validators draw labels 50/50: weight or resample classes when training.`, value: share, threshold: t['class-imbalance']});
  } else if (counts.size === 1 && labelled > 0) {
    const only = [...counts.keys()][0]!;
    add({check: 'single-class', path: '.', message: `only one class is present: all ${labelled} labelled images are ${only === 1 ? 'roadwork (1)' : only === 0 ? 'none (0)' : `class ${only}`}. A model cannot learn to tell the classes apart from it, and MCC on it is 0 whatever the model answers`, value: only});
  }
  const perSplit = new Map<string, number>();
  for (const r of images) if (r.split) perSplit.set(r.split, (perSplit.get(r.split) ?? 0) + 1);
  if (perSplit.size > 0) {
    const total = images.length;
    const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
    if (options.expectedSplits) {
      for (const [split, expected] of Object.entries(options.expectedSplits)) {
        const n = perSplit.get(split) ?? 0;
        if (expected > 0 && n === 0) add({check: 'split-ratio', path: '.', message: `split "${split}" is empty (expected about ${pct(expected)})`, value: 0, threshold: expected});
        else if (Math.abs(n / total - expected) > t['split-ratio']) add({check: 'split-ratio', path: '.', message: `split "${split}" holds ${((n / total) * 100).toFixed(1)}% of images, expected about ${pct(expected)} (+- ${pct(t['split-ratio'])}, expected-splits in the config)`, value: n / total, threshold: expected});
      }
    } else {
      for (const [split, [lo, hi]] of Object.entries(DEFAULT_SPLIT_RANGES)) {
        const n = perSplit.get(split);
        if (n === undefined || (n / total >= lo && n / total <= hi)) continue;
        add({check: 'split-ratio', path: '.', message: `split "${split}" holds ${((n / total) * 100).toFixed(1)}% of images, outside the usual ${pct(lo)}-${pct(hi)} (declare expected-splits in a config file if this is on purpose)`, value: n / total, threshold: [lo, hi]});
      }
    }
  }
  return search;
}

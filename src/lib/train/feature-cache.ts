/**
 * The feature cache of a head-training run: the frozen backbone runs ONCE per (model, preprocessing, image
 * content, view) and its pooled features are kept in shards under `<run>/features/<model key>/`. A shard is a fixed
 * chunk of the item list, named by the hash of its items, written atomically with a SHA-256 of its floats in its
 * header; a killed extraction resumes at the first missing shard and recomputes it with the very same batches (so
 * the result is bit-identical), and a shard that fails its checksum is recomputed, never used.
 *
 * Images go through the one model-input path (`preprocessForModel`, as test-inference), decoding and preprocessing
 * of the next batches overlapping the backbone's run of this one.
 */
import {createHash} from 'node:crypto';
import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import type {Sample} from '../data/sample.js';
import {decodeImage, type DecodedImage} from '../image/decode.js';
import {decodeOptionsFor, preprocessForModel, preprocessingKey, type InputTensor, type Preprocessing} from '../image/preprocess.js';
import {writeFileAtomic} from '../util/fs.js';
import {SeededRandom} from '../util/random.js';
import type {Backbone} from './backbone.js';
import {readUserFile} from '../util/user-files.js';

const MAGIC = 'NTXFEAT1';

/** How the training views are made: view 0 is always the plain image. */
export interface ViewSpec {
  /** Views per training image (1 = the plain image only). */
  views: number;
  /** The subnet's challenge pipeline (levels 0-3, 224 px JPEG q75) instead of flip + colour jitter. */
  validator: boolean;
  seed: number;
}

export interface CacheItem {
  /** Content hash (sha256 hex) of the encoded image. */
  hash: string;
  /** 0 = plain, k >= 1 = k-th augmented view. */
  view: number;
  /** Where the image is read from (bytes or file). */
  sample: Pick<Sample, 'absPath' | 'bytes' | 'path'>;
}

export interface ExtractionStats {
  items: number;
  /** Items taken from valid shards. */
  cached: number;
  computed: number;
  shardsWritten: number;
  /** Shards that failed their checksum (recomputed). */
  shardsRejected: number;
  wallMs: number;
  /** Time in backbone runs (session.run), summed. */
  inferenceMs: number;
  /** Reading + decoding, and resizing + tensor conversion, summed over the parallel workers. */
  decodeMs: number;
  preprocessMs: number;
  interrupted: boolean;
}

export interface ExtractOptions {
  cacheDir: string;
  batchSize: number;
  /** Items per shard (a multiple of batchSize is best). */
  shardSize: number;
  viewSpec: ViewSpec;
  warn(message: string): void;
  onProgress?(done: number, total: number): void;
  /** Polled after every batch: stop (complete shards are kept). */
  shouldStop?(): boolean;
}

/** The cache key of a backbone: its file, the feature value, pooling and preprocessing. */
export function modelKey(backbone: Backbone['info']): string {
  return createHash('sha256')
    .update(JSON.stringify(['natix-features/1', backbone.sha256, backbone.feature.name, backbone.pool, preprocessingKey(backbone.preprocessing)]))
    .digest('hex');
}

export function itemKey(item: Pick<CacheItem, 'hash' | 'view'>, spec: ViewSpec): string {
  return item.view === 0 ? `${item.hash}:plain` : `${item.hash}:${spec.validator ? 'validator' : 'basic'}-${spec.seed}-${item.view}`;
}

/** SHA-256 of a sample's encoded bytes. */
export async function contentHash(sample: Pick<Sample, 'absPath' | 'bytes'>): Promise<string> {
  const bytes = sample.bytes ?? (await readUserFile(sample.absPath!)); // regular files only: a FIFO image is refused, not waited on
  return createHash('sha256').update(bytes).digest('hex');
}

function flipAndJitter(image: DecodedImage, rng: SeededRandom): DecodedImage {
  const flip = rng.bool(0.5);
  const gain = 1 + rng.uniform(-0.2, 0.2);
  const bias = rng.uniform(-20, 20);
  const {width, height} = image;
  const out = Buffer.allocUnsafe(image.data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + (flip ? width - 1 - x : x)) * 3;
      const d = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const v = Math.round(image.data[s + c]! * gain + bias);
        out[d + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return {...image, data: out};
}

/** The image of a view, decoded as the model's preprocessing needs it: view 0 plain; others seeded by (seed, content, view). */
async function viewImage(item: CacheItem, spec: ViewSpec, p: Preprocessing): Promise<DecodedImage> {
  const input = item.sample.bytes ?? item.sample.absPath!;
  if (item.view === 0) return decodeImage(input, decodeOptionsFor([p]));
  const rng = new SeededRandom(`${spec.seed}:view:${item.hash}:${item.view}`);
  if (spec.validator) {
    const {applyChallengeAugmentation, encodeChallengeJpeg} = await import('../validator/augment.js');
    const source = await decodeImage(input, {minSide: 256});
    const {rgb} = await applyChallengeAugmentation(source, rng.int(4) as 0 | 1 | 2 | 3, rng);
    return decodeImage(await encodeChallengeJpeg(rgb));
  }
  return flipAndJitter(await decodeImage(input, decodeOptionsFor([p])), rng);
}

/** A view through the one model-input path (decode, then `preprocessForModel`): what fine-tuning feeds the graph. */
export async function viewInput(item: CacheItem, spec: ViewSpec, p: Preprocessing): Promise<InputTensor> {
  return preprocessForModel(await viewImage(item, spec, p), p);
}

interface ShardHeader {
  format: string;
  model: string;
  dim: number;
  items: string[];
  sha256: string;
}

export function shardName(model: string, keys: string[]): string {
  return `${createHash('sha256').update(model).update('\n').update(keys.join('\n')).digest('hex').slice(0, 24)}.f32`;
}

export function encodeShard(header: Omit<ShardHeader, 'sha256' | 'format'>, rows: Float32Array): Uint8Array {
  const floats = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
  const json = Buffer.from(JSON.stringify({format: 'natix-features/1', ...header, sha256: createHash('sha256').update(floats).digest('hex')}));
  const headerLength = Math.ceil((json.length + 12) / 4) * 4 - 12;
  const out = new Uint8Array(12 + headerLength + floats.length);
  out.set(Buffer.from(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerLength, true);
  out.fill(0x20, 12, 12 + headerLength);
  out.set(json, 12);
  out.set(floats, 12 + headerLength);
  return out;
}

/** A shard's rows when it is complete, matches the expected items and its checksum verifies; else why not. */
export function decodeShard(bytes: Uint8Array, model: string, keys: string[], dim: number): Float32Array | string {
  if (bytes.length < 12 || Buffer.from(bytes.subarray(0, 8)).toString() !== MAGIC) return 'not a feature shard';
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  let header: ShardHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + headerLength)).toString()) as ShardHeader;
  } catch {
    return 'unreadable header';
  }
  if (header.model !== model || header.dim !== dim || header.items.length !== keys.length || header.items.some((k, i) => k !== keys[i])) return 'written for other items or another model';
  const floats = bytes.subarray(12 + headerLength);
  if (floats.length !== keys.length * dim * 4) return `truncated (${floats.length} of ${keys.length * dim * 4} bytes)`;
  if (createHash('sha256').update(floats).digest('hex') !== header.sha256) return 'checksum mismatch';
  // A copy into a fresh, aligned buffer (Buffer#slice would be a view of the whole file).
  return new Float32Array(Uint8Array.prototype.slice.call(floats).buffer);
}

/**
 * Features of every item, in order (items.length x dim floats): from valid shards, else computed and written.
 * Returns undefined rows only when stopped (`stats.interrupted`).
 */
export async function extractFeatures(backbone: Backbone, items: CacheItem[], options: ExtractOptions): Promise<{features: Float32Array; stats: ExtractionStats}> {
  const started = performance.now();
  const {dim, preprocessing: p} = backbone.info;
  const model = modelKey(backbone.info);
  const dir = path.join(options.cacheDir, model.slice(0, 16));
  await mkdir(dir, {recursive: true});
  const keys = items.map((i) => itemKey(i, options.viewSpec));
  const features = new Float32Array(items.length * dim);
  const stats: ExtractionStats = {items: items.length, cached: 0, computed: 0, shardsWritten: 0, shardsRejected: 0, wallMs: 0, inferenceMs: 0, decodeMs: 0, preprocessMs: 0, interrupted: false};
  const batch = backbone.info.canBatch ? options.batchSize : 1;
  const shardSize = Math.max(batch, Math.ceil(options.shardSize / batch) * batch);
  // Which shards are missing.
  const missing: Array<{start: number; end: number; file: string}> = [];
  for (let start = 0; start < items.length; start += shardSize) {
    const end = Math.min(items.length, start + shardSize);
    const file = path.join(dir, shardName(model, keys.slice(start, end)));
    const bytes = await readUserFile(file).catch(() => undefined);
    if (bytes) {
      const rows = decodeShard(bytes, model, keys.slice(start, end), dim);
      if (typeof rows !== 'string') {
        features.set(rows, start * dim);
        stats.cached += end - start;
        continue;
      }
      stats.shardsRejected++;
      options.warn(`feature shard ${path.basename(file)} rejected (${rows}): recomputing it`);
    }
    missing.push({start, end, file});
  }
  let done = stats.cached;
  options.onProgress?.(done, items.length);
  // Batches never span shards, so a recomputed shard sees exactly the batches of the first run.
  const batches = missing.flatMap((shard) => Array.from({length: Math.ceil((shard.end - shard.start) / batch)}, (_, b) => ({shard, start: shard.start + b * batch, end: Math.min(shard.end, shard.start + (b + 1) * batch)})));
  const perImage = 3 * p.width * p.height;
  const prepare = async (b: (typeof batches)[number]): Promise<Float32Array | Uint8Array> => {
    const n = b.end - b.start;
    const packed = p.dtype === 'uint8' ? new Uint8Array(n * perImage) : new Float32Array(n * perImage);
    await Promise.all(
      items.slice(b.start, b.end).map(async (item, i) => {
        const t0 = performance.now();
        const image = await viewImage(item, options.viewSpec, p);
        const t1 = performance.now();
        const tensor = await preprocessForModel(image, p);
        stats.decodeMs += t1 - t0;
        stats.preprocessMs += performance.now() - t1;
        packed.set(tensor.data, i * perImage);
      }),
    );
    return packed;
  };
  // Two batches prepared ahead of the one running.
  const ahead: Array<Promise<Float32Array | Uint8Array>> = batches.slice(0, 2).map(prepare);
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k]!;
    const input = await ahead.shift()!;
    if (k + 2 < batches.length) ahead.push(prepare(batches[k + 2]!));
    const t0 = performance.now();
    const out = await backbone.run(input, b.end - b.start);
    stats.inferenceMs += performance.now() - t0;
    features.set(out.subarray(0, (b.end - b.start) * dim), b.start * dim);
    stats.computed += b.end - b.start;
    done += b.end - b.start;
    options.onProgress?.(done, items.length);
    if (b.end === b.shard.end) {
      await writeFileAtomic(b.shard.file, encodeShard({model, dim, items: keys.slice(b.shard.start, b.shard.end)}, features.slice(b.shard.start * dim, b.shard.end * dim)));
      stats.shardsWritten++;
    }
    if (options.shouldStop?.() && k + 1 < batches.length) {
      stats.interrupted = true;
      await Promise.allSettled(ahead);
      break;
    }
  }
  stats.wallMs = performance.now() - started;
  return {features, stats};
}

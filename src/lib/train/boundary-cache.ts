/**
 * The boundary cache of a fine-tuning run: the frozen prefix's outputs (the values the trainable tail starts from)
 * per training image and view, so that epochs after the first neither decode the image nor run the prefix again.
 * The prefix is frozen and its preprocessing and views are deterministic, so a cached value is exactly the value it
 * replaces and the run's numbers do not depend on the cache.
 *
 * Files live under `<run>/boundary/<key>/`, one per image and view, in the feature cache's shard format (a header
 * naming the cache key and the item, a SHA-256 of the floats; written atomically). The key covers the backbone file,
 * the cut, the boundary values' names and shapes, the preprocessing and the views, so anything that would change a
 * value selects another folder. A file that fails its checks is recomputed (and rewritten), never used.
 */
import {createHash} from 'node:crypto';
import path from 'node:path';
import {batchDims, preprocessingKey, type Preprocessing} from '../image/preprocess.js';
import {writeFileAtomic} from '../util/fs.js';
import {readUserFile, UserFileError} from '../util/user-files.js';
import type {TrainableGraph} from '../onnx-exec/trainable-graph.js';
import {decodeShard, encodeShard, itemKey, shardName, viewInput, type CacheItem, type ViewSpec} from './feature-cache.js';
import type {BoundaryArray, ModelInput} from './tuned-model.js';

/** The boundary values of one image: names and per-image dims, in the cut's order. */
export type BoundaryLayout = Array<Pick<BoundaryArray, 'name' | 'dims'>>;

export interface BoundaryCacheStats {
  /** Items read from valid files. */
  hits: number;
  /** Items computed (and written). */
  misses: number;
  /** Files that failed their checks (recomputed). */
  rejected: number;
}

export class BoundaryCache {
  readonly stats: BoundaryCacheStats = {hits: 0, misses: 0, rejected: 0};
  readonly dir: string;
  private readonly key: string;
  /** Floats per image: the sum of the layout's sizes. */
  readonly floatsPerItem: number;

  constructor(
    root: string,
    identity: {backboneSha256: string; from: string; preprocessing: Preprocessing; views: ViewSpec},
    readonly layout: BoundaryLayout,
    private readonly warn: (message: string) => void,
  ) {
    this.key = createHash('sha256')
      .update(JSON.stringify(['natix-boundary/1', identity.backboneSha256, identity.from, layout, preprocessingKey(identity.preprocessing), identity.views]))
      .digest('hex');
    this.dir = path.join(root, this.key.slice(0, 24));
    this.floatsPerItem = layout.reduce((s, v) => s + v.dims.reduce((a, b) => a * b, 1), 0);
  }

  /** Bytes on disk for `items` images and views (floats; the headers are small). */
  bytesFor(items: number): number {
    return items * this.floatsPerItem * 4;
  }

  private file(item: string): string {
    return path.join(this.dir, shardName(this.key, [item]));
  }

  /** One image's values (concatenated in layout order), or undefined when not cached or not valid. */
  async get(item: string): Promise<Float32Array | undefined> {
    // Regular files only (a FIFO or a folder in its place is never opened for reading); anything but a missing file
    // is rejected like a damaged one, and `put` renames the recomputed file over it.
    const bytes = await readUserFile(this.file(item)).catch((error: unknown) => {
      if (error instanceof UserFileError) return error.reason === 'missing' ? undefined : error.what;
      throw error;
    });
    if (!bytes) return undefined;
    const values = typeof bytes === 'string' ? bytes : decodeShard(bytes, this.key, [item], this.floatsPerItem);
    if (typeof values === 'string') {
      this.stats.rejected++;
      this.warn(`Boundary cache: ${path.basename(this.file(item))} ${values}; recomputing it`);
      return undefined;
    }
    this.stats.hits++;
    return values;
  }

  async put(item: string, values: Float32Array): Promise<void> {
    this.stats.misses++;
    await writeFileAtomic(this.file(item), encodeShard({model: this.key, dim: this.floatsPerItem, items: [item]}, values));
  }
}

/** Packs images' cached values (each concatenated in layout order) into one boundary input. */
export function packBoundary(layout: BoundaryLayout, perImage: Float32Array[]): BoundaryArray[] {
  let offset = 0;
  return layout.map(({name, dims}) => {
    const size = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(perImage.length * size);
    perImage.forEach((values, i) => data.set(values.subarray(offset, offset + size), i * size));
    offset += size;
    return {name, dims, data};
  });
}

/** One image's boundary arrays (batch of one) concatenated in layout order, as the cache stores them. */
export function concatBoundary(arrays: BoundaryArray[]): Float32Array {
  const out = new Float32Array(arrays.reduce((s, a) => s + a.data.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a.data, offset);
    offset += a.data.length;
  }
  return out;
}

/** `boundary-cache: auto` turns the cache on up to this many bytes of cached values. */
export const AUTO_CACHE_BYTES = 4 * 1024 ** 3;

/**
 * The cache for a run, when `setting` and the graph allow one: the layout comes from one run of the frozen prefix
 * on a blank image. `note` says what was decided and why (for the run log).
 */
export async function openBoundaryCache(graph: TrainableGraph, setting: boolean | 'auto', options: {root: string; backboneSha256: string; preprocessing: Preprocessing; views: ViewSpec; items: number; warn: (message: string) => void}): Promise<{cache?: BoundaryCache; note: string}> {
  if (setting === false) return {note: 'Boundary cache: off (boundary-cache: false)'};
  const p = options.preprocessing;
  const probe = await graph.boundaryArrays(new Float32Array(3 * p.width * p.height), batchDims(p, 1));
  if (!probe) {
    const why = graph.prefixDevice === 'none' ? 'nothing is frozen' : graph.prefixDevice === 'tfjs' ? 'the frozen prefix runs on TF.js' : 'a boundary value is not a per-image float tensor';
    return {note: `Boundary cache: not used (${why})`};
  }
  const layout = probe.map((a) => ({name: a.name, dims: a.dims.slice(1)}));
  const cache = new BoundaryCache(options.root, {backboneSha256: options.backboneSha256, from: graph.cut.from, preprocessing: p, views: options.views}, layout, options.warn);
  const bytes = cache.bytesFor(options.items);
  const size = `${(bytes / 1024 ** 2).toFixed(0)} MB for ${options.items} image views`;
  if (setting === 'auto' && bytes > AUTO_CACHE_BYTES) return {note: `Boundary cache: off (${size} would exceed auto's ${AUTO_CACHE_BYTES / 1024 ** 3} GB; boundary-cache: true turns it on)`};
  return {cache, note: `Boundary cache: on (${size}, ${path.relative(options.root, cache.dir) || '.'} under ${options.root}); epochs after the first skip decoding and the frozen prefix`};
}

/**
 * The boundary input of a batch: each image and view from the cache, else decoded through the one model-input path
 * (`viewInput`), run through the frozen prefix on its own, and stored.
 */
export async function cachedBoundaryInput(cache: BoundaryCache, graph: TrainableGraph, items: CacheItem[], views: ViewSpec, p: Preprocessing): Promise<ModelInput> {
  const dims = batchDims(p, 1);
  const perImage = await Promise.all(
    items.map(async (item) => {
      const key = itemKey(item, views);
      const cached = await cache.get(key);
      if (cached) return cached;
      const input = await viewInput(item, views, p);
      const arrays = await graph.boundaryArrays(input.data as Float32Array, dims);
      const values = concatBoundary(arrays!);
      await cache.put(key, values);
      return values;
    }),
  );
  return {boundary: packBoundary(cache.layout, perImage)};
}

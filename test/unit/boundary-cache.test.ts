/**
 * BoundaryCache (src/lib/train/boundary-cache.ts): values come back exactly; a file that is truncated, damaged or
 * written for another item is rejected (recomputed by the caller), and anything that changes a value changes the folder.
 * And what the cache relies on to leave a run's numbers unchanged: onnxruntime's prefix gives an image the same
 * bits alone (how the cache computes it) as in a batch (how a run without the cache does).
 */
import {execFileSync} from 'node:child_process';
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {describe, expect, it} from 'vitest';
import {DEFAULT_PREPROCESSING} from '../../src/lib/image/preprocess.js';
import {loadTfjs} from '../../src/lib/runtime/tfjs.js';
import {loadBackbone} from '../../src/lib/train/backbone.js';
import {BoundaryCache, concatBoundary, packBoundary} from '../../src/lib/train/boundary-cache.js';
import {FineTuner} from '../../src/lib/train/fine-tune.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {resnetGraph} from '../helpers/onnx-graphs.js';

const views = {views: 2, validator: false, seed: 1};
const layout = [{name: 'tokens', dims: [3, 4]}, {name: 'extra', dims: [2]}];

describe('boundary cache', () => {
  it('round-trips values, rejects damaged / truncated / foreign files, and keys the folder by what changes values', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'natix-boundary-'));
    const warnings: string[] = [];
    const identity = {backboneSha256: 'a'.repeat(64), from: '/blocks.0/Add_output_0', preprocessing: DEFAULT_PREPROCESSING, views};
    const cache = new BoundaryCache(root, identity, layout, (m) => warnings.push(m));
    expect(cache.floatsPerItem).toBe(14);
    const values = Float32Array.from({length: 14}, (_, i) => i / 7 - 1);
    expect(await cache.get('img:plain')).toBeUndefined();
    await cache.put('img:plain', values);
    await cache.put('other:plain', values.map((v) => v * 2));
    expect(Array.from((await cache.get('img:plain'))!)).toEqual(Array.from(values));
    expect(cache.stats).toEqual({hits: 1, misses: 2, rejected: 0});

    const files = await readdir(cache.dir);
    const contents = await Promise.all(files.map((f) => readFile(path.join(cache.dir, f))));
    const k = contents.findIndex((c) => c.includes('img:plain'));
    const mine = files[k]!;
    // Another item's file under this item's name.
    await writeFile(path.join(cache.dir, mine), contents[1 - k]!);
    expect(await cache.get('img:plain')).toBeUndefined();
    // Truncated, and damaged.
    await cache.put('img:plain', values);
    const file = path.join(cache.dir, mine);
    const whole = await readFile(file);
    await writeFile(file, whole.subarray(0, whole.length - 4));
    expect(await cache.get('img:plain')).toBeUndefined();
    whole[whole.length - 2]! ^= 1;
    await writeFile(file, whole);
    expect(await cache.get('img:plain')).toBeUndefined();
    expect(cache.stats.rejected).toBe(3);
    expect(warnings.join('\n')).toMatch(/written for other items[\s\S]*truncated[\s\S]*checksum mismatch/);
    // A FIFO in a file's place is neither opened for reading (no hang) nor fatal: rejected, then replaced by `put`.
    await rm(file);
    execFileSync('mkfifo', [file]);
    expect(await cache.get('img:plain')).toBeUndefined();
    expect(cache.stats.rejected).toBe(4);
    expect(warnings.at(-1)).toMatch(/not a regular file|FIFO/i);
    await cache.put('img:plain', values);
    expect(Array.from((await cache.get('img:plain'))!)).toEqual(Array.from(values));

    // Anything that changes a value selects another folder.
    const dirOf = (changes: object, l = layout): string => new BoundaryCache(root, {...identity, ...changes}, l, () => undefined).dir;
    const others = [dirOf({backboneSha256: 'b'.repeat(64)}), dirOf({from: '/blocks.1/Add_output_0'}), dirOf({views: {...views, seed: 2}}), dirOf({preprocessing: {...DEFAULT_PREPROCESSING, width: 99}}), dirOf({}, [{name: 'tokens', dims: [4, 3]}, {name: 'extra', dims: [2]}])];
    expect(new Set([cache.dir, ...others]).size).toBe(6);
  });

  it('packs images in layout order and back', () => {
    const one = Float32Array.from({length: 14}, (_, i) => i);
    const two = Float32Array.from({length: 14}, (_, i) => 100 + i);
    const packed = packBoundary(layout, [one, two]);
    expect(packed.map((p) => [p.name, p.dims, p.data.length])).toEqual([['tokens', [3, 4], 24], ['extra', [2], 4]]);
    expect(Array.from(packed[1]!.data)).toEqual([12, 13, 112, 113]);
    expect(Array.from(concatBoundary(packBoundary(layout, [two])))).toEqual(Array.from(two));
  });
});

describe('what the boundary cache relies on', () => {
  it('onnxruntime gives each image the same bits alone as in a batch (torch-exported ViT, a ResNet-shaped graph)', async () => {
    const {tf} = await loadTfjs('wasm');
    const vit = await loadBackbone(fileURLToPath(new URL('../fixtures/models/tiny-vit', import.meta.url)), {features: 'auto', pool: 'auto', device: 'cpu', threads: 0});
    const resnet = {info: {...vit.info, onnxFile: 'resnet', preprocessing: {...vit.info.preprocessing, width: 48, height: 48, dtype: 'float32' as const}}, featureGraph: resnetGraph({image: 48, widths: [8, 16], blocks: [2, 1], classes: 2})};
    for (const backbone of [vit, resnet]) {
      const size = backbone.info.preprocessing.width;
      const graph = await FineTuner.split(tf, backbone, {last: 1}, 'cpu', 0);
      const rng = new SeededRandom(3);
      const per = 3 * size * size;
      const x = Float32Array.from({length: 5 * per}, () => rng.normal());
      const batched = (await graph.boundaryArrays(x, [5, 3, size, size]))!;
      for (let i = 0; i < 5; i++) {
        const alone = (await graph.boundaryArrays(x.subarray(i * per, (i + 1) * per), [1, 3, size, size]))!;
        alone.forEach((a, k) => {
          const n = a.data.length;
          expect(Buffer.from(a.data.buffer, a.data.byteOffset, n * 4).equals(Buffer.from(batched[k]!.data.buffer, batched[k]!.data.byteOffset + i * n * 4, n * 4))).toBe(true);
        });
      }
      await graph.dispose();
    }
    await vit.close();
  });
});

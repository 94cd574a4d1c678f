/**
 * Training sees the pixels inference sees: loadSplits' model inputs come from preprocessForModel, so with the
 * default pillow resampler they equal Pillow's own resize of the full-resolution decode (fixture hash), and with
 * vips they equal what the cascade's vips path produces for the same file.
 */
import {createHash} from 'node:crypto';
import {copyFile, mkdir, mkdtemp, readFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {beforeAll, describe, expect, it} from 'vitest';
import {openDataset} from '../../src/lib/data/open.js';
import {preprocessForModel} from '../../src/lib/image/preprocess.js';
import {loadSplits, trainingPreprocessing} from '../../src/lib/train/data.js';
import {resolveTrainConfig} from '../../src/lib/train/trainer.js';

const FIXTURES = path.resolve('test/fixtures/pillow');
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'natix-train-pre-'));
  for (const [split, label, file] of [['train', 'roadwork', 'd-640x360.jpg'], ['train', 'none', 'b-101x67.jpg'], ['val', 'roadwork', 'd-640x360.jpg'], ['val', 'none', 'b-101x67.jpg']] as const) {
    await mkdir(path.join(root, split, label), {recursive: true});
    await copyFile(path.join(FIXTURES, file), path.join(root, split, label, file));
  }
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('training inputs go through preprocessForModel', () => {
  it('pillow (the default): identical to Pillow resize(224x224, BILINEAR) of the full decode', async () => {
    const manifest = JSON.parse(await readFile(path.join(FIXTURES, 'manifest.json'), 'utf8')) as {resamples: Array<{source: string; filter: string; width: number; height: number; sha256: string}>};
    const pillow = manifest.resamples.find((r) => r.source === 'd-640x360.jpg' && r.filter === 'bilinear' && r.width === 224 && r.height === 224)!;
    const data = await loadSplits(await openDataset(root, 'auto'), {size: 224, trainSplit: 'train', valSplit: 'val', splitRatios: [0.8, 0.2], seed: 1, sourceSide: 256});
    const k = data.train.ids.findIndex((id) => id.includes('d-640x360'));
    expect(sha256(data.train.images[k]!)).toBe(pillow.sha256);
    expect(sha256(data.val.images[data.val.ids.findIndex((id) => id.includes('d-640x360'))]!)).toBe(pillow.sha256);
    expect(data.train.sources?.[k]).toMatchObject({width: 455, height: 256});
  });

  it('vips: identical to the cascade\'s vips path for the same file', async () => {
    const data = await loadSplits(await openDataset(root, 'auto'), {size: 48, trainSplit: 'train', valSplit: 'val', splitRatios: [0.8, 0.2], seed: 1, sourceSide: 256, resampler: 'vips'});
    const k = data.train.ids.findIndex((id) => id.includes('d-640x360'));
    const expected = await preprocessForModel(path.join(root, 'train', 'roadwork', 'd-640x360.jpg'), trainingPreprocessing(48, 'vips'));
    expect(Buffer.from(data.train.images[k]!).equals(Buffer.from(expected.data))).toBe(true);
  });

  it('new runs record the pillow resampler (the export writes it as natix_resampler)', () => {
    expect(resolveTrainConfig({dataset: {path: 'x'}}, {}, '/').dataset.resampler).toBe('pillow');
    expect(resolveTrainConfig({dataset: {path: 'x', resampler: 'vips'}}, {}, '/').dataset.resampler).toBe('vips');
  });
});

import {mkdir, mkdtemp} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {redVsBlueLogitsModel, writeHfModelDir} from '../helpers/models.js';
import {runNatix} from '../helpers/cli.js';

let dir: string;
let model: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-ti-batch-'));
  model = await writeHfModelDir(path.join(dir, 'model'), redVsBlueLogitsModel(3));
  for (let i = 0; i < 6; i++) {
    const cls = i % 2 ? 'roadwork' : 'none';
    await mkdir(path.join(dir, 'data', cls), {recursive: true});
    await sharp({create: {width: 40, height: 30, channels: 3, background: {r: 30 * i, g: 90, b: 200 - 30 * i}}}).png().toFile(path.join(dir, 'data', cls, `${i}.png`));
  }
});

describe('natix test-inference --batch-size', () => {
  it('runs a model with a free batch dimension once per batch, with the same answers as one image at a time', async () => {
    const one = await runNatix(['test-inference', '--batch', path.join(dir, 'data'), '--model', model, '--no-log', '--json']);
    const four = await runNatix(['test-inference', '--batch', path.join(dir, 'data'), '--model', model, '--no-log', '--batch-size', '4', '--concurrency', '1', '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(four.code, four.stderr).toBe(0);
    const byPath = (r: typeof one): Map<string, number> => new Map(r.json.result.records.map((x: {path: string; probability: number}) => [x.path, x.probability]));
    const a = byPath(one);
    const b = byPath(four);
    expect(b.size).toBe(6);
    for (const [p, prob] of a) expect(b.get(p)).toBeCloseTo(prob, 6);
    const batches = four.json.result.records.map((x: {stages: Array<{models: Array<{batch?: number}>}>}) => x.stages[0]!.models[0]!.batch ?? 1);
    expect(batches.sort()).toEqual([2, 2, 4, 4, 4, 4]);
    expect(one.json.result.records.every((x: {stages: Array<{models: Array<{batch?: number}>}>}) => x.stages[0]!.models[0]!.batch === undefined)).toBe(true);
  });
});

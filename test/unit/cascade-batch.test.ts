/**
 * predictBatch on a mixed batch (an unreadable image, confident and uncertain images, a model failing for some
 * images): every record equals what predict() gives for that image alone.
 */
import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import {beforeAll, describe, expect, it} from 'vitest';
import {loadCascade, type CascadeResult} from '../../src/lib/cascade/index.js';
import {failsOnDarkModel, redVsBlueLogitsModel, writeModel} from '../helpers/models.js';

let dir: string;
const inputs: Array<{input: string | Uint8Array; meta: {id: string}}> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-cascade-batch-'));
  await writeModel(path.join(dir, 'rb.onnx'), redVsBlueLogitsModel(4)); // free batch dimension
  await writeModel(path.join(dir, 'flaky.onnx'), failsOnDarkModel());
  const colours: Array<[string, [number, number, number]]> = [
    ['red', [250, 20, 20]], // confident roadwork: stage 2 not reached
    ['blue', [20, 20, 250]], // confident none
    ['grey', [100, 100, 100]], // uncertain, dark-ish: stage 2 fails -> degraded
    ['pale', [240, 230, 235]], // uncertain, bright: stage 2 answers
  ];
  for (const [name, rgb] of colours) {
    const file = path.join(dir, `${name}.png`);
    await sharp({create: {width: 48, height: 36, channels: 3, background: {r: rgb[0], g: rgb[1], b: rgb[2]}}}).png().toFile(file);
    inputs.push({input: file, meta: {id: name}});
  }
  inputs.splice(2, 0, {input: Uint8Array.from([0xff, 0xd8, 0xff, 0x00, 1, 2, 3]), meta: {id: 'corrupt'}});
});

describe('predictBatch', () => {
  it('answers a mixed batch exactly as predict() answers each image alone', async () => {
    const file = path.join(dir, 'two.yaml');
    await writeFile(
      file,
      YAML.stringify({
        models: {rb: {path: 'rb.onnx', preprocess: {width: 32, height: 32}}, flaky: {path: 'flaky.onnx'}},
        stages: [
          {name: 'first', models: ['rb'], escalate: {when: 'inside', band: [0.2, 0.8]}},
          {name: 'second', models: ['flaky']},
        ],
      }),
    );
    const cascade = await loadCascade(file, {device: 'cpu', breaker: {failures: 100, cooldownMs: 1}});
    const batch = await cascade.predictBatch(inputs);
    expect(batch.map((r) => r.id)).toEqual(['red', 'blue', 'corrupt', 'grey', 'pale']);
    const byId: Record<string, CascadeResult> = Object.fromEntries(batch.map((r) => [r.id!, r] as const));
    expect(byId.corrupt).toMatchObject({probability: 0.5, roadwork: false, degraded: true, stages: []});
    expect(byId.corrupt!.error).toMatch(/^unreadable image/);
    expect(byId.red!.stages.map((s) => s.ran)).toEqual([true, false]);
    expect(byId.red!.stages[0]!.models[0]!.batch).toBe(4); // one session call for the 4 decoded images
    expect(byId.grey!.degraded).toBe(true);
    expect(byId.pale!.stages[1]!.models[0]!.status).toBe('ran');
    for (const item of inputs) {
      const alone = await cascade.predict(item.input, item.meta);
      const inBatch = byId[item.meta.id]!;
      expect(inBatch.probability).toBeCloseTo(alone.probability, 6);
      expect([inBatch.roadwork, inBatch.degraded, inBatch.error]).toEqual([alone.roadwork, alone.degraded, alone.error]);
      expect(inBatch.stages.map((s) => [s.name, s.ran, s.models.map((m) => m.status)])).toEqual(alone.stages.map((s) => [s.name, s.ran, s.models.map((m) => m.status)]));
    }
    await cascade.close();
  });
});

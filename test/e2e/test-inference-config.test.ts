/** test-inference with cascade files: validation errors name the file and the JSON path (exit 2); a mixed cascade runs. */
import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import {beforeAll, describe, expect, it} from 'vitest';
import {runNatix} from '../helpers/cli.js';
import {detectionModel, meanSigmoidModel, truncated, writeModel} from '../helpers/models.js';

let dir: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-ti-config-'));
  await writeModel(path.join(dir, 'mean.onnx'), meanSigmoidModel(6, -3));
  await writeModel(path.join(dir, 'det.onnx'), detectionModel([[10, 10, 4, 4, 0.9, 0.1], [11, 10, 4, 4, 0.1, 0.6]], 2));
  await writeModel(path.join(dir, 'broken.onnx'), truncated(meanSigmoidModel(1, 0)));
  image = path.join(dir, 'grey.png');
  await sharp({create: {width: 40, height: 30, channels: 3, background: {r: 128, g: 128, b: 128}}}).png().toFile(image);
});

describe('natix test-inference with cascade files', () => {
  it('a cascade file with a bad value: exit 2, the file and the JSON path in the message', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, YAML.stringify({models: {m: {path: 'mean.onnx'}}, stages: [{models: ['m'], combine: 'median'}]}));
    const r = await runNatix(['test-inference', '--image', image, '--model', file, '--json']);
    expect(r.code).toBe(2);
    const message = JSON.stringify(r.json ?? r.stderr);
    expect(message).toContain('bad.yaml');
    expect(message).toContain('/stages/0/combine');
  });

  it('a truncated model named in a cascade file: exit 2 naming the model', async () => {
    const file = path.join(dir, 'broken.yaml');
    await writeFile(file, YAML.stringify({models: {b: {path: 'broken.onnx'}}, stages: [{models: ['b']}]}));
    const r = await runNatix(['test-inference', '--image', image, '--model', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Cannot load model "b"/);
  });

  it('a two-model stage (sigmoid + detections, weighted mean): the probability is computed from both', async () => {
    const file = path.join(dir, 'mixed.json');
    await writeFile(
      file,
      JSON.stringify({
        models: {mean: {path: 'mean.onnx'}, det: {path: 'det.onnx', output: {decode: 'detections', classes: [1], confidence: 0.25}}},
        stages: [{name: 'both', models: [{model: 'mean', weight: 3}, {model: 'det', weight: 1}], combine: 'weighted-mean'}],
      }),
    );
    const r = await runNatix(['test-inference', '--image', image, '--model', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = (r.json as {result: {probability: number; stages: Array<{models: Array<{name: string; probability: number}>}>}}).result;
    const mean = 1 / (1 + Math.exp(-(6 * (128 / 255) - 3)));
    // det: box 0 is class 0 (filtered out), box 1 is class 1 with 0.6.
    expect(result.stages[0]!.models.map((m) => m.name)).toEqual(['mean', 'det']);
    expect(result.stages[0]!.models[1]!.probability).toBeCloseTo(0.6, 5);
    expect(result.probability).toBeCloseTo((3 * mean + 0.6) / 4, 5);
  });
});

import {mkdtemp, readFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {loadCascade} from '../../src/lib/cascade/index.js';
import {sigmoid} from '../../src/lib/cascade/decode-output.js';
import {meanSigmoidModel, slowModel, writeHfModelDir, redVsBlueLogitsModel, writeModel} from '../helpers/models.js';
import {runNatix} from '../helpers/cli.js';

let dir: string;
let hf: string;

async function solid(file: string, rgb: [number, number, number]): Promise<string> {
  await sharp({create: {width: 48, height: 32, channels: 3, background: {r: rgb[0], g: rgb[1], b: rgb[2]}}}).png().toFile(file);
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-ti-'));
  hf = await writeHfModelDir(path.join(dir, 'vit-like'), redVsBlueLogitsModel(3));
  await writeModel(path.join(dir, 'slow.onnx'), slowModel(24));
  await writeModel(path.join(dir, 'mean.onnx'), meanSigmoidModel(6, -3));
  const {mkdir} = await import('node:fs/promises');
  for (const [split, cls, rgb] of [
    ['test', 'roadwork', [220, 60, 40]],
    ['test', 'roadwork', [200, 90, 60]],
    ['test', 'none', [40, 60, 220]],
    ['test', 'none', [200, 100, 120]], // reddish negative: the model gets it wrong
  ] as const) {
    await mkdir(path.join(dir, 'data', split, cls), {recursive: true});
    await solid(path.join(dir, 'data', split, cls, `${rgb.join('-')}.png`), [...rgb] as [number, number, number]);
  }
});

describe('natix test-inference', () => {
  it('--image --json: decision, probability and stage trace of a Hugging Face model directory', async () => {
    const image = await solid(path.join(dir, 'red.png'), [220, 60, 40]);
    const r = await runNatix(['test-inference', '--image', image, '--model', hf, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = r.json.result;
    const norm = (v: number): number => (v / 255 - 0.5) / 0.5;
    expect(result.probability).toBeCloseTo(sigmoid(3 * (norm(220) - norm(40))), 5);
    expect(result).toMatchObject({roadwork: true, degraded: false, path: image});
    expect(result.stages[0].models[0]).toMatchObject({name: 'vit-like', status: 'ran'});
    expect(result.totalMs).toBeGreaterThan(0);
  });

  it('--image human output has the stage table; --latency-target FAIL exits 1', async () => {
    const image = await solid(path.join(dir, 'grey.png'), [128, 128, 128]);
    const ok = await runNatix(['test-inference', '--image', image, '--model', path.join(dir, 'mean.onnx')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/ROADWORK\s+probability 0\.5029/); // sigmoid(6 * 128/255 - 3)
    expect(ok.stdout).toMatch(/stage\s+models\s+ms\s+probability\s+status/);
    expect(ok.stdout).toMatch(/total [\d.]+ ms end to end/);
    const slow = await runNatix(['test-inference', '--image', image, '--model', path.join(dir, 'slow.onnx'), '--latency-target', '1', '--json']);
    expect(slow.code).toBe(1);
    expect(slow.json.status).toBe(1);
    expect(slow.json.result.latencyTarget).toEqual({ms: 1, verdict: 'FAIL'});
  });

  it('--batch: records, summary with accuracy and MCC, output file and JSON-lines logs', async () => {
    const out = path.join(dir, 'results.json');
    const logs = path.join(dir, 'logs');
    const r = await runNatix(['test-inference', '--batch', path.join(dir, 'data'), '--model', hf, '--output', out, '--log-dir', logs, '--concurrency', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const {summary, records} = r.json.result;
    expect(summary.count).toBe(4);
    expect(summary.metrics.confusion).toEqual({tp: 2, fp: 1, tn: 1, fn: 0});
    // sklearn MCC for tp=2 fp=1 tn=1 fn=0: (2*1 - 1*0) / sqrt(3*2*2*1)
    expect(summary.metrics.mcc).toBeCloseTo(2 / Math.sqrt(12), 12);
    expect(summary.latency.n).toBe(4);
    expect(records).toHaveLength(4);
    const saved = JSON.parse(await readFile(out, 'utf8'));
    expect(saved.records.map((x: {path: string}) => x.path).sort()).toEqual(records.map((x: {path: string}) => x.path).sort());
    const lines = (await readFile(path.join(logs, 'inference.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toHaveProperty('probability');
    expect(lines[0]).toHaveProperty('totalMs');
    const perf = (await readFile(path.join(logs, 'performance.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(perf[0]).toMatchObject({event: 'batch-summary', count: 4});
  });

  it('--image and --batch are exclusive; a missing model is exit 2', async () => {
    const both = await runNatix(['test-inference', '--image', 'a.jpg', '--batch', 'b', '--json']);
    expect(both.code).toBe(2);
    const missing = await runNatix(['test-inference', '--image', path.join(dir, 'red.png'), '--model', path.join(dir, 'nope.onnx'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.json.code).toBe('MODEL_NOT_FOUND');
  });

  it('without --model and without a default cascade, says so clearly', async () => {
    await expect(loadCascade(undefined, {root: dir})).rejects.toMatchObject({code: 'NO_DEFAULT_CASCADE', exitCode: 2});
  });
});

/**
 * `natix bench --tune` end to end: per-stage exit tables, the frontier, a recommendation, the plot and the tuned
 * cascade file (its numbers are checked against brute force in test/unit/tune.test.ts).
 */
import {mkdir, mkdtemp, readFile, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import {beforeAll, describe, expect, it} from 'vitest';
import {runNatix} from '../helpers/cli.js';
import {meanSigmoidModel, redVsBlueLogitsModel, writeModel} from '../helpers/models.js';

let dir: string;
let data: string;
let cascade: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-tune-'));
  await writeModel(path.join(dir, 'models', 'bright.onnx'), meanSigmoidModel(8, -4, {size: 8}));
  await writeModel(path.join(dir, 'models', 'red.onnx'), redVsBlueLogitsModel(6, 8));
  cascade = path.join(dir, 'models', 'cascade.yaml');
  await writeFile(
    cascade,
    YAML.stringify({
      models: {bright: {path: 'bright.onnx'}, red: {path: 'red.onnx', output: {decode: 'softmax'}}},
      stages: [{name: 'bright', models: ['bright'], escalate: {when: 'inside', band: [0.3, 0.7]}}, {name: 'red', models: ['red']}],
    }),
  );
  data = path.join(dir, 'data');
  for (let i = 0; i < 24; i++) {
    const cls = i % 2 ? 'roadwork' : 'none';
    await mkdir(path.join(data, 'test', cls), {recursive: true});
    const rgb = {r: i % 2 ? 130 + i * 5 : 20 + i * 5, g: (i * 37) % 256, b: (i * 91) % 256};
    await sharp({create: {width: 16, height: 16, channels: 3, background: rgb}}).png().toFile(path.join(data, 'test', cls, `${i}.png`));
  }
});

describe('natix bench --tune', () => {
  it('prints the exit tables and the frontier, recommends bands, writes the plot and a loadable cascade file', async () => {
    const out = path.join(dir, 'models', 'tuned.yaml');
    const plot = path.join(dir, 'tune.svg');
    const r = await runNatix(['bench', '--model', cascade, '--dataset', data, '--tune', '--target-exit', '0.5', '--target-exit-accuracy', '0.9', '--write-cascade', out, '--plot', plot, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = r.json.result;
    expect(result.images).toBe(24);
    expect(result.stages.map((s: {name: string}) => s.name)).toEqual(['bright', 'red']);
    expect(result.stages[0].table).toHaveLength(50);
    expect(result.choices).toBe(50);
    expect(result.frontier.length).toBeGreaterThan(0);
    expect(result.current.bands[0]).toEqual({when: 'inside', band: [0.3, 0.7]});
    expect(result.recommended.rule).toMatch(/exit accuracy/);
    const t = result.recommended.thresholds[0];
    const written = YAML.parse(await readFile(out, 'utf8'));
    expect(written.stages[0].escalate).toEqual({when: 'inside', band: [Math.round((1 - t) * 100) / 100, t]});
    expect(written.models.bright.path).toBe('bright.onnx');
    expect((await stat(plot)).size).toBeGreaterThan(1000);
    // The tuned file runs.
    const again = await runNatix(['test-inference', '--model', out, '--image', path.join(data, 'test', 'roadwork', '1.png'), '--json']);
    expect(again.code, again.stderr).toBe(0);

    const budget = await runNatix(['bench', '--model', cascade, '--dataset', data, '--tune', '--latency-budget', '1000', '--json']);
    expect(budget.code, budget.stderr).toBe(0);
    expect(budget.json.result.recommended.rule).toMatch(/best MCC with a mean latency <= 1000 ms/);
    const bad = await runNatix(['bench', '--model', cascade, '--dataset', data, '--tune', '--target-exit', '1.5']);
    expect(bad.code).toBe(2);
  }, 300_000);
});

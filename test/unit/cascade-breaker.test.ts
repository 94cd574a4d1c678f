/**
 * Every circuit-breaker transition and every fallback, driven through a real cascade by a model that fails on
 * purpose (NaN output on dark images, see failsOnDarkModel) and a stepped breaker clock.
 */
import {mkdtemp, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import {beforeAll, describe, expect, it} from 'vitest';
import {loadCascade} from '../../src/lib/cascade/index.js';
import {failsOnDarkModel, meanSigmoidModel, writeModel} from '../helpers/models.js';

let dir: string;
let dark: string;
let bright: string;
const WHITE_P = 1 / (1 + Math.exp(-Math.sqrt(0.5))); // failsOnDarkModel on a white image

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-breaker-'));
  await writeModel(path.join(dir, 'flaky.onnx'), failsOnDarkModel());
  await writeModel(path.join(dir, 'steady.onnx'), meanSigmoidModel(2, -1)); // sigmoid(2m - 1)
  dark = path.join(dir, 'dark.png');
  bright = path.join(dir, 'bright.png');
  await sharp({create: {width: 40, height: 40, channels: 3, background: {r: 10, g: 10, b: 10}}}).png().toFile(dark);
  await sharp({create: {width: 40, height: 40, channels: 3, background: {r: 255, g: 255, b: 255}}}).png().toFile(bright);
});

async function cascadeFile(name: string, stages: unknown[]): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, YAML.stringify({models: {flaky: {path: 'flaky.onnx'}, steady: {path: 'steady.onnx'}}, stages}));
  return file;
}

describe('circuit breaker through the cascade (stepped clock)', () => {
  it('closed -> open after N failures -> half-open after the cool-down -> open again on failure -> closed on success', async () => {
    let clock = 0;
    const file = await cascadeFile('one.yaml', [{name: 'only', models: ['flaky']}]);
    const logDir = path.join(dir, 'logs');
    const cascade = await loadCascade(file, {device: 'cpu', breaker: {failures: 2, cooldownMs: 1000}, breakerClock: () => clock, logDir});
    const status = async (image: string): Promise<string> => (await cascade.predict(image, {path: path.basename(image)})).stages[0]!.models[0]!.status;

    expect(await status(bright)).toBe('ran');
    expect(cascade.breakerState('flaky')).toBe('closed');
    expect(await status(dark)).toBe('failed');
    expect(cascade.breakerState('flaky')).toBe('closed'); // 1 of 2
    const failed = await cascade.predict(dark);
    expect(failed.stages[0]!.models[0]!.error).toMatch(/not a finite probability/);
    expect(failed).toMatchObject({degraded: true, probability: 0.5, roadwork: false, error: 'no stage answered'});
    expect(cascade.breakerState('flaky')).toBe('open');
    // Open: not even tried, on any image.
    const skipped = await cascade.predict(bright);
    expect(skipped.stages[0]!.models[0]).toMatchObject({status: 'skipped', reason: 'circuit-open'});
    clock += 999;
    expect(cascade.breakerState('flaky')).toBe('open');
    clock += 1;
    expect(cascade.breakerState('flaky')).toBe('half-open');
    expect(await status(dark)).toBe('failed'); // the trial call fails
    expect(cascade.breakerState('flaky')).toBe('open');
    expect(await status(bright)).toBe('skipped');
    clock += 1000;
    expect(cascade.breakerState('flaky')).toBe('half-open');
    const recovered = await cascade.predict(bright);
    expect(recovered.stages[0]!.models[0]!.status).toBe('ran');
    expect(recovered.probability).toBeCloseTo(WHITE_P, 5);
    expect(cascade.breakerState('flaky')).toBe('closed');
    await cascade.close();
    const errors = (await readFile(path.join(logDir, 'errors.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(errors.filter((e) => e.model === 'flaky').length).toBe(5); // 3 failures + 2 circuit-open skips
    const inference = (await readFile(path.join(logDir, 'inference.log'), 'utf8')).trim().split('\n');
    expect(inference.length).toBe(7); // one line per image
  });

  it('a named fallback answers while the primary fails or its circuit is open', async () => {
    const file = await cascadeFile('fallback.yaml', [{name: 's1', models: ['flaky'], fallback: 'steady'}]);
    const cascade = await loadCascade(file, {device: 'cpu', breaker: {failures: 1, cooldownMs: 60_000}, breakerClock: () => 0});
    const first = await cascade.predict(dark);
    expect(first.stages[0]!.models.map((m) => [m.name, m.status])).toEqual([['flaky', 'failed'], ['steady', 'fallback']]);
    const mean = 10 / 255;
    expect(first.probability).toBeCloseTo(1 / (1 + Math.exp(-(2 * mean - 1))), 5);
    expect(first.degraded).toBe(false);
    const second = await cascade.predict(bright); // circuit open now: the fallback answers straight away
    expect(second.stages[0]!.models.map((m) => [m.name, m.status, m.reason])).toEqual([['flaky', 'skipped', 'circuit-open'], ['steady', 'fallback', 'in place of flaky']]);
    expect(second.probability).toBeCloseTo(1 / (1 + Math.exp(-1)), 5);
    await cascade.close();
  });

  it('"skip" drops the failing model from the vote; a whole failing stage degrades to the earlier stage', async () => {
    const skip = await cascadeFile('skip.yaml', [{name: 's1', models: ['flaky', 'steady'], combine: 'mean', fallback: 'skip'}]);
    const a = await loadCascade(skip, {device: 'cpu'});
    const r = await a.predict(dark);
    expect(r.stages[0]!.models.map((m) => m.status)).toEqual(['failed', 'ran']);
    expect(r.probability).toBeCloseTo(1 / (1 + Math.exp(-(2 * (10 / 255) - 1))), 5); // steady alone
    expect(r.degraded).toBe(false);
    await a.close();

    const staged = await cascadeFile('staged.yaml', [
      {name: 'first', models: ['steady'], escalate: {when: 'inside', band: [0, 1]}},
      {name: 'second', models: ['flaky']},
    ]);
    const b = await loadCascade(staged, {device: 'cpu'});
    const d = await b.predict(dark);
    expect(d.stages.map((s) => [s.name, s.ran, s.probability === undefined])).toEqual([['first', true, false], ['second', true, true]]);
    expect(d.degraded).toBe(true);
    expect(d.error).toBeUndefined();
    expect(d.probability).toBeCloseTo(d.stages[0]!.probability!, 10);
    const ok = await b.predict(bright);
    expect(ok.degraded).toBe(false);
    expect(ok.probability).toBeCloseTo(WHITE_P, 5); // the last stage that answered decides
    await b.close();
  });
});

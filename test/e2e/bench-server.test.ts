/**
 * `natix bench --scenario server` end to end on a small model: a VALID run with its constraints in the published
 * schema, INVALID (exit 1) when the run is too short for a p99 claim, and usage errors (exit 2) for missing flags.
 * The statistics themselves are checked against known answers in test/unit/server-scenario.test.ts.
 */
import {mkdir, mkdtemp} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Ajv} from 'ajv';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {benchResultSchema} from '../../src/lib/config/schemas/bench.js';
import {runNatix} from '../helpers/cli.js';
import {redVsBlueLogitsModel, writeHfModelDir} from '../helpers/models.js';

let dir: string;
let model: string;
let data: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-bench-server-'));
  model = await writeHfModelDir(path.join(dir, 'model'), redVsBlueLogitsModel(4));
  data = path.join(dir, 'data');
  for (let i = 0; i < 8; i++) {
    const cls = i % 2 ? 'roadwork' : 'none';
    await mkdir(path.join(data, 'test', cls), {recursive: true});
    const rgb = i % 2 ? {r: 220, g: 60, b: 40} : {r: 40, g: 60, b: 220};
    await sharp({create: {width: 32, height: 32, channels: 3, background: rgb}}).png().toFile(path.join(data, 'test', cls, `${i}.png`));
  }
});

describe('natix bench --scenario server', () => {
  it('Poisson arrivals at the target rate: VALID with every constraint, latency from the scheduled arrival', async () => {
    const r = await runNatix(['bench', '--model', model, '--dataset', data, '--scenario', 'server', '--target-qps', '150', '--max-p99-ms', '20000', '--no-default-gates', '--seed', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = r.json.result;
    const ajv = new Ajv({strict: false});
    expect(ajv.validate(benchResultSchema, result), JSON.stringify(ajv.errors)).toBe(true);
    expect(result.scenario).toBe('server');
    expect(result.server).toMatchObject({targetQps: 150, seed: 3, queries: 662, valid: true, errors: 0});
    expect(result.server.constraints.map((c: {name: string; ok: boolean}) => [c.name, c.ok])).toEqual([
      ['min-queries', true],
      ['min-duration', true],
      ['p99-latency', true],
      ['errors', true],
    ]);
    expect(result.latency.n).toBe(662);
    expect(result.gates.find((g: {name: string}) => g.name === 'server')).toMatchObject({verdict: 'PASS'});
    expect(result.metrics.accuracy).toBe(1);
  }, 180_000);

  it('too few queries for a p99 claim is INVALID (exit 1)', async () => {
    const short = await runNatix(['bench', '--model', model, '--dataset', data, '--scenario', 'server', '--target-qps', '200', '--max-p99-ms', '20000', '--max-queries', '50', '--no-default-gates', '--json']);
    expect(short.code).toBe(1);
    expect(short.json.result.verdict).toBe('INVALID');
    expect(short.json.result.server.valid).toBe(false);
    expect(short.json.result.server.constraints.filter((c: {ok: boolean}) => !c.ok).map((c: {name: string}) => c.name)).toEqual(['min-queries']);
  }, 180_000);

  it('missing --target-qps or bound, or server flags without the scenario, are usage errors (exit 2)', async () => {
    const noRate = await runNatix(['bench', '--model', model, '--dataset', data, '--scenario', 'server', '--max-p99-ms', '100']);
    expect(noRate.code).toBe(2);
    expect(noRate.stderr).toMatch(/--target-qps/);
    const noBound = await runNatix(['bench', '--model', model, '--dataset', data, '--scenario', 'server', '--target-qps', '10', '--no-default-gates']);
    expect(noBound.code).toBe(2);
    expect(noBound.stderr).toMatch(/--max-p99-ms/);
    const stray = await runNatix(['bench', '--model', model, '--dataset', data, '--target-qps', '10']);
    expect(stray.code).toBe(2);
  }, 240_000);
});

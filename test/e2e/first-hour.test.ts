/** What a new user meets in the first hour: the README's commands, help examples, bad paths, one-class data. */
import {copyFile, mkdir, mkdtemp, readdir, writeFile} from 'node:fs/promises';
import {existsSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {beforeAll, describe, expect, it} from 'vitest';
import {REPO_ROOT, runNatix} from '../helpers/cli.js';

const SAMPLE = path.join(REPO_ROOT, 'datasets', 'sample');
let base: string;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-first-hour-'));
});

describe('help examples and the README point at files that exist', () => {
  it('every datasets/ or checkpoints/ path in a command example exists in the package', async () => {
    for (const command of ['bench', 'test-inference', 'validate-data', 'train', 'export', 'doctor']) {
      const r = await runNatix([command, '--help']);
      expect(r.code, r.stderr).toBe(0);
      const paths = [...r.stdout.matchAll(/\b((?:datasets|checkpoints)\/[^\s'"]+)/g)].map((m) => m[1]!);
      for (const p of paths.filter((x) => /\.\w+$/.test(x))) expect(existsSync(path.join(REPO_ROOT, p)), `${command} --help: ${p}`).toBe(true);
    }
  }, 120_000);
});

describe('test-inference --image', () => {
  it('a missing file exits 2 before loading anything (even a missing model is not reached)', async () => {
    const r = await runNatix(['test-inference', '--image', path.join(base, 'nope.jpg'), '--model', path.join(base, 'no-model'), '--json']);
    expect(r.code).toBe(2);
    expect(r.json.code).toBe('IMAGE_NOT_FOUND');
    expect(r.json.message).toMatch(/no such file/);
  });

  it('a folder exits 2 and suggests --batch', async () => {
    const r = await runNatix(['test-inference', '--image', SAMPLE, '--model', path.join(base, 'no-model'), '--json']);
    expect(r.code).toBe(2);
    expect(r.json.message).toMatch(/is a folder/);
    expect(r.json.actions.join(' ')).toContain(`natix test-inference --batch ${SAMPLE}`);
  });
});

describe('natix bench as a newcomer runs it', () => {
  it('with no arguments says it is a small demo model and what the gates are', async () => {
    const r = await runNatix(['bench', '--min-queries', '100'], {timeoutMs: 240_000});
    expect(r.stderr).toMatch(/Demo: the bundled default cascade/);
    expect(r.stderr).toMatch(/MCC >= 0.9975 \(warn 0.995\)/);
    expect(r.stdout).toMatch(/MCC [-\d.]+ \(95% CI [-\d.]+ to [-\d.]+\)/);
    if (r.code !== 0) expect(r.stderr).toMatch(/is expected here: the bundled demo model is small/);
  }, 240_000);

  it('--baseline from another scenario or dataset is refused before anything runs', async () => {
    const baseline = path.join(base, 'baseline.json');
    await writeFile(baseline, JSON.stringify({status: 0, result: {metrics: {mcc: 0.9, accuracy: 0.9}, latency: {p50: 5, p95: 6, p99: 7}, throughput: 100, scenario: 'single-stream', settings: {concurrency: 1}, dataset: {root: SAMPLE, format: 'folder', split: 'test', images: 100}}}));
    const r = await runNatix(['bench', '--scenario', 'offline', '--concurrency', '8', '--baseline', baseline, '--model', path.join(base, 'no-model'), '--json']);
    expect(r.code).toBe(2);
    expect(r.json.code).toBe('BASELINE_MISMATCH');
    expect(r.json.message).toMatch(/scenario offline vs single-stream in the baseline; concurrency 8 vs 1/);
  });
});

describe('one-class datasets are named as such', () => {
  let oneClass: string;
  beforeAll(async () => {
    oneClass = path.join(base, 'one-class');
    for (const split of ['train', 'test']) {
      await mkdir(path.join(oneClass, split, 'roadwork'), {recursive: true});
      for (const f of (await readdir(path.join(SAMPLE, split, 'roadwork'))).slice(0, 12)) await copyFile(path.join(SAMPLE, split, 'roadwork', f), path.join(oneClass, split, 'roadwork', f));
    }
  });

  it('validate-data fails with a single-class error', async () => {
    const r = await runNatix(['validate-data', oneClass, '--json'], {timeoutMs: 120_000});
    expect(r.code).toBe(1);
    const finding = r.json.result.findings.find((f: {check: string}) => f.check === 'single-class');
    expect(finding, JSON.stringify(r.json.result.summary)).toMatchObject({severity: 'error'});
    expect(finding.message).toMatch(/only one class is present: all 24 labelled images are roadwork/);
  }, 120_000);

  it('bench: the MCC gate is INVALID with the reason; p99 = max is said in words', async () => {
    const r = await runNatix(['bench', '--dataset', oneClass, '--no-default-gates', '--min-mcc', '0.5', '--max-queries', '12', '--min-queries', '12'], {timeoutMs: 120_000});
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/min-mcc .* INVALID +all 12 labelled images are of one class \(roadwork\): MCC is 0 by definition/);
    expect(r.stdout).toMatch(/p95, p99 are the largest sample \(max\): with n=12, .*p95 needs n > 20, p99 needs n > 100/);
  }, 120_000);
});

/**
 * Issue 10 through the real binary: natix never writes into a dataset, never hangs on a FIFO or a huge number,
 * reports permission errors as what they are (as an unprivileged user: root reads chmod 000 files), never counts a
 * failed inference as a prediction, and never gives a green result on zero images read.
 */
import {chmod, mkdir, mkdtemp, readFile, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {failsOnDarkModel, writeHfModelDir} from '../helpers/models.js';
import {mkfifo} from '../helpers/corrupt.js';
import {runNatix, unprivileged} from '../helpers/cli.js';
import {snapshot} from '../helpers/snapshot.js';

let base: string;
let dataset: string;

async function image(file: string, rgb: [number, number, number]): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true});
  // Noise over a flat colour: no quality check fires on it.
  const w = 48;
  const h = 32;
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.max(0, Math.min(255, rgb[c]! + ((i * 7919 + c * 31) % 41) - 20));
  await sharp(raw, {raw: {width: w, height: h, channels: 3}}).png().toFile(file);
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-reliability-'));
  await chmod(base, 0o755);
  dataset = path.join(base, 'dataset');
  for (let i = 0; i < 4; i++) {
    await image(path.join(dataset, 'test', 'roadwork', `r${i}.png`), [200, 60 + i * 10, 40]);
    await image(path.join(dataset, 'test', 'none', `n${i}.png`), [40, 60 + i * 10, 200]);
  }
  await symlink(path.join(dataset, 'test'), path.join(base, 'link-into-dataset'));
});

describe('natix never writes into a dataset', () => {
  it('--quarantine through a symlink into the dataset and --report inside it are refused before any work', async () => {
    const before = await snapshot(dataset);
    const q = await runNatix(['validate-data', dataset, '--quarantine', path.join(base, 'link-into-dataset', 'qq'), '--json']);
    expect(q.code).toBe(2);
    expect(q.json).toMatchObject({code: 'OUTPUT_INSIDE_DATASET'});
    const r = await runNatix(['validate-data', dataset, '--report', path.join(dataset, 'report.html'), '--json']);
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({code: 'OUTPUT_INSIDE_DATASET'});
    const b = await runNatix(['bench', '--dataset', dataset, '--junit', path.join(base, 'link-into-dataset', 'bench.xml'), '--json']);
    expect(b.code).toBe(2);
    expect(b.json).toMatchObject({code: 'OUTPUT_INSIDE_DATASET'});
    const t = await runNatix(['test-inference', '--batch', dataset, '--output', path.join(dataset, 'out.json'), '--json']);
    expect(t.code).toBe(2);
    expect(t.json).toMatchObject({code: 'OUTPUT_INSIDE_DATASET'});
    expect(await snapshot(dataset)).toEqual(before);
  }, 180_000);

  it('train --out inside the dataset, directly or through a symlink, is refused before anything is written', async () => {
    const before = await snapshot(dataset);
    const config = path.join(base, 'train-inside.yaml');
    await writeFile(config, `dataset:\n  path: ${dataset}\nepochs: 1\n`);
    for (const out of [path.join(dataset, 'runs'), path.join(base, 'link-into-dataset', 'runs')]) {
      const r = await runNatix(['train', '--config', config, '--out', out, '--run-name', 'inside', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.json).toMatchObject({code: 'OUTPUT_INSIDE_DATASET'});
    }
    expect(await snapshot(dataset)).toEqual(before);
  }, 120_000);
});

describe('no hangs', () => {
  it('--config pointing at a FIFO is an error naming it, at once', async () => {
    const fifo = path.join(base, 'config-fifo.yaml');
    mkfifo(fifo);
    const r = await runNatix(['validate-data', dataset, '--config', fifo, '--json'], {timeoutMs: 30_000});
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
    expect(r.json.message).toMatch(/config-fifo\.yaml is a FIFO/);
  }, 180_000);

  it('bench --warmup 99999999999999999999 and other huge numbers are usage errors, not endless runs', async () => {
    // Every other numeric flag of every command: test/fuzz/hostile-inputs.test.ts parses the same value through it.
    for (const args of [['--warmup', '99999999999999999999'], ['--max-queries', '99999999999999999999']]) {
      const r = await runNatix(['bench', '--dataset', dataset, ...args, '--json'], {timeoutMs: 30_000});
      expect(r.signal, args.join(' ')).toBeNull();
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.code, args.join(' ')).toBe('USAGE');
    }
  }, 180_000);

  it('bench config values are range-checked and their errors name the file and the key', async () => {
    for (const [text, key] of [['min-mcc: -1', 'min-mcc'], ['threshold: 2', 'threshold'], ['warmup: 99999999999999999999', 'warmup'], ['min-duration: 1x', 'min-duration']]) {
      const file = path.join(base, `bench-${key}.yaml`);
      await writeFile(file, `${text}\n`);
      const r = await runNatix(['bench', '--dataset', dataset, '--config', file, '--json'], {timeoutMs: 30_000});
      expect(r.code, text).toBe(2);
      expect(r.json.message, text).toMatch(new RegExp(`^bench-${key}\\.yaml: /${key} `));
    }
  }, 180_000);
});

describe('permission errors are reported as what they are', () => {
  it('a chmod 000 class folder, image and manifest: findings and errors saying "permission denied", never a crash', async () => {
    const root = path.join(base, 'locked');
    await image(path.join(root, 'roadwork', 'ok.png'), [200, 80, 40]);
    await image(path.join(root, 'roadwork', 'locked.png'), [200, 80, 40]);
    await image(path.join(root, 'none', 'hidden.png'), [40, 80, 200]);
    await chmod(path.join(root, 'roadwork', 'locked.png'), 0o000);
    await chmod(path.join(root, 'none'), 0o000);
    const as = unprivileged(base);
    const r = await runNatix(['validate-data', root, '--json'], as);
    expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+:\d+/);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const unreadable = r.json.result.findings.filter((f: {check: string}) => f.check === 'unreadable').map((f: {path: string; message: string}) => [f.path, f.message]);
    expect(unreadable).toEqual(
      expect.arrayContaining([
        ['none', expect.stringMatching(/permission denied/)],
        ['roadwork/locked.png', expect.stringMatching(/permission denied/)],
      ]),
    );

    const manifestRoot = path.join(base, 'locked-manifest');
    await image(path.join(manifestRoot, 'a.png'), [200, 80, 40]);
    await writeFile(path.join(manifestRoot, 'manifest.csv'), 'path,label\na.png,1\n');
    await chmod(path.join(manifestRoot, 'manifest.csv'), 0o000);
    const m = await runNatix(['validate-data', manifestRoot, '--json'], as);
    expect(m.code, m.stdout + m.stderr).toBe(2);
    expect(m.json.message).toMatch(/manifest\.csv cannot be read: permission denied/);
  }, 180_000);
});

describe('errors are never predictions', () => {
  let failing: string;
  let dark: string;

  beforeAll(async () => {
    // failsOnDarkModel answers NaN (a model failure) on images whose mean is below 0.5: all of these.
    failing = await writeHfModelDir(path.join(base, 'failing-model'), failsOnDarkModel());
    dark = path.join(base, 'dark');
    for (let i = 0; i < 3; i++) {
      await image(path.join(dark, 'test', 'roadwork', `r${i}.png`), [90, 40, 30]);
      await image(path.join(dark, 'test', 'none', `n${i}.png`), [30, 40, 90]);
    }
  }, 180_000);

  it('bench: a model that fails on every image does not pass a quality gate (INVALID, FAIL with --strict)', async () => {
    const r = await runNatix(['bench', '--model', failing, '--dataset', dark, '--no-default-gates', '--min-accuracy', '0.45', '--warmup', '1', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.json.result.errors).toBe(6);
    expect(r.json.result.metrics.n).toBe(0);
    expect(r.json.result.gates[0]).toMatchObject({name: 'min-accuracy', verdict: 'INVALID'});
    expect(r.json.result.verdict).toBe('INVALID');
    const strict = await runNatix(['bench', '--model', failing, '--dataset', dark, '--no-default-gates', '--min-accuracy', '0.45', '--warmup', '1', '--strict', '--json']);
    expect(strict.json.result.gates[0]).toMatchObject({name: 'min-accuracy', verdict: 'FAIL'});
  }, 180_000);

  it('test-inference: --image and --batch exit 1 when no stage answered; errors are not "none" decisions', async () => {
    const one = await runNatix(['test-inference', '--model', failing, '--image', path.join(dark, 'test', 'none', 'n0.png'), '--json']);
    expect(one.code, one.stderr).toBe(1);
    expect(one.json.result.error).toBeTruthy();
    const batch = await runNatix(['test-inference', '--model', failing, '--batch', dark, '--no-log', '--json']);
    expect(batch.code, batch.stderr).toBe(1);
    expect(batch.json.result.summary).toMatchObject({count: 6, errors: 6, decisions: {roadwork: 0, none: 0}});
  }, 180_000);
});

describe('zero images read is an error; unlabelled photo folders are accepted', () => {
  it('validate-data DIR --format parquet on a folder dataset exits 2', async () => {
    const r = await runNatix(['validate-data', dataset, '--format', 'parquet', '--json']);
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({code: 'NO_SAMPLES'});
  }, 180_000);

  it('test-inference --batch on a flat folder of unlabelled photos: decisions and latency, no accuracy', async () => {
    const flat = path.join(base, 'photos');
    for (let i = 0; i < 3; i++) await image(path.join(flat, `IMG_${i}.png`), [120, 120, 120 + i * 20]);
    const out = path.join(base, 'photos-out.json');
    const r = await runNatix(['test-inference', '--batch', flat, '--no-log', '--output', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.summary.count).toBe(3);
    expect(r.json.result.summary.metrics).toBeUndefined();
    expect(JSON.parse(await readFile(out, 'utf8')).records.map((x: {label: unknown}) => x.label)).toEqual([null, null, null]);
  }, 180_000);
});

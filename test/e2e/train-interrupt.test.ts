/**
 * Training as a user drives it: Ctrl-C mid-epoch (a large epoch of 1-image steps), a second Ctrl-C, the printed
 * resume command run as printed, a moved run folder, a run killed before its first checkpoint, stale temporaries,
 * hostile --run-name values and one-class datasets.
 */
import {spawn} from 'node:child_process';
import {cp, mkdir, mkdtemp, readFile, readdir, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {listCheckpoints, readCheckpoint} from '../../src/lib/train/checkpoint.js';
import {BIN, runNatix} from '../helpers/cli.js';

let base: string;
let data: string;
let oneClass: string;

async function images(root: string, split: string, cls: string, n: number, seed: number): Promise<void> {
  await mkdir(path.join(root, split, cls), {recursive: true});
  for (let i = 0; i < n; i++) {
    const k = seed + i;
    const bg = cls === 'roadwork' ? {r: 150 + ((k * 13) % 60), g: 90, b: 60} : {r: 60, g: 90, b: 150 + ((k * 17) % 60)};
    await sharp({create: {width: 16, height: 16, channels: 3, background: bg}}).png().toFile(path.join(root, split, cls, `${k}.png`));
  }
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-train-int-'));
  process.env.MLFLOW_TRACKING_URI = path.join(base, 'mlruns');
  data = path.join(base, 'data');
  // 160 training images at batch size 1: an epoch of 160 steps, so a signal lands well inside it.
  await images(data, 'train', 'roadwork', 80, 0);
  await images(data, 'train', 'none', 80, 1000);
  await images(data, 'val', 'roadwork', 4, 2000);
  await images(data, 'val', 'none', 4, 3000);
  oneClass = path.join(base, 'one-class');
  await images(oneClass, 'train', 'roadwork', 6, 0);
  await images(oneClass, 'val', 'roadwork', 2, 100);
});

async function config(name: string, extra = '', dataset = data): Promise<string> {
  const file = path.join(base, `${name}.yaml`);
  await writeFile(file, `run-name: ${name}\nout: ${path.join(base, 'runs')}\nepochs: 1\nbatch-size: 1\nlr: 0.01\nseed: 3\ndataset:\n  path: ${dataset}\n  image-size: 16\nmodel:\n  architecture: tiny-cnn\n  width: 0.25\n${extra}`);
  return file;
}

/**
 * Spawns `natix train` and sends `signal` once training has started; with `again`, a second SIGINT as soon as the
 * first one was acknowledged ("finishing the current step"), i.e. while the checkpoint is being written.
 */
function trainAndInterrupt(args: string[], signal: NodeJS.Signals, again = false): Promise<{code: number | null; signal: NodeJS.Signals | null; stderr: string}> {
  const child = spawn(process.execPath, [BIN, 'train', ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}});
  let stderr = '';
  let sent = false;
  let sentAgain = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    // "Data: ..." is printed right before the first step: interrupt then, i.e. at most a few steps into a 160-step epoch.
    if (!sent && /^Data: /m.test(stderr)) {
      sent = true;
      child.kill(signal);
    }
    if (again && !sentAgain && /finishing the current step/.test(stderr)) {
      sentAgain = true;
      child.kill('SIGINT');
    }
  });
  child.stdout.resume();
  return new Promise((resolve) => child.on('close', (code, sig) => resolve({code, signal: sig, stderr})));
}

/** Splits the printed command into words (natix quotes with POSIX single quotes). */
function shellWords(command: string): string[] {
  return [...command.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!));
}

describe('natix train: interruption and resume as a user does it', () => {
  it('SIGINT mid-epoch writes epoch-NNNN-step-NNNNNN within a step, and the printed resume command works as printed', async () => {
    const cfg = await config('ctrl-c');
    const r = await trainAndInterrupt(['--config', cfg, '--no-tracking'], 'SIGINT');
    expect(r.code, r.stderr).toBe(1);
    const run = path.join(base, 'runs', 'ctrl-c');
    const last = JSON.parse(await readFile(path.join(run, 'last.json'), 'utf8')) as {checkpoint: string; interrupted?: boolean};
    expect(last.checkpoint).toMatch(/^epoch-0000-step-\d{6}$/);
    const checkpoint = await readCheckpoint(path.join(run, last.checkpoint));
    // Far from the end of the 160-step epoch: the signal was answered within a few steps, not at the epoch's end.
    expect(checkpoint.state.stepInEpoch).toBeGreaterThan(0);
    expect(checkpoint.state.stepInEpoch).toBeLessThan(80);
    expect(checkpoint.state.partial?.counted).toBe(checkpoint.state.stepInEpoch);
    const hint = /Resume with: (natix train .*)$/m.exec(r.stderr)?.[1];
    expect(hint, r.stderr).toBeDefined();
    const words = shellWords(hint!);
    expect(words.slice(0, 2)).toEqual(['natix', 'train']);
    const resumed = await runNatix([...words.slice(1), '--no-tracking', '--json'], {timeoutMs: 600_000, cwd: base});
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json.result.epochs).toBe(1);
    expect((await readFile(path.join(run, 'history.csv'), 'utf8')).trim().split('\n')).toHaveLength(2);
  }, 600_000);

  it('a second SIGINT while the checkpoint is written exits at once; nothing left behind is corrupt; the run resumes', async () => {
    const cfg = await config('twice');
    const r = await trainAndInterrupt(['--config', cfg, '--no-tracking'], 'SIGINT', true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/SIGINT: finishing the current step/);
    const run = path.join(base, 'runs', 'twice');
    for (const dir of await listCheckpoints(run)) await readCheckpoint(dir);
    const pointer = await readFile(path.join(run, 'last.json'), 'utf8').catch(() => undefined);
    if (pointer !== undefined) await readCheckpoint(path.join(run, (JSON.parse(pointer) as {checkpoint: string}).checkpoint));
    const resumed = await runNatix(['train', '--config', cfg, '--resume', '--no-tracking', '--json'], {timeoutMs: 600_000});
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json.result.epochs).toBe(1);
  }, 600_000);

  it('SIGTERM is answered the same way', async () => {
    const cfg = await config('term');
    const r = await trainAndInterrupt(['--config', cfg, '--no-tracking'], 'SIGTERM');
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/SIGTERM: finishing the current step/);
    const last = JSON.parse(await readFile(path.join(base, 'runs', 'term', 'last.json'), 'utf8')) as {checkpoint: string};
    expect(last.checkpoint).toMatch(/^epoch-0000-step-\d{6}$/);
  }, 600_000);

  it('resumes a copied run folder where it is now, never in its old place; stale temporaries are removed', async () => {
    const cfg = await config('moved', '', data);
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('batch-size: 1', 'batch-size: 16'));
    const first = await runNatix(['train', '--config', cfg, '--no-tracking', '--json'], {timeoutMs: 600_000});
    expect(first.code, first.stderr).toBe(0);
    const oldRun = path.join(base, 'runs', 'moved');
    const newOut = path.join(base, 'elsewhere');
    await cp(oldRun, path.join(newOut, 'moved'), {recursive: true});
    const newRun = path.join(newOut, 'moved');
    // What kills during writes leave behind.
    await mkdir(path.join(newRun, '.epoch-0002.tmp-0a1b2c3d'));
    await writeFile(path.join(newRun, '.history.csv.0123456789ab.tmp'), 'partial');
    const before = (await readdir(oldRun)).sort();
    const oldConfig = await readFile(path.join(oldRun, 'config.json'), 'utf8');
    const oldRunJson = await stat(path.join(oldRun, 'run.json'));
    const r = await runNatix(['train', '--config', cfg, '--out', newOut, '--resume', '--epochs', '2', '--no-tracking', '--json'], {timeoutMs: 600_000});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.runDir).toBe(newRun);
    expect((await readdir(newRun)).filter((n) => n.startsWith('.'))).toEqual([]);
    expect((await readdir(newRun))).toContain('epoch-0002');
    expect((await readdir(oldRun)).sort()).toEqual(before);
    expect(await readFile(path.join(oldRun, 'config.json'), 'utf8')).toBe(oldConfig);
    expect((await stat(path.join(oldRun, 'run.json'))).mtimeMs).toBe(oldRunJson.mtimeMs);
    expect(JSON.parse(await readFile(path.join(newRun, 'config.json'), 'utf8')).out).toBe(newOut);
  }, 600_000);

  it('--resume of a run killed before its first checkpoint starts it fresh and says so', async () => {
    const cfg = await config('early');
    const killed = await trainAndInterrupt(['--config', cfg, '--no-tracking'], 'SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const run = path.join(base, 'runs', 'early');
    expect(await listCheckpoints(run)).toEqual([]);
    const r = await runNatix(['train', '--config', cfg, '--resume', '--no-tracking'], {timeoutMs: 600_000});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/No checkpoint in .* yet .*starting it from the beginning/);
  }, 600_000);

  it('a state.json that does not match its schema is never trusted (skipped like a corrupt checkpoint)', async () => {
    const run = path.join(base, 'runs', 'early');
    const dir = path.join(run, 'epoch-0001');
    const manifestFile = path.join(dir, 'manifest.json');
    const state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
    const bad = JSON.stringify({...state, epoch: 'x'});
    await writeFile(path.join(dir, 'state.json'), bad);
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as {files: Record<string, string>};
    const {createHash} = await import('node:crypto');
    manifest.files['state.json'] = createHash('sha256').update(bad).digest('hex');
    await writeFile(manifestFile, JSON.stringify(manifest));
    await expect(readCheckpoint(dir)).rejects.toThrow(/state.json: \/epoch must be integer/);
    const r = await runNatix(['train', '--config', path.join(base, 'early.yaml'), '--resume', '--epochs', '2', '--no-tracking', '--json'], {timeoutMs: 600_000});
    expect(r.code).toBe(2);
    expect(r.json.warnings.join('\n')).toMatch(/skipping checkpoint epoch-0001: .*\/epoch must be integer/);
  }, 600_000);

  it('--run-name obeys the config key: a path, "..", or 300 characters exit 2 and write nothing', async () => {
    const cfg = await config('names');
    for (const name of ['../../x', '..', '.', 'a/b', 'x'.repeat(300)]) {
      const r = await runNatix(['train', '--config', cfg, '--run-name', name, '--no-tracking', '--json']);
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      expect(r.json.code).toBe('USAGE');
    }
    expect(await readdir(base)).not.toContain('x');
    const bad = path.join(base, 'bad-name.yaml');
    await writeFile(bad, `run-name: ..\ndataset:\n  path: ${data}\n`);
    const r = await runNatix(['train', '--config', bad, '--json']);
    expect(r.code).toBe(2);
    expect(r.json.message).toMatch(/run-name/);
  }, 120_000);

  it('refuses a one-class training split unless --allow-one-class', async () => {
    const cfg = await config('one', '', oneClass);
    const r = await runNatix(['train', '--config', cfg, '--no-tracking', '--json']);
    expect(r.code).toBe(2);
    expect(r.json.code).toBe('ONE_CLASS');
    expect(r.json.message).toMatch(/one class only/);
    expect(r.json.actions.join(' ')).toMatch(/--allow-one-class/);
    const allowed = await runNatix(['train', '--config', cfg, '--epochs', '1', '--allow-one-class', '--no-tracking', '--json'], {timeoutMs: 600_000});
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.json.warnings.join('\n')).toMatch(/one class only/);
  }, 600_000);
});

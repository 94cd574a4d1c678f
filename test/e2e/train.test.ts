import {spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import {mkdir, mkdtemp, readFile, readdir, truncate, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {readCheckpoint} from '../../src/lib/train/checkpoint.js';
import {BIN, runNatix} from '../helpers/cli.js';

let base: string;
let data: string;

/** 24 train + 8 val images of 24x24: "roadwork" reddish with an orange bar, "none" bluish. */
beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-train-'));
  data = path.join(base, 'data');
  process.env.MLFLOW_TRACKING_URI = path.join(base, 'mlruns'); // spawned runs log here, not in the repository
  let k = 0;
  for (const [split, n] of [['train', 12], ['val', 4]] as const) {
    for (const cls of ['roadwork', 'none'] as const) {
      await mkdir(path.join(data, split, cls), {recursive: true});
      for (let i = 0; i < n; i++, k++) {
        const bg = cls === 'roadwork' ? {r: 150 + ((k * 13) % 60), g: 90, b: 60} : {r: 60, g: 90, b: 150 + ((k * 17) % 60)};
        const bar = Buffer.from(`<svg width="24" height="24"><rect x="${4 + (k % 8)}" y="${6 + (k % 5)}" width="8" height="4" fill="${cls === 'roadwork' ? '#ff7a00' : '#7a7a7a'}"/></svg>`);
        await sharp({create: {width: 24, height: 24, channels: 3, background: bg}}).composite([{input: bar}]).png().toFile(path.join(data, split, cls, `${k}.png`));
      }
    }
  }
});

async function config(name: string, extra = ''): Promise<string> {
  const file = path.join(base, `${name}.yaml`);
  await writeFile(file, `run-name: ${name}\nout: ${path.join(base, 'runs')}\nepochs: 4\nbatch-size: 4\nlr: 0.01\nseed: 3\nkeep-last: 10\ndataset:\n  path: ${data}\n  image-size: 16\nmodel:\n  architecture: tiny-cnn\n  width: 0.5\n${extra}`);
  return file;
}

const weightsHash = async (dir: string): Promise<string> => createHash('sha256').update(await readFile(path.join(dir, 'weights.bin'))).digest('hex');

function spawnTrain(args: string[]): {kill: (s: NodeJS.Signals) => void; done: Promise<{code: number | null; signal: NodeJS.Signals | null; stderr: string}>} {
  const child = spawn(process.execPath, [BIN, 'train', ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}});
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  return {kill: (s) => child.kill(s), done: new Promise((resolve) => child.on('close', (code, signal) => resolve({code, signal, stderr})))};
}

describe('natix train', () => {
  let reference: string;

  it('trains, writes a self-describing run folder, checkpoints every epoch with best/last pointers', async () => {
    const r = await runNatix(['train', '--config', await config('ref'), '--json'], {timeoutMs: 240_000});
    expect(r.code, r.stderr).toBe(0);
    const run = path.join(base, 'runs', 'ref');
    const files = (await readdir(run)).sort();
    expect(files).toEqual(expect.arrayContaining(['best.json', 'config.json', 'curves.svg', 'epoch-0001', 'epoch-0004', 'history.csv', 'last.json', 'run.json']));
    const history = (await readFile(path.join(run, 'history.csv'), 'utf8')).trim().split('\n');
    expect(history[0]).toBe('epoch,lr,loss,accuracy,val_loss,val_accuracy,val_mcc,val_precision,val_recall,seconds');
    expect(history).toHaveLength(5);
    const last = JSON.parse(await readFile(path.join(run, 'last.json'), 'utf8'));
    expect(last.checkpoint).toBe('epoch-0004');
    const ck = await readCheckpoint(path.join(run, 'epoch-0004'));
    expect(ck.state).toMatchObject({epoch: 4, stepInEpoch: 0, step: 24, backend: 'wasm'});
    expect(ck.optimizer.length).toBeGreaterThan(0);
    expect(r.json.result.history).toHaveLength(4);
    reference = await weightsHash(path.join(run, 'epoch-0004'));
  }, 240_000);

  it('survives SIGKILL at random points: every resume succeeds and the final weights equal the uninterrupted run', async () => {
    const cfg = await config('killed');
    const run = path.join(base, 'runs', 'killed');
    // Kill points tied to progress, not wall time (the machine may be loaded): once the run has written its
    // k-th checkpoint, SIGKILL after a short pseudo-random delay (mid-step or mid-checkpoint-write).
    const delays = [0, 40, 90];
    const checkpoints = async (): Promise<string[]> => (await readdir(run).catch(() => [] as string[])).filter((n) => /^epoch-\d+$/.test(n));
    let started = false;
    for (const [k, delay] of delays.entries()) {
      const child = spawnTrain(['--config', cfg, ...(started ? ['--resume'] : [])]);
      const waitFor = k + 1;
      const poll = setInterval(async () => {
        if ((await checkpoints()).length >= waitFor) {
          clearInterval(poll);
          setTimeout(() => child.kill('SIGKILL'), delay);
        }
      }, 5);
      const result = await child.done;
      clearInterval(poll);
      started = (await checkpoints()).length > 0;
      expect(result.signal === 'SIGKILL' || result.code === 0, result.stderr).toBe(true);
    }
    expect(started).toBe(true);
    const final = await runNatix(['train', '--config', cfg, ...(started ? ['--resume'] : []), '--json'], {timeoutMs: 240_000});
    expect(final.code, final.stderr).toBe(0);
    // No temporary folder is ever left behind as a checkpoint, and the result matches the reference bit for bit.
    expect(await weightsHash(path.join(run, 'epoch-0004'))).toBe(reference);
  }, 240_000);

  it('SIGINT finishes the step, writes a checkpoint, exits 1 and says how to resume; resume completes the run', async () => {
    const cfg = await config('interrupted', '');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('epochs: 4', 'epochs: 400'));
    const run = path.join(base, 'runs', 'interrupted');
    const child = spawnTrain(['--config', cfg]);
    // Interrupt once training is under way (the first checkpoint exists).
    for (let i = 0; i < 600; i++) {
      if ((await readdir(run).catch(() => [] as string[])).includes('epoch-0001')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGINT');
    const r = await child.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SIGINT: finishing the current step/);
    expect(r.stderr).toMatch(/--run-name interrupted --resume/);
    const last = JSON.parse(await readFile(path.join(run, 'last.json'), 'utf8'));
    const checkpoint = await readCheckpoint(path.join(run, last.checkpoint));
    expect(checkpoint.state.epoch).toBeGreaterThanOrEqual(1);
    expect(checkpoint.state.epoch).toBeLessThan(400);
    const resumed = await runNatix(['train', '--config', cfg, '--run-name', 'interrupted', '--resume', '--epochs', String(checkpoint.state.epoch + 1), '--json'], {timeoutMs: 240_000});
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json.result.epochs).toBe(checkpoint.state.epoch + 1);
  }, 240_000);

  it('a truncated newest checkpoint is skipped with a warning; a manifest mismatch is detected; the epoch budget can grow on resume', async () => {
    const run = path.join(base, 'runs', 'ref');
    await truncate(path.join(run, 'epoch-0004', 'weights.bin'), 100);
    await expect(readCheckpoint(path.join(run, 'epoch-0004'))).rejects.toThrow(/checksum mismatch/);
    const manifestFile = path.join(run, 'epoch-0003', 'manifest.json');
    const good = await readFile(manifestFile, 'utf8');
    await writeFile(manifestFile, good.replace(/"state.json": "[0-9a-f]+"/, '"state.json": "00"'));
    await expect(readCheckpoint(path.join(run, 'epoch-0003'))).rejects.toThrow(/state.json: checksum mismatch/);
    await writeFile(manifestFile, good);
    const r = await runNatix(['train', '--config', await config('ref'), '--resume', '--epochs', '5', '--json'], {timeoutMs: 240_000});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.warnings.join('\n')).toMatch(/skipping checkpoint epoch-0004: .*checksum mismatch/);
    expect(r.json.result.epochs).toBe(5);
  }, 240_000);

  it('refuses to overwrite an existing run and validates the config (exit 2)', async () => {
    const again = await runNatix(['train', '--config', await config('ref'), '--json']);
    expect(again.code).toBe(2);
    expect(again.json.code).toBe('RUN_EXISTS');
    const bad = path.join(base, 'bad.yaml');
    await writeFile(bad, 'epochs: 0.5\ndataset:\n  path: x\n');
    const r = await runNatix(['train', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad.yaml: /epochs must be integer >= 1');
  }, 240_000);
});

describe('natix export', () => {
  it('exports a run as a verified Hugging Face-style directory that test-inference runs as is', async () => {
    const out = path.join(base, 'exported');
    const r = await runNatix(['export', path.join(base, 'runs', 'killed'), '--out', out, '--hotkey', '5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX', '--version', '1.2.3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.verification.passed).toBe(true);
    expect(r.json.result.verification.maxAbsDiff).toBeLessThan(1e-4);
    const card = JSON.parse(await readFile(path.join(out, 'model_card.json'), 'utf8'));
    expect(card).toMatchObject({model_name: 'killed', version: '1.2.3', submitted_by: '5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX'});
    expect(typeof card.submission_time).toBe('number');
    const cfg = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.id2label).toEqual({0: 'None', 1: 'Roadwork'});
    // The run trained through the Pillow-exact path; the export records it so inference resizes the same way.
    expect(JSON.parse(await readFile(path.join(out, 'preprocessor_config.json'), 'utf8')).natix_resampler).toBe('pillow');
    const image = path.join(data, 'val', 'roadwork', (await readdir(path.join(data, 'val', 'roadwork')))[0]!);
    const t = await runNatix(['test-inference', '--image', image, '--model', out, '--json']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.json.result.probability).toBeGreaterThanOrEqual(0);
    const bad = await runNatix(['export', path.join(base, 'runs', 'killed'), '--out', out, '--version', 'v1', '--json']);
    expect(bad.code).toBe(2);
  }, 120_000);
});

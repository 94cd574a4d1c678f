import {createHash} from 'node:crypto';
import {mkdir, mkdtemp, readFile, readdir, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {encodeOnnxModel, floatTensor} from '../../src/lib/onnx/model.js';
import {runNatix, spawnNatix} from '../helpers/cli.js';

let base: string;
let data: string;
let extra: string;
let modelDir: string;

/** A ResNet-shaped backbone: 1x1 Conv (RGB + their sum) -> Relu -> feature_map [B, 4, H, W]; mean pooling = colours. */
function colourBackbone(): Uint8Array {
  return encodeOnnxModel({
    inputs: [{name: 'pixel_values', type: 'float', shape: ['batch', 3, 16, 16]}],
    outputs: [{name: 'feature_map', type: 'float', shape: ['batch', 4, 16, 16]}],
    initializers: [floatTensor('k', [4, 3, 1, 1], [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]), floatTensor('kb', [4], [1, 1, 1, 3])],
    nodes: [
      {opType: 'Conv', inputs: ['pixel_values', 'k', 'kb'], outputs: ['c']},
      {opType: 'Relu', inputs: ['c'], outputs: ['feature_map']},
    ],
  });
}

async function images(root: string, splits: Array<[string, number]>, seed: number): Promise<void> {
  let k = seed;
  for (const [split, n] of splits) {
    for (const cls of ['roadwork', 'none'] as const) {
      const dir = split ? path.join(root, split, cls) : path.join(root, cls);
      await mkdir(dir, {recursive: true});
      for (let i = 0; i < n; i++, k++) {
        const jitter = (k * 37) % 70;
        const bg = cls === 'roadwork' ? {r: 140 + jitter, g: 80 + (k % 40), b: 60 + (k % 50)} : {r: 60 + (k % 50), g: 80 + (k % 40), b: 140 + jitter};
        await sharp({create: {width: 24, height: 20, channels: 3, background: bg}}).png().toFile(path.join(dir, `${k}.png`));
      }
    }
  }
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-head-'));
  process.env.MLFLOW_TRACKING_URI = path.join(base, 'mlruns');
  data = path.join(base, 'data');
  extra = path.join(base, 'extra');
  await images(data, [['train', 12], ['val', 6]], 0);
  await images(extra, [['', 4]], 1000);
  modelDir = path.join(base, 'backbone');
  await mkdir(modelDir, {recursive: true});
  await writeFile(path.join(modelDir, 'model.onnx'), colourBackbone());
  await writeFile(path.join(modelDir, 'preprocessor_config.json'), JSON.stringify({do_resize: true, size: {height: 16, width: 16}, resample: 2, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]}, null, 2));
});

async function config(name: string, more = ''): Promise<string> {
  const file = path.join(base, `${name}.yaml`);
  await writeFile(
    file,
    `run-name: ${name}\nout: ${path.join(base, 'runs')}\nepochs: 12\nbatch-size: 4\nlr: 0.05\nseed: 4\nkeep-last: 20\nema: 0.9\nmax-grad-norm: 5\nexit-threshold: [0.8, 0.95]\n` +
      `dataset:\n  - {name: main, path: ${data}}\n  - {name: extra, path: ${extra}, split: val, weight: 2}\nmodel:\n  from: ${modelDir}\nfeatures:\n  batch-size: 2\n  shard-size: 2\n${more}`,
  );
  return file;
}

const hashOf = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');

describe('natix train with model.from (frozen backbone + head)', () => {
  let reference: {weights: string; calibration: string};

  it('trains a head that separates the classes, with per-source counts, per-epoch calibration and exit metrics', async () => {
    const r = await runNatix(['train', '--config', await config('ref'), '--json'], {timeoutMs: 240_000});
    expect(r.code, r.stderr).toBe(0);
    const result = r.json.result;
    expect(result.counts).toEqual([
      {name: 'main', weight: 1, train: 24, val: 12, trainByLabel: [12, 12], valByLabel: [6, 6]},
      {name: 'extra', weight: 2, train: 0, val: 8, trainByLabel: [], valByLabel: [4, 4]},
    ]);
    expect(result.extraction).toMatchObject({items: 44, computed: 44, cached: 0});
    const run = path.join(base, 'runs', 'ref');
    const history = (await readFile(path.join(run, 'history.csv'), 'utf8')).trim().split('\n');
    expect(history[0]).toBe(
      'epoch,lr,loss,accuracy,mcc,val_loss,val_accuracy,val_mcc,gap_mcc,val_ece,val_auc,val_precision,val_recall,val_exit_coverage_0.8,val_exit_accuracy_0.8,val_exit_coverage_0.95,val_exit_accuracy_0.95,val_mcc.main,val_accuracy.main,val_mcc.extra,val_accuracy.extra,seconds',
    );
    expect(history).toHaveLength(13);
    const last = result.history.at(-1);
    expect(last.val_mcc).toBeGreaterThan(0.9);
    expect(last['val_mcc.extra']).toBeGreaterThan(0.9);
    const calibration = JSON.parse(await readFile(path.join(run, 'calibration.json'), 'utf8'));
    expect(calibration.temperature).toBeGreaterThan(0);
    expect(calibration.nllAfter).toBeLessThanOrEqual(calibration.nllBefore + 1e-12);
    reference = {weights: await hashOf(path.join(run, 'epoch-0012', 'weights.bin')), calibration: JSON.stringify(calibration)};
    // A second run of the same data reuses nothing from another run folder, but a rerun of the extraction in this
    // one is free: every shard verifies.
    const inspect = await runNatix(['train', '--config', await config('ref'), '--inspect'], {timeoutMs: 60_000});
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toMatch(/Features: +"feature_map" - output "feature_map", shape per image \[1, 4, 16, 16\]/);
    expect(inspect.stdout).toMatch(/Pooling: +mean -> 4 features per image/);
  }, 240_000);

  it('exports the original graph + pooling + head + temperature; logits agree with the training path on real images', async () => {
    const run = path.join(base, 'runs', 'ref');
    const r = await runNatix(['export', run, '--json'], {timeoutMs: 120_000});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.verification).toMatchObject({compared: 'logits', images: 'validation', passed: true, inputs: 20});
    expect(r.json.result.verification.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    const out = path.join(run, 'export');
    expect(await readFile(path.join(out, 'preprocessor_config.json'), 'utf8')).toBe(await readFile(path.join(modelDir, 'preprocessor_config.json'), 'utf8'));
    const cfg = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.id2label).toEqual({0: 'None', 1: 'Roadwork'});
    expect(JSON.parse(await readFile(path.join(out, 'model_card.json'), 'utf8'))).toMatchObject({version: '1.0.0', model_name: 'ref'});
    // The rest of natix runs it as is.
    const image = path.join(data, 'val', 'roadwork', (await readdir(path.join(data, 'val', 'roadwork')))[0]!);
    const inference = await runNatix(['test-inference', '--model', out, '--image', image, '--json'], {timeoutMs: 60_000});
    expect(inference.code, inference.stderr + inference.stdout).toBe(0);
    expect(inference.json.result.roadwork).toBe(true);
  }, 180_000);

  it('SIGKILL during feature extraction and during head training: the resumed run equals the uninterrupted one bit for bit', async () => {
    const cfg = await config('killed');
    const run = path.join(base, 'runs', 'killed');
    const shards = async (): Promise<number> => {
      const dirs = await readdir(path.join(run, 'features')).catch(() => [] as string[]);
      return dirs.length ? (await readdir(path.join(run, 'features', dirs[0]!))).filter((f) => f.endsWith('.f32')).length : 0;
    };
    const checkpoints = async (): Promise<number> => (await readdir(run).catch(() => [] as string[])).filter((n) => /^epoch-\d+$/.test(n)).length;
    // 1: killed once a few shards exist (mid-extraction); 2: killed once 3 epochs are checkpointed.
    for (const [k, ready] of [async () => (await shards()) >= 4, async () => (await checkpoints()) >= 3].entries()) {
      const child = spawnNatix(['train', '--no-tracking', '--config', cfg, ...(k > 0 ? ['--resume'] : [])]);
      const poll = setInterval(async () => {
        if (await ready()) {
          clearInterval(poll);
          child.kill('SIGKILL');
        }
      }, 3);
      const result = await child.done;
      clearInterval(poll);
      expect(result.signal === 'SIGKILL' || result.code === 0, result.stderr).toBe(true);
    }
    expect(await shards()).toBeGreaterThanOrEqual(4);
    const final = await runNatix(['train', '--no-tracking', '--config', cfg, '--resume', '--json'], {timeoutMs: 240_000});
    expect(final.code, final.stderr).toBe(0);
    expect(await hashOf(path.join(run, 'epoch-0012', 'weights.bin'))).toBe(reference.weights);
    expect(JSON.stringify(JSON.parse(await readFile(path.join(run, 'calibration.json'), 'utf8')))).toBe(reference.calibration);
  }, 300_000);

  it('a corrupt feature shard is recomputed, never used; exit 2 for a dimension mismatch and a changed model on resume', async () => {
    const cfg = await config('guards', 'epochs: 2\n');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('epochs: 12\n', ''));
    const first = await runNatix(['train', '--no-tracking', '--config', cfg, '--json'], {timeoutMs: 120_000});
    expect(first.code, first.stderr).toBe(0);
    const run = path.join(base, 'runs', 'guards');
    const featureDir = path.join(run, 'features', (await readdir(path.join(run, 'features')))[0]!);
    const shard = path.join(featureDir, (await readdir(featureDir))[0]!);
    const bytes = await readFile(shard);
    bytes[bytes.length - 1]! ^= 0x40;
    await writeFile(shard, bytes);
    // Resume with more epochs: the shard fails its checksum, is recomputed, and training goes on.
    const resumed = await runNatix(['train', '--no-tracking', '--config', cfg, '--resume', '--epochs', '3', '--json'], {timeoutMs: 120_000});
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.stringify(resumed.json.warnings)).toMatch(/rejected \(checksum mismatch\): recomputing it/);
    expect(resumed.json.result.extraction).toMatchObject({shardsRejected: 1, computed: 2});
    // The run's features changed shape (pool none: 4 x 16 x 16 per image): the head cannot be resumed.
    const runConfig = path.join(run, 'config.json');
    const saved = await readFile(runConfig, 'utf8');
    await writeFile(runConfig, saved.replace('"pool": "auto"', '"pool": "none"'));
    const mismatch = await runNatix(['train', '--no-tracking', '--config', cfg, '--resume', '--epochs', '4', '--json'], {timeoutMs: 120_000});
    expect(mismatch.code).toBe(2);
    expect(mismatch.json.code ?? mismatch.json.error?.code).toBe('HEAD_DIMENSION_MISMATCH');
    await writeFile(runConfig, saved);
    // The backbone file changed since the run started (one bias of the Conv changed in place).
    const model = await readFile(path.join(modelDir, 'model.onnx'));
    const changed = Buffer.from(model);
    changed.writeFloatLE(2, changed.indexOf(Buffer.from(new Float32Array([1, 1, 1, 3]).buffer)));
    await writeFile(path.join(modelDir, 'model.onnx'), changed);
    const moved = await runNatix(['train', '--no-tracking', '--config', cfg, '--resume', '--epochs', '4', '--json'], {timeoutMs: 120_000});
    await writeFile(path.join(modelDir, 'model.onnx'), model);
    expect(moved.code).toBe(2);
    expect(moved.json.code ?? moved.json.error?.code).toBe('MODEL_CHANGED');
  }, 300_000);

  it('exit 2 for a model without a preprocessor config and one whose feature tensor cannot be found', async () => {
    const bare = path.join(base, 'bare.onnx');
    await writeFile(bare, colourBackbone());
    const cfg = path.join(base, 'bare.yaml');
    await writeFile(cfg, `out: ${path.join(base, 'runs')}\ndataset:\n  path: ${data}\nmodel:\n  from: ${bare}\n`);
    const r = await runNatix(['train', '--config', cfg, '--inspect', '--json'], {timeoutMs: 60_000});
    expect(r.code).toBe(2);
    expect(JSON.stringify(r.json)).toMatch(/MODEL_PREPROCESSOR_MISSING/);
    const features = path.join(base, 'features.yaml');
    await writeFile(features, `out: ${path.join(base, 'runs')}\ndataset:\n  path: ${data}\nmodel:\n  from: ${modelDir}\n  features: no_such_value\n`);
    const f = await runNatix(['train', '--config', features, '--inspect', '--json'], {timeoutMs: 60_000});
    expect(f.code).toBe(2);
    expect(JSON.stringify(f.json)).toMatch(/FEATURES_NOT_FOUND/);
  }, 120_000);
});

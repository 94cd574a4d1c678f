/**
 * natix train with model.train last:N on a backbone, end to end: fine-tuning the last block learns what a head on
 * frozen features cannot; a run killed with SIGKILL resumes bit-identical; the export is the user's graph with the
 * trained initializers replaced, verified on logits in onnxruntime, and the rest of natix runs it.
 */
import {createHash} from 'node:crypto';
import {mkdir, mkdtemp, readFile, readdir, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {readOnnxModel} from '../../src/lib/onnx/decode.js';
import {encodeOnnxModel} from '../../src/lib/onnx/model.js';
import {SeededRandom} from '../../src/lib/util/random.js';
import {runNatix, spawnNatix} from '../helpers/cli.js';
import {stripesBackbone} from '../helpers/stripes-backbone.js';

const VIT = new URL('../fixtures/models/tiny-vit', import.meta.url).pathname;
let base: string;

/** 8x8 stripes: `roadwork` horizontal, `none` vertical, random phase and noise; the same mean brightness. */
async function stripeImages(root: string, perClass: Record<string, number>, seed: number): Promise<void> {
  const rng = new SeededRandom(seed);
  for (const [split, n] of Object.entries(perClass)) {
    for (const [label, cls] of ['none', 'roadwork'].entries()) {
      const dir = path.join(root, split, cls);
      await mkdir(dir, {recursive: true});
      for (let i = 0; i < n; i++) {
        const phase = rng.int(2);
        const pixels = Buffer.alloc(8 * 8 * 3);
        for (let r = 0; r < 8; r++) {
          for (let c = 0; c < 8; c++) {
            const on = ((label === 1 ? r : c) + phase) % 2 === 0;
            const v = Math.max(0, Math.min(255, Math.round((on ? 220 : 30) + 8 * rng.normal())));
            pixels.fill(v, (r * 8 + c) * 3, (r * 8 + c) * 3 + 3);
          }
        }
        await sharp(pixels, {raw: {width: 8, height: 8, channels: 3}}).png().toFile(path.join(dir, `${seed}-${i}.png`));
      }
    }
  }
}

/** Colour patches (as the head e2e): red-ish roadwork, blue-ish none. */
async function colourImages(root: string, perClass: Record<string, number>): Promise<void> {
  let k = 0;
  for (const [split, n] of Object.entries(perClass)) {
    for (const cls of ['roadwork', 'none'] as const) {
      const dir = path.join(root, split, cls);
      await mkdir(dir, {recursive: true});
      for (let i = 0; i < n; i++, k++) {
        const j = (k * 37) % 70;
        const bg = cls === 'roadwork' ? {r: 140 + j, g: 80 + (k % 40), b: 60 + (k % 50)} : {r: 60 + (k % 50), g: 80 + (k % 40), b: 140 + j};
        await sharp({create: {width: 40, height: 36, channels: 3, background: bg}}).png().toFile(path.join(dir, `${k}.png`));
      }
    }
  }
}

const hashOf = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-fine-tune-'));
  await stripeImages(path.join(base, 'stripes'), {train: 32, val: 16}, 1);
  const backbone = path.join(base, 'stripes-backbone');
  await mkdir(backbone, {recursive: true});
  await writeFile(path.join(backbone, 'model.onnx'), encodeOnnxModel(stripesBackbone(3)));
  await writeFile(path.join(backbone, 'preprocessor_config.json'), JSON.stringify({do_resize: true, size: {height: 8, width: 8}, resample: 0, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5]}));
  await colourImages(path.join(base, 'colours'), {train: 16, val: 8});
});

describe('natix train model.train: last:N', () => {
  it('last:1 learns a task the frozen features cannot separate; the head alone stays near chance', async () => {
    const cfg = async (name: string, train: string): Promise<string> => {
      const file = path.join(base, `${name}.yaml`);
      await writeFile(file, `run-name: ${name}\nout: ${path.join(base, 'runs')}\nepochs: 20\nbatch-size: 16\nlr: 0.05\nseed: 2\ndataset:\n  path: ${path.join(base, 'stripes')}\nmodel:\n  from: ${path.join(base, 'stripes-backbone')}\n  train: ${train}\n${train === 'head' ? '' : 'backbone-lr: 0.05\n'}`);
      return file;
    };
    const head = await runNatix(['train', '--no-tracking', '--config', await cfg('stripes-head', 'head'), '--json'], {timeoutMs: 180_000});
    expect(head.code, head.stderr).toBe(0);
    const tuned = await runNatix(['train', '--no-tracking', '--config', await cfg('stripes-last1', 'last:1'), '--json'], {timeoutMs: 180_000});
    expect(tuned.code, tuned.stderr).toBe(0);
    expect(tuned.json.result.train).toMatchObject({scope: 'last:1', trainFrom: 'stem', backboneParameters: 20});
    const best = (r: typeof head): number => Math.max(...r.json.result.history.map((h: {val_mcc: number}) => h.val_mcc));
    expect(best(head)).toBeLessThan(0.5);
    expect(best(tuned)).toBeGreaterThan(0.9);
  }, 360_000);

  it('an op the executor lacks in the trained part is exit 2 naming the op, the node and the model, before any data is read', async () => {
    const spec = stripesBackbone(3);
    const at = spec.nodes.findIndex((n) => n.name === '/blocks/blocks.0/Relu');
    spec.nodes.splice(at + 1, 0, {name: '/blocks/blocks.0/Sin', opType: 'Sin', inputs: ['b0r'], outputs: ['b0s']});
    spec.nodes.find((n) => n.name === '/blocks/blocks.0/pool/GlobalAveragePool')!.inputs = ['b0s'];
    const dir = path.join(base, 'sin-backbone');
    await mkdir(dir, {recursive: true});
    await writeFile(path.join(dir, 'model.onnx'), encodeOnnxModel(spec));
    await writeFile(path.join(dir, 'preprocessor_config.json'), await readFile(path.join(base, 'stripes-backbone', 'preprocessor_config.json')));
    const file = path.join(base, 'sin.yaml');
    await writeFile(file, `run-name: sin\nout: ${path.join(base, 'runs')}\ndataset:\n  path: ${path.join(base, 'stripes')}\nmodel:\n  from: ${dir}\n  train: last:1\n`);
    const r = await runNatix(['train', '--no-tracking', '--config', file, '--json'], {timeoutMs: 120_000});
    expect(r.code).toBe(2);
    expect(r.json.code).toBe('ONNX_EXEC_UNSUPPORTED_OP');
    expect(r.json.message).toMatch(/model\.onnx: op Sin is not supported by natix's ONNX executor \(first at node \/blocks\/blocks\.0\/Sin\)/);
    // The head alone needs no executor: the same model trains.
    await writeFile(file, (await readFile(file, 'utf8')).replace('train: last:1', 'train: head').replace('run-name: sin', 'run-name: sin-head\nepochs: 1'));
    const head = await runNatix(['train', '--no-tracking', '--config', file, '--json'], {timeoutMs: 120_000});
    expect(head.code, head.stderr).toBe(0);
  }, 240_000);

  it('a torch-exported ResNet (BatchNorm folded into its convolutions by torch.onnx) trains last:1 on two threads and exports verified on logits', async () => {
    const dir = path.join(base, 'tiny-resnet');
    await mkdir(dir, {recursive: true});
    await writeFile(path.join(dir, 'model.onnx'), await readFile(new URL('../fixtures/models/tiny-resnet.onnx', import.meta.url)));
    await writeFile(path.join(dir, 'preprocessor_config.json'), await readFile(path.join(VIT, 'preprocessor_config.json')));
    const file = path.join(base, 'resnet.yaml');
    await writeFile(file, `run-name: resnet\nout: ${path.join(base, 'runs')}\nepochs: 2\nbatch-size: 8\nmicro-batch: 2\ngradient-threads: 2\nlr: 0.01\nseed: 4\ndataset:\n  path: ${path.join(base, 'colours')}\nmodel:\n  from: ${dir}\n  train: last:1\n`);
    const r = await runNatix(['train', '--no-tracking', '--config', file, '--json'], {timeoutMs: 240_000});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.train).toMatchObject({scope: 'last:1', prefixDevice: 'cpu', gradientThreads: 2});
    expect(r.json.result.train.trainFrom).toBe('/Relu_output_0'); // after the residual join: the `down` block trains
    const exported = await runNatix(['export', path.join(base, 'runs', 'resnet'), '--json'], {timeoutMs: 120_000});
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.json.result.verification).toMatchObject({compared: 'logits', passed: true});
    expect(exported.json.result.verification.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    // The trained block's filter and bias moved; nothing before the cut (stem, residual block `a`) did.
    const original = new Map(((await readOnnxModel(path.join(dir, 'model.onnx'))).spec.initializers ?? []).map((t) => [t.name, t]));
    const trained = (await readOnnxModel(path.join(base, 'runs', 'resnet', 'export', 'model.onnx'))).spec.initializers ?? [];
    const moved = trained.filter((t) => original.has(t.name) && t.type === 'float' && Array.from(t.data as Float32Array).some((v, i) => v !== (original.get(t.name)!.data as Float32Array)[i])).map((t) => t.name);
    expect(moved.sort()).toEqual(['onnx::Conv_53', 'onnx::Conv_54']);
  }, 360_000);

  describe('on a torch-exported ViT (tiny-vit fixture)', () => {
    const config = async (name: string, more = ''): Promise<string> => {
      const file = path.join(base, `${name}.yaml`);
      await writeFile(file, `run-name: ${name}\nout: ${path.join(base, 'runs')}\nepochs: 4\nbatch-size: 8\nlr: 0.01\nseed: 3\nkeep-last: 10\nema: 0.9\nmax-grad-norm: 5\nmicro-batch: 3\ndataset:\n  path: ${path.join(base, 'colours')}\nmodel:\n  from: ${VIT}\n  train: last:1\n${more}`);
      return file;
    };
    let reference = '';

    it('trains the last block with the head and exports the same graph with the trained initializers (logits verified)', async () => {
      const r = await runNatix(['train', '--no-tracking', '--config', await config('vit-ref', 'gradient-threads: 2\n'), '--json'], {timeoutMs: 240_000});
      expect(r.code, r.stderr).toBe(0);
      const {boundaryCache, ...train} = r.json.result.train;
      expect(train).toEqual({scope: 'last:1', trainFrom: '/blocks.0/Add_2_output_0', backboneParameters: 8608, prefixDevice: 'cpu', microBatch: 3, backboneLr: 0.001, gradientThreads: 2});
      // The boundary cache (on by default): every training image computed once, read back in epochs 2-4.
      const cached = path.join(base, 'runs', 'vit-ref', 'boundary');
      expect((await readdir(path.join(cached, (await readdir(cached))[0]!))).length).toBe(boundaryCache.misses);
      expect(boundaryCache).toEqual({misses: 32, hits: 3 * 32, rejected: 0});
      expect(r.json.result.extraction).toMatchObject({items: 0});
      const run = path.join(base, 'runs', 'vit-ref');
      reference = await hashOf(path.join(run, 'epoch-0004', 'weights.bin'));
      const names = (JSON.parse(await readFile(path.join(run, 'epoch-0004', 'weights.json'), 'utf8')) as Array<{name: string}>).map((a) => a.name);
      expect(names.filter((n) => n.startsWith('onnx:')).length).toBe(14);
      expect(names.filter((n) => n.startsWith('ema/onnx:')).length).toBe(14);

      const exported = await runNatix(['export', run, '--json'], {timeoutMs: 120_000});
      expect(exported.code, exported.stderr).toBe(0);
      expect(exported.json.result.verification).toMatchObject({compared: 'logits', passed: true, images: 'validation', inputs: 16});
      expect(exported.json.result.verification.maxAbsDiff).toBeLessThanOrEqual(1e-4);
      // The export is the user's graph: same node types in order up to the features, the trained values differ.
      const original = (await readOnnxModel(path.join(VIT, 'model.onnx'))).spec;
      const model = (await readOnnxModel(path.join(run, 'export', 'model.onnx'))).spec;
      const init = new Map((model.initializers ?? []).map((t) => [t.name, t]));
      const changed = (original.initializers ?? []).filter((t) => init.has(t.name) && t.type === 'float' && Array.from(t.data as Float32Array).some((v, i) => v !== (init.get(t.name)!.data as Float32Array)[i]));
      expect(changed.length).toBeGreaterThan(0);
      // The frozen prefix (block 0) is untouched.
      expect(changed.filter((t) => /^blocks\.0\./.test(t.name))).toEqual([]);
      const card = JSON.parse(await readFile(path.join(run, 'export', 'config.json'), 'utf8'));
      expect(card.natix.backbone).toMatchObject({train: 'last:1', trainFrom: '/blocks.0/Add_2_output_0'});
      const image = path.join(base, 'colours', 'val', 'roadwork', (await readdir(path.join(base, 'colours', 'val', 'roadwork')))[0]!);
      const inference = await runNatix(['test-inference', '--model', path.join(run, 'export'), '--image', image, '--json'], {timeoutMs: 60_000});
      expect(inference.code, inference.stderr + inference.stdout).toBe(0);
    }, 360_000);

    it('without the boundary cache (decoding and the frozen prefix every epoch) the run ends with the same bits', async () => {
      const r = await runNatix(['train', '--no-tracking', '--config', await config('vit-nocache', 'boundary-cache: false\n'), '--json'], {timeoutMs: 240_000});
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.result.train.boundaryCache).toBe('off');
      expect(await readdir(path.join(base, 'runs', 'vit-nocache'))).not.toContain('boundary');
      expect(await hashOf(path.join(base, 'runs', 'vit-nocache', 'epoch-0004', 'weights.bin'))).toBe(reference);
    }, 360_000);

    it('SIGKILL during fine-tuning on one thread, resumed on three: equals the uninterrupted two-thread run bit for bit', async () => {
      const cfg = await config('vit-killed', 'gradient-threads: 1\n');
      const run = path.join(base, 'runs', 'vit-killed');
      const checkpoints = async (): Promise<number> => (await readdir(run).catch(() => [] as string[])).filter((n) => /^epoch-\d+$/.test(n)).length;
      const child = spawnNatix(['train', '--no-tracking', '--config', cfg]);
      const poll = setInterval(async () => {
        if ((await checkpoints()) >= 2) {
          clearInterval(poll);
          child.kill('SIGKILL');
        }
      }, 3);
      const result = await child.done;
      clearInterval(poll);
      expect(result.signal, result.stderr).toBe('SIGKILL');
      expect(await checkpoints()).toBeLessThan(4);
      // Gradients are added in micro-batch order whichever thread computed them: the thread count never changes a bit.
      await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('gradient-threads: 1', 'gradient-threads: 3'));
      // A damaged boundary-cache file is recomputed, never used.
      const cacheDir = path.join(run, 'boundary', (await readdir(path.join(run, 'boundary')))[0]!);
      const damaged = path.join(cacheDir, (await readdir(cacheDir)).sort()[0]!);
      const bytes = await readFile(damaged);
      bytes[bytes.length - 1]! ^= 0xff;
      await writeFile(damaged, bytes);
      const final = await runNatix(['train', '--no-tracking', '--config', cfg, '--resume', '--json'], {timeoutMs: 240_000});
      expect(final.code, final.stderr).toBe(0);
      expect(final.json.result.train.gradientThreads).toBe(3);
      expect(final.json.result.train.boundaryCache.rejected).toBe(1);
      expect(final.json.warnings.join('\n')).toMatch(/Boundary cache: \S+\.f32 checksum mismatch; recomputing it/);
      expect(await hashOf(path.join(run, 'epoch-0004', 'weights.bin'))).toBe(reference);
      // Like the threads, the boundary cache is this machine's setting, not the run's: a resume may turn it off.
      await writeFile(cfg, `${await readFile(cfg, 'utf8')}boundary-cache: false\n`);
      const off = await runNatix(['train', '--no-tracking', '--config', cfg, '--resume', '--epochs', '5', '--json'], {timeoutMs: 240_000});
      expect(off.code, off.stderr).toBe(0);
      expect(off.json.result.train.boundaryCache).toBe('off');
      // A resume that changes what trains is refused.
      const other = await config('vit-killed', 'epochs: 5\n');
      await writeFile(other, (await readFile(other, 'utf8')).replace('epochs: 4\n', '').replace('train: last:1', 'train: last:2'));
      const changed = await runNatix(['train', '--no-tracking', '--config', other, '--resume', '--json'], {timeoutMs: 120_000});
      expect(changed.code).toBe(2);
      expect(JSON.stringify(changed.json)).toMatch(/TRAIN_SCOPE_CHANGED/);
    }, 360_000);
  });
});

/**
 * `test-inference --explain-preprocessing` on a Hugging Face directory (the PyTorch-exported tiny ViT fixture with
 * a BiT-style preprocessor config): the resolved steps for the image's own size, and warnings naming what natix
 * does not reproduce of a preprocessor config.
 */
import {cp, mkdtemp, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {beforeAll, describe, expect, it} from 'vitest';
import {runNatix} from '../helpers/cli.js';

const IMAGE = path.resolve('test/fixtures/pillow/d-640x360.jpg');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-explain-'));
  await cp(path.resolve('test/fixtures/models/tiny-vit'), path.join(dir, 'vit'), {recursive: true});
  await cp(path.resolve('test/fixtures/models/tiny-vit'), path.join(dir, 'odd'), {recursive: true});
  const config = JSON.parse(await readFile(path.join(dir, 'odd', 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(dir, 'odd', 'preprocessor_config.json'), JSON.stringify({...config, image_processor_type: 'MobileViTImageProcessor', do_flip_channel_order: true}));
});

describe('natix test-inference --explain-preprocessing', () => {
  it('prints the resolved steps for the image: resize with the Pillow filter, crop box, rescale, mean/std', async () => {
    const r = await runNatix(['test-inference', '--image', IMAGE, '--model', path.join(dir, 'vit'), '--explain-preprocessing', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [explained] = r.json.result.preprocessing;
    expect(explained).toMatchObject({resampler: 'pillow', warnings: []});
    expect(explained.source).toMatch(/BitImageProcessor/);
    const steps = explained.steps.join('\n');
    // shortest_edge 36: 640x360 -> int(36 * 640 / 360) = 64 x 36; crop 32x32 at ((36 - 32) // 2, (64 - 32) // 2).
    expect(steps).toMatch(/decode at full resolution/);
    expect(steps).toMatch(/resize 640x360 -> 64x36 with Pillow BICUBIC \(3\), reducing_gap=None \(bit-exact\)/);
    expect(steps).toMatch(/centre crop 32x32 at left 16, top 2/);
    expect(steps).toMatch(/\(x - \[0.485, 0.456, 0.406\]\) \/ \[0.229, 0.224, 0.225\]/);
    const human = await runNatix(['test-inference', '--image', IMAGE, '--model', path.join(dir, 'vit'), '--explain-preprocessing']);
    expect(human.stdout).toContain('preprocessing of model');
  });

  it('an unknown processor type and a pixel-changing key it cannot reproduce are warned about, by name', async () => {
    const r = await runNatix(['test-inference', '--image', IMAGE, '--model', path.join(dir, 'odd'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.json.warnings.join('\n');
    expect(warnings).toMatch(/MobileViTImageProcessor/);
    expect(warnings).toMatch(/do_flip_channel_order/);
  });
});

/** natix train with model.train / model.train-from on a backbone: --inspect lists the blocks; bad scopes exit 2. */
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {runNatix} from '../helpers/cli.js';

const VIT = new URL('../fixtures/models/tiny-vit', import.meta.url).pathname;
let base: string;

async function config(name: string, model: string, extra = ''): Promise<string> {
  const file = path.join(base, `${name}.yaml`);
  await writeFile(file, `out: ${path.join(base, 'runs')}\ndataset:\n  path: ${path.join(base, 'data')}\n${extra}model:\n${model}`);
  return file;
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-train-scope-'));
  for (const cls of ['roadwork', 'none']) {
    await mkdir(path.join(base, 'data', cls), {recursive: true});
    for (let i = 0; i < 4; i++) await sharp({create: {width: 40, height: 36, channels: 3, background: {r: cls === 'none' ? 40 : 200, g: 90 + 10 * i, b: 90}}}).png().toFile(path.join(base, 'data', cls, `${i}.png`));
  }
});

describe('natix train model.train', () => {
  it('--inspect lists the blocks and the value last:N starts from', async () => {
    const r = await runNatix(['train', '--config', await config('last1', `  from: ${VIT}\n  train: last:1\n`), '--inspect', '--json'], {timeoutMs: 60_000});
    expect(r.code, r.stderr).toBe(0);
    const {blocks, trainFrom} = r.json.result;
    expect(blocks.map((b: {name: string}) => b.name)).toEqual(['blocks.0', 'blocks.1']);
    expect(trainFrom).toBe(blocks[1].from);
    const text = await runNatix(['train', '--config', await config('last2', `  from: ${VIT}\n  train: last:2\n`), '--inspect'], {timeoutMs: 60_000});
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Blocks: +2 /);
    expect(text.stdout).toMatch(/last:1 +blocks\.1 +from "/);
    expect(text.stdout).toContain(`Trains from:   "${blocks[0].from}"`);
  }, 120_000);

  it('exit 2: more blocks than the graph has, a boundary that does not exist, bad values, no backbone', async () => {
    const tooMany = await runNatix(['train', '--config', await config('last3', `  from: ${VIT}\n  train: last:3\n`), '--inspect', '--json'], {timeoutMs: 60_000});
    expect(tooMany.code).toBe(2);
    expect(JSON.stringify(tooMany.json)).toMatch(/ONNX_NO_BLOCKS/);
    // A frozen boundary that does not exist: exit 2 before any image is read (the dataset folder does not even exist).
    const missing = await runNatix(['train', '--no-tracking', '--config', await config('missing', `  from: ${VIT}\n  train-from: no_such_value\n`), '--json'], {timeoutMs: 60_000});
    expect(missing.code).toBe(2);
    expect(JSON.stringify(missing.json)).toMatch(/ONNX_VALUE_NOT_FOUND/);
    const zero = await runNatix(['train', '--config', await config('zero', `  from: ${VIT}\n  train: last:0\n`), '--inspect', '--json'], {timeoutMs: 60_000});
    expect(zero.code).toBe(2);
    const both = await runNatix(['train', '--config', await config('both', `  from: ${VIT}\n  train: all\n  train-from: x\n`), '--inspect', '--json'], {timeoutMs: 60_000});
    expect(both.code).toBe(2);
    expect(JSON.stringify(both.json)).toMatch(/both say where training starts/);
    const zoo = await runNatix(['train', '--config', await config('zoo', '  architecture: tiny-cnn\n  train: last:1\n'), '--json'], {timeoutMs: 60_000});
    expect(zoo.code).toBe(2);
    expect(JSON.stringify(zoo.json)).toMatch(/set model.from/);
    const headLr = await runNatix(['train', '--config', await config('headlr', `  from: ${VIT}\n`, 'backbone-lr: 0.001\n'), '--inspect', '--json'], {timeoutMs: 60_000});
    expect(headLr.code).toBe(2);
    expect(JSON.stringify(headLr.json)).toMatch(/backbone-lr applies only/);
  }, 240_000);
});

import {copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Ajv} from 'ajv';
import fg from 'fast-glob';
import sharp from 'sharp';
import {beforeAll, describe, expect, it, onTestFinished} from 'vitest';
import {validateDataResultSchema} from '../../src/lib/config/schemas/validate-data.js';
import {lcg, pngBomb} from '../helpers/corrupt.js';
import {REPO_ROOT, runNatix} from '../helpers/cli.js';
import {NIGHT_HEIGHT, NIGHT_WIDTH, nightScene} from '../helpers/night-scenes.js';
import {natixShard} from '../helpers/parquet.js';
import {snapshot} from '../helpers/snapshot.js';

const SAMPLE = path.join(REPO_ROOT, 'datasets', 'sample');
let base: string;


const checksOf = (json: {result: {findings: Array<{check: string; path: string}>}}, file: string): string[] => json.result.findings.filter((f) => f.path === file).map((f) => f.check).sort();

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-vd-'));
});

describe('natix validate-data on class folders', () => {
  let root: string;
  let controls: string[];

  beforeAll(async () => {
    root = path.join(base, 'folders');
    const train = (await fg('train/*/*.jpg', {cwd: SAMPLE})).sort();
    controls = [];
    // Control images: sharp, clear sample photos, copied as they are.
    for (const f of train) {
      const meta = await sharp(path.join(SAMPLE, f)).stats();
      if (controls.length < 6 && meta.sharpness > 2) {
        await mkdir(path.join(root, path.dirname(f)), {recursive: true});
        await copyFile(path.join(SAMPLE, f), path.join(root, f));
        controls.push(f);
      }
    }
    const src = path.join(SAMPLE, controls[0]!);
    const put = async (rel: string, data: Buffer | Promise<Buffer>): Promise<void> => {
      await mkdir(path.dirname(path.join(root, rel)), {recursive: true});
      await writeFile(path.join(root, rel), await data);
    };
    const jpeg = await readFile(src);
    await put('train/none/dark.jpg', sharp(src).linear(0.15, 0).jpeg().toBuffer());
    await put('train/none/light.jpg', sharp(src).linear(0.05, 245).jpeg().toBuffer());
    await put('train/none/blurry.jpg', sharp(src).blur(3.2).jpeg().toBuffer());
    await put('train/none/flat.png', sharp({create: {width: 320, height: 180, channels: 3, background: '#6a8'}}).png().toBuffer());
    await put('train/none/grey.jpg', sharp(src).greyscale().toColourspace('srgb').jpeg().toBuffer());
    await put('train/none/wide.jpg', sharp(src).resize(400, 100, {fit: 'fill'}).jpeg().toBuffer());
    await put('train/none/tiny.jpg', sharp(src).resize(8, 6).jpeg().toBuffer());
    await put('train/none/huge.jpg', sharp(src).resize(2400, 1350).jpeg().toBuffer());
    await put('train/none/truncated.jpg', Promise.resolve(jpeg.subarray(0, Math.floor(jpeg.length * 0.6))));
    await put('train/none/empty.jpg', Promise.resolve(Buffer.alloc(0)));
    await put('train/none/random.jpg', Promise.resolve(Buffer.from(Array.from({length: 4096}, (_, i) => (i * 7919) % 251))));
    await put('train/none/actually-png.jpg', sharp(src).png().toBuffer());
    await put('train/none/bomb.png', Promise.resolve(pngBomb()));
    await put(`test/${controls[1]!.split('/').slice(1).join('/')}`, readFile(path.join(SAMPLE, controls[1]!))); // exact copy across splits
    await put(`val/${controls[2]!.split('/')[1]}/resized-copy.jpg`, sharp(path.join(SAMPLE, controls[2]!)).resize(200).jpeg({quality: 80}).toBuffer()); // near copy across splits, same class
    const otherClass = controls[3]!.split('/')[1] === 'none' ? 'roadwork' : 'none';
    await put(`train/${otherClass}/relabelled-copy.jpg`, sharp(path.join(SAMPLE, controls[3]!)).jpeg({quality: 70}).toBuffer()); // near copy, other class
    await symlink(path.join(base, 'outside-secret.jpg'), path.join(root, 'train', 'none', 'escape.jpg'));
    await writeFile(path.join(base, 'outside-secret.jpg'), jpeg);
  });

  it('flags each constructed problem, leaves the controls alone, never writes the dataset, and matches the schema', async () => {
    const before = await snapshot(root);
    const report = path.join(base, 'report.html');
    const quarantine = path.join(base, 'quarantine');
    const r = await runNatix(['validate-data', root, '--json', '--report', report, '--quarantine', quarantine]);
    expect(r.code, r.stderr).toBe(1);
    const ajv = new Ajv({strict: false, allowUnionTypes: true});
    expect(ajv.validate(validateDataResultSchema, r.json.result), JSON.stringify(ajv.errors)).toBe(true);
    const c = (f: string): string[] => checksOf(r.json, f);
    expect(c('train/none/dark.jpg')).toContain('dark');
    expect(c('train/none/light.jpg')).toContain('light');
    expect(c('train/none/blurry.jpg')).toContain('blurry');
    expect(c('train/none/flat.png')).toContain('low-information');
    expect(c('train/none/grey.jpg')).toContain('grayscale');
    expect(c('train/none/wide.jpg')).toContain('odd-aspect-ratio');
    expect(c('train/none/tiny.jpg')).toContain('too-small');
    expect(c('train/none/huge.jpg')).toContain('odd-size');
    expect(c('train/none/truncated.jpg')).toEqual(['unreadable']);
    expect(c('train/none/empty.jpg')).toEqual(['unreadable']);
    expect(c('train/none/random.jpg')).toEqual(['unreadable']);
    expect(c('train/none/actually-png.jpg')).toContain('extension-mismatch');
    expect(c('train/none/bomb.png')).toEqual(['too-large']);
    expect(c('train/none/escape.jpg')).toEqual(['path-escape']);
    const testCopy = `test/${controls[1]!.split('/').slice(1).join('/')}`;
    expect([...c(testCopy), ...c(controls[1]!)]).toEqual(expect.arrayContaining(['exact-duplicate', 'split-leak']));
    const resized = `val/${controls[2]!.split('/')[1]}/resized-copy.jpg`;
    expect([...c(resized), ...c(controls[2]!)]).toEqual(expect.arrayContaining(['near-duplicate', 'split-leak']));
    // The same picture under another label is a label conflict, not a leak.
    const relabelled = `train/${controls[3]!.split('/')[1] === 'none' ? 'roadwork' : 'none'}/relabelled-copy.jpg`;
    expect([...c(relabelled), ...c(controls[3]!)].sort()).toEqual(['label-conflict', 'near-duplicate']);
    for (const control of controls.slice(4)) expect(c(control)).toEqual([]);
    expect(r.json.result.summary.unreadable.count).toBe(3);
    expect(r.json.result.dataset).toMatchObject({format: 'folder'});
    // Never modified; the report and the quarantine exist outside it.
    expect(await snapshot(root)).toEqual(before);
    expect(await readFile(report, 'utf8')).toContain('data:image/jpeg;base64,');
    const manifest = JSON.parse(await readFile(path.join(quarantine, 'quarantine.json'), 'utf8'));
    expect(manifest.files.find((f: {path: string}) => f.path === 'train/none/dark.jpg').checks.map((x: {check: string}) => x.check)).toContain('dark');
    expect(await readFile(path.join(quarantine, 'files', 'train/none/dark.jpg'))).toEqual(await readFile(path.join(root, 'train/none/dark.jpg')));
  });

  it('--shard i/n then merge: the same report as one unsharded run (findings, statistics, verdict), whatever the shard count', async () => {
    const timing = (result: Record<string, unknown>): Record<string, unknown> => ({...result, seconds: 0, imagesPerSecond: 0});
    const whole = await runNatix(['validate-data', root, '--json']);
    expect(whole.code).toBe(1);
    expect(whole.json.result.findings.map((f: {check: string}) => f.check)).toEqual(expect.arrayContaining(['exact-duplicate', 'near-duplicate', 'split-leak', 'label-conflict', 'odd-size', 'path-escape', 'unreadable']));
    for (const n of [1, 3]) {
      const out = path.join(base, `shards-${n}`);
      const shards = await Promise.all(Array.from({length: n}, (_, i) => runNatix(['validate-data', root, '--shard', `${i + 1}/${n}`, '--shard-output', out, '--json'])));
      for (const shard of shards) expect(shard.code, shard.stderr).toBe(0);
      const sizes: number[] = shards.map((shard) => shard.json.result.dataset.images);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(whole.json.result.dataset.images);
      const files = (await fg('*.jsonl', {cwd: out, absolute: true})).sort().reverse(); // any order
      const merged = await runNatix(['validate-data', 'merge', ...files, '--json']);
      expect(merged.code, merged.stderr).toBe(1);
      expect(timing(merged.json.result)).toEqual(timing(whole.json.result));
    }
    // Not the shards of one run: refused with exit 2, naming what is wrong.
    const missing = await runNatix(['validate-data', 'merge', ...(await fg('*.jsonl', {cwd: path.join(base, 'shards-3'), absolute: true})).slice(1)]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing shard \d\/3/);
    const mixed = await runNatix(['validate-data', 'merge', ...(await fg('*.jsonl', {cwd: path.join(base, 'shards-3'), absolute: true})), path.join(base, 'shards-1', 'validate-shard-1-of-1.jsonl')]);
    expect(mixed.code).toBe(2);
    // Shards whose dark / light verdicts were decided differently are not one run either.
    const differing = path.join(base, 'shards-differing');
    await runNatix(['validate-data', root, '--shard', '1/2', '--shard-output', differing, '--no-exact-brightness']);
    await runNatix(['validate-data', root, '--shard', '2/2', '--shard-output', differing]);
    const refused = await runNatix(['validate-data', 'merge', ...(await fg('*.jsonl', {cwd: differing, absolute: true}))]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/other options \(.*--exact-brightness\)/);
    expect((await runNatix(['validate-data', root, '--shard', '4/3'])).code).toBe(2);
  }, 240_000);

  it('--fail-on never exits 0; a severity set to off hides a check; a bad config is exit 2 naming the key', async () => {
    const config = path.join(base, 'vd.yaml');
    await writeFile(config, 'fail-on: never\nseverities:\n  dark: off\nthresholds:\n  blurry: 30\n');
    const r = await runNatix(['validate-data', root, '--config', config, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.summary.dark).toBeUndefined();
    await writeFile(config, 'thresholds:\n  dark: 3\n');
    const bad = await runNatix(['validate-data', root, '--config', config]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('vd.yaml: /thresholds/dark must be <= 1');
  });
});

describe('natix validate-data on the bundled sample', () => {
  it('passes: no leaks or label conflicts between its different scenes, and its 60/20/20 split is not "unusual"', async () => {
    const r = await runNatix(['validate-data', SAMPLE, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const checks = new Set(r.json.result.findings.map((f: {check: string}) => f.check));
    for (const check of ['split-leak', 'label-conflict', 'near-duplicate', 'exact-duplicate', 'split-ratio']) expect(checks.has(check), check).toBe(false);
    expect(r.json.result.verdict).toBe('pass');
  });

  it('split-ratio: a declared expectation is checked; without one, only unusual shares are flagged', async () => {
    const config = path.join(base, 'splits.yaml');
    await writeFile(config, 'expected-splits: {train: 0.8, val: 0.1, test: 0.1}\n');
    const r = await runNatix(['validate-data', SAMPLE, '--json', '--config', config]);
    const ratio = r.json.result.findings.filter((f: {check: string}) => f.check === 'split-ratio').map((f: {message: string}) => f.message);
    expect(ratio).toEqual([expect.stringContaining('split "train" holds 60.0% of images, expected about 80%')]);
  });
});

describe('natix validate-data on manifests, YOLO, COCO and parquet', () => {
  it('manifest and COCO paths that escape the root are reported and never opened', async () => {
    const root = path.join(base, 'manifest');
    await mkdir(path.join(root, 'img'), {recursive: true});
    await copyFile(path.join(SAMPLE, (await fg('test/*/*.jpg', {cwd: SAMPLE}))[0]!), path.join(root, 'img', 'a.jpg'));
    await writeFile(path.join(root, 'manifest.csv'), 'path,label,split\nimg/a.jpg,1,train\n../../etc/passwd,0,train\n/etc/passwd,0,val\nimg/a.jpg,,test\n');
    const r = await runNatix(['validate-data', root, '--json']);
    expect(r.code).toBe(1);
    const checks = r.json.result.findings.map((f: {check: string}) => f.check);
    expect(checks.filter((c: string) => c === 'path-escape')).toHaveLength(2);
    expect(checks).toContain('label-missing');

    const coco = path.join(base, 'coco');
    await mkdir(path.join(coco, 'annotations'), {recursive: true});
    await mkdir(path.join(coco, 'images'), {recursive: true});
    await copyFile(path.join(root, 'img', 'a.jpg'), path.join(coco, 'images', 'a.jpg'));
    await writeFile(
      path.join(coco, 'annotations', 'instances_train.json'),
      JSON.stringify({
        images: [{id: 1, file_name: 'images/a.jpg', width: 320, height: 180}, {id: 2, file_name: '../../etc/passwd', width: 10, height: 10}],
        annotations: [
          {id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20]},
          {id: 2, image_id: 1, category_id: 9, bbox: [10, 10, 20, 20]},
          {id: 3, image_id: 1, category_id: 1, bbox: [300, 10, 50, 20]},
          {id: 4, image_id: 1, category_id: 1, bbox: [5, 5, 0, 4]},
          {id: 5, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20]},
          {id: 6, image_id: 42, category_id: 1, bbox: [1, 1, 2, 2]},
        ],
        categories: [{id: 1, name: 'Cone'}],
      }),
    );
    const rc = await runNatix(['validate-data', coco, '--json']);
    expect(rc.json.result.dataset.format).toBe('coco');
    const cc = rc.json.result.findings.map((f: {check: string}) => f.check).sort();
    expect(cc).toEqual(expect.arrayContaining(['path-escape', 'label-class-unknown', 'box-out-of-bounds', 'box-degenerate', 'duplicate-box', 'label-malformed']));
  });

  it('YOLO label checks: malformed rows, unknown classes, out-of-bounds, degenerate and duplicate boxes', async () => {
    const root = path.join(base, 'yolo');
    await mkdir(path.join(root, 'images', 'train'), {recursive: true});
    await mkdir(path.join(root, 'labels', 'train'), {recursive: true});
    const src = path.join(SAMPLE, (await fg('test/*/*.jpg', {cwd: SAMPLE}))[0]!);
    for (const n of ['a', 'b']) await copyFile(src, path.join(root, 'images', 'train', `${n}.jpg`));
    await writeFile(path.join(root, 'data.yaml'), 'path: .\ntrain: images/train\nnames:\n  0: Cone\n  1: Drum\n');
    await writeFile(path.join(root, 'labels', 'train', 'a.txt'), '0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n1 0.95 0.5 0.3 0.2\n1 0.5 0.5 0 0.2\n0 0.5 abc 0.1 0.1\n0 0.5 0.5 0.1\n');
    const r = await runNatix(['validate-data', root, '--json']);
    expect(r.json.result.dataset.format).toBe('yolo');
    const byLine = r.json.result.findings.filter((f: {path: string}) => f.path === 'labels/train/a.txt').map((f: {check: string}) => f.check).sort();
    expect(byLine).toEqual(['box-degenerate', 'box-out-of-bounds', 'duplicate-box', 'label-class-unknown', 'label-malformed', 'label-malformed']);
  });

  it('NATIX parquet: rows streamed, <file>#<row> paths, the description rule and video leaks', async () => {
    const root = path.join(base, 'parquet');
    await mkdir(path.join(root, 'data'), {recursive: true});
    const jpeg = new Uint8Array(await readFile(path.join(SAMPLE, (await fg('test/*/*.jpg', {cwd: SAMPLE})).sort()[3]!)));
    const other = new Uint8Array(await readFile(path.join(SAMPLE, (await fg('test/*/*.jpg', {cwd: SAMPLE})).sort()[60]!)));
    const shard = (rows: Array<{img: Uint8Array; label: number; desc: string; vid: string}>): Uint8Array => natixShard(rows.map((r) => ({image: r.img, label: r.label, description: r.desc, videoId: r.vid})), 2);
    await writeFile(path.join(root, 'data', 'train-00000-of-00001.parquet'), shard([
      {img: jpeg, label: 1, desc: 'cones on the right', vid: 'v1'},
      {img: other, label: 1, desc: '', vid: 'v2'},
      {img: jpeg.subarray(0, 100), label: 0, desc: '', vid: 'v3'},
    ]));
    await writeFile(path.join(root, 'data', 'test-00000-of-00001.parquet'), shard([{img: other, label: 0, desc: 'a barrier', vid: 'v1'}]));
    const r = await runNatix(['validate-data', root, '--json']);
    expect(r.json.result.dataset).toMatchObject({format: 'parquet', images: 4, splits: {train: 3, test: 1}});
    const f = (p: string): string[] => checksOf(r.json, p);
    expect(f('data/train-00000-of-00001.parquet#1')).toContain('label-description-mismatch');
    expect(f('data/test-00000-of-00001.parquet#0')).toContain('label-description-mismatch');
    expect(f('data/train-00000-of-00001.parquet#2')).toEqual(['unreadable']);
    const leaks = r.json.result.findings.filter((x: {check: string}) => x.check === 'split-leak').map((x: {path: string; related: string[]; message: string}) => [[x.path, ...x.related].sort().join(' '), /vid_id/.test(x.message) ? 'video' : 'pixels']);
    expect(leaks.sort()).toEqual([['data/test-00000-of-00001.parquet#0 data/train-00000-of-00001.parquet#0', 'video']]);
    // The same pixels labelled 1 in train and 0 in test: a label conflict (one label is wrong), not a leak.
    const conflicts = r.json.result.findings.filter((x: {check: string}) => x.check === 'label-conflict').map((x: {path: string; related: string[]}) => [x.path, ...x.related].sort().join(' '));
    expect(conflicts).toEqual(['data/test-00000-of-00001.parquet#0 data/train-00000-of-00001.parquet#1']);
  });
});

describe('fuzzing', () => {
  it('thousands of broken files: no crash, every truncated or random file is a finding, exit 1', async () => {
    const root = path.join(base, 'fuzz');
    const rand = lcg(99);
    const seeds = await Promise.all(
      [0, 1, 2, 3].map((i) => sharp({create: {width: 24 + i * 8, height: 16 + i * 4, channels: 3, background: {r: 40 * i, g: 200 - 30 * i, b: 90}}}).jpeg().toBuffer()),
    );
    const pngSeed = await sharp({create: {width: 20, height: 20, channels: 3, background: '#a52'}}).png().toBuffer();
    const mustFlag: string[] = [];
    await mkdir(path.join(root, 'train', 'roadwork'), {recursive: true});
    for (let i = 0; i < 2000; i++) {
      const kind = i % 5;
      const src = i % 7 === 0 ? pngSeed : seeds[i % seeds.length]!;
      let bytes: Buffer;
      if (kind === 0) bytes = src.subarray(0, Math.floor(rand() * (src.length - 20)) + 1); // truncated
      else if (kind === 1) bytes = Buffer.from(Array.from({length: 1 + Math.floor(rand() * 600)}, () => Math.floor(rand() * 256))); // random bytes
      else if (kind === 2) {
        bytes = Buffer.from(src);
        for (let k = 0; k < 8; k++) bytes[Math.floor(rand() * 12)] = Math.floor(rand() * 256); // broken header
      } else {
        bytes = Buffer.from(src);
        for (let k = 0; k < 4; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256); // flipped bytes anywhere
      }
      const name = `train/roadwork/f${String(i).padStart(4, '0')}.jpg`;
      await writeFile(path.join(root, name), bytes);
      if (kind === 0 || kind === 1) mustFlag.push(name);
    }
    await writeFile(path.join(root, 'train', 'roadwork', 'bomb.jpg'), pngBomb(40_000, 40_000));
    const r = await runNatix(['validate-data', root, '--json', '--max-findings', '100000'], {timeoutMs: 180_000});
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const flagged = new Set(r.json.result.findings.map((f: {path: string}) => f.path));
    const missed = mustFlag.filter((f) => !flagged.has(f));
    expect(missed).toEqual([]);
    expect(checksOf(r.json, 'train/roadwork/bomb.jpg')).toEqual(expect.arrayContaining(['too-large']));
    expect(r.json.result.dataset.images).toBe(2001);
  }, 240_000);
});

describe('natix validate-data --no-exact-brightness', () => {
  it("keeps the thumbnail's dark verdicts (the flag, and `exact-brightness: false` in a config); the default decides as CleanVision", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-vd-exact-'));
    onTestFinished(() => rm(dir, {recursive: true, force: true}));
    const reference = JSON.parse(await readFile(path.join(REPO_ROOT, 'test', 'fixtures', 'brightness', 'reference.json'), 'utf8')) as {scenes: Record<string, {dark: boolean}>};
    const data = path.join(dir, 'data');
    await mkdir(path.join(data, 'none'), {recursive: true});
    const scenes = Array.from({length: 24}, (_, i) => i);
    for (const i of scenes) await sharp(nightScene(i), {raw: {width: NIGHT_WIDTH, height: NIGHT_HEIGHT, channels: 3}}).png({compressionLevel: 1}).toFile(path.join(data, 'none', `scene-${i}.png`));
    const dark = (r: Awaited<ReturnType<typeof runNatix>>): Array<{path: string; message: string}> => (r.json.result.findings as Array<{check: string; path: string; message: string}>).filter((f) => f.check === 'dark');
    const exact = await runNatix(['validate-data', data, '--json', '--fail-on', 'never']);
    expect(exact.code, exact.stderr).toBe(0);
    expect(dark(exact).map((f) => f.path).sort()).toEqual(scenes.filter((i) => reference.scenes[i]!.dark).map((i) => `none/scene-${i}.png`).sort());
    expect(dark(exact).every((f) => f.message.endsWith('(full resolution)'))).toBe(true);
    // Every night scene needed the second decode; the statistic survives sharding.
    expect(exact.json.result.statistics.fullResolution).toBe(scenes.length);
    const shards = path.join(dir, 'shards');
    for (const i of [1, 2]) expect((await runNatix(['validate-data', data, '--shard', `${i}/2`, '--shard-output', shards])).code).toBe(0);
    const merged = await runNatix(['validate-data', 'merge', ...(await fg('*.jsonl', {cwd: shards, absolute: true})), '--json', '--fail-on', 'never']);
    expect(merged.json.result.statistics).toEqual(exact.json.result.statistics);
    const text = await runNatix(['validate-data', data, '--fail-on', 'never']);
    expect(text.stdout).toContain(`${scenes.length} of ${scenes.length} images decoded again at full resolution`);
    const fast = await runNatix(['validate-data', data, '--json', '--fail-on', 'never', '--no-exact-brightness']);
    expect(fast.code, fast.stderr).toBe(0);
    expect(dark(fast).every((f) => f.message.endsWith('(thumbnail)'))).toBe(true);
    expect(fast.json.result.statistics.fullResolution).toBe(0);
    // Small highlights average away in the thumbnail: it flags more scenes dark than CleanVision does.
    expect(dark(fast).length).toBeGreaterThan(dark(exact).length);
    const config = path.join(dir, 'validate.yaml');
    await writeFile(config, 'exact-brightness: false\n');
    const viaConfig = await runNatix(['validate-data', data, '--json', '--fail-on', 'never', '--config', config]);
    expect(dark(viaConfig)).toEqual(dark(fast));
  }, 120_000);
});

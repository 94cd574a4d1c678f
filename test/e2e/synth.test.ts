import {createHash} from 'node:crypto';
import {readFile, readdir, mkdtemp} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fg from 'fast-glob';
import {parquetReadObjects} from 'hyparquet';
import sharp from 'sharp';
import YAML from 'yaml';
import {beforeAll, describe, expect, it} from 'vitest';
import {REPO_ROOT, runNatix} from '../helpers/cli.js';

async function hashes(dir: string): Promise<Map<string, string>> {
  const files = (await fg('**/*', {cwd: dir, onlyFiles: true})).filter((f) => f !== 'README.md').sort();
  const out = new Map<string, string>();
  for (const f of files) out.set(f, createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex'));
  return out;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'natix-synth-'));
});

describe('natix datasets synth', () => {
  it('regenerates datasets/sample byte for byte from the command in its README', async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'datasets', 'sample', 'README.md'), 'utf8');
    const command = /natix (datasets synth [^\n]+)/.exec(readme)![1]!;
    const args = command.split(/\s+/);
    args[args.indexOf('--out') + 1] = path.join(tmp, 'sample');
    const r = await runNatix(args);
    expect(r.code, r.stderr).toBe(0);
    const expected = await hashes(path.join(REPO_ROOT, 'datasets', 'sample'));
    const actual = await hashes(path.join(tmp, 'sample'));
    expect(actual.size).toBe(expected.size);
    expect([...actual.entries()]).toEqual([...expected.entries()]);
  });

  it('folder layout: counts, splits and positive ratio as asked; --json summary', async () => {
    const out = path.join(tmp, 'folder');
    const r = await runNatix(['datasets', 'synth', '--out', out, '--count', '40', '--size', '160x96', '--positive-ratio', '0.25', '--splits', '0.5,0.25,0.25', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.status).toBe(0);
    expect(r.json.result).toMatchObject({images: 40, format: 'folder'});
    const files = await fg('**/*.jpg', {cwd: out});
    expect(files).toHaveLength(40);
    expect(files.filter((f) => f.includes('/roadwork/'))).toHaveLength(10);
    expect(files.filter((f) => f.startsWith('train/'))).toHaveLength(20);
    const meta = await sharp(path.join(out, files[0]!)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 160, 96]);
  });

  it('yolo layout: data.yaml names ROADWork classes; label rows are valid and normalised', async () => {
    const out = path.join(tmp, 'yolo');
    const r = await runNatix(['datasets', 'synth', '--out', out, '--count', '24', '--size', '192x128', '--format', 'yolo', '--positive-ratio', '1']);
    expect(r.code, r.stderr).toBe(0);
    const data = YAML.parse(await readFile(path.join(out, 'data.yaml'), 'utf8')) as {names: Record<string, string>; train: string};
    expect(Object.values(data.names)).toContain('Cone');
    expect(data.train).toBe('images/train');
    const labels = await fg('labels/**/*.txt', {cwd: out});
    expect(labels.length).toBeGreaterThan(12);
    for (const file of labels) {
      for (const line of (await readFile(path.join(out, file), 'utf8')).trim().split('\n')) {
        const parts = line.split(' ').map(Number);
        expect(parts).toHaveLength(5);
        expect(Number.isInteger(parts[0])).toBe(true);
        expect(parts[0]).toBeLessThan(Object.keys(data.names).length);
        for (const v of parts.slice(1)) {
          expect(v).toBeGreaterThan(0);
          expect(v).toBeLessThanOrEqual(1);
        }
        // The box stays inside the image.
        expect(parts[1]! - parts[3]! / 2).toBeGreaterThanOrEqual(-1e-6);
        expect(parts[1]! + parts[3]! / 2).toBeLessThanOrEqual(1 + 1e-6);
      }
      const image = file.replace(/^labels/, 'images').replace(/\.txt$/, '.jpg');
      await expect(readFile(path.join(out, image))).resolves.toBeDefined();
    }
  });

  it('coco layout: ids resolve and every box lies inside its image', async () => {
    const out = path.join(tmp, 'coco');
    const r = await runNatix(['datasets', 'synth', '--out', out, '--count', '20', '--size', '160x96', '--format', 'coco']);
    expect(r.code, r.stderr).toBe(0);
    const files = await readdir(path.join(out, 'annotations'));
    expect(files.sort()).toEqual(['instances_test.json', 'instances_train.json', 'instances_val.json']);
    type Coco = {images: Array<{id: number; file_name: string; width: number; height: number}>; annotations: Array<{image_id: number; category_id: number; bbox: number[]}>; categories: Array<{id: number}>};
    const coco = JSON.parse(await readFile(path.join(out, 'annotations', 'instances_train.json'), 'utf8')) as Coco;
    const images = new Map(coco.images.map((i) => [i.id, i]));
    const categories = new Set(coco.categories.map((c) => c.id));
    expect(coco.annotations.length).toBeGreaterThan(0);
    for (const a of coco.annotations) {
      const image = images.get(a.image_id)!;
      expect(image).toBeDefined();
      expect(categories.has(a.category_id)).toBe(true);
      const [x, y, w, h] = a.bbox as [number, number, number, number];
      expect(w).toBeGreaterThan(0);
      expect(h).toBeGreaterThan(0);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x + w).toBeLessThanOrEqual(image.width + 1e-6);
      expect(y + h).toBeLessThanOrEqual(image.height + 1e-6);
    }
    for (const image of coco.images) await expect(readFile(path.join(out, image.file_name))).resolves.toBeDefined();
  });

  it('parquet layout: NATIX columns, image bytes decode, description non-empty exactly for positives, videos stay in one split', async () => {
    const out = path.join(tmp, 'parquet');
    const r = await runNatix(['datasets', 'synth', '--out', out, '--count', '30', '--size', '160x96', '--format', 'parquet', '--frames-per-video', '3']);
    expect(r.code, r.stderr).toBe(0);
    const shards = (await fg('data/*.parquet', {cwd: out})).sort();
    expect(shards).toEqual(['data/test-00000-of-00001.parquet', 'data/train-00000-of-00001.parquet', 'data/val-00000-of-00001.parquet']);
    const videoSplit = new Map<string, string>();
    let rows = 0;
    for (const shard of shards) {
      const bytes = await readFile(path.join(out, shard));
      const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const objects = (await parquetReadObjects({file, utf8: false})) as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
      for (const row of objects) {
        rows++;
        const label = Number(row.label);
        const description = row.scene_description as string;
        expect(description.length > 0).toBe(label === 1);
        const meta = await sharp(row.image.bytes as Uint8Array).metadata();
        expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 160, 96]);
        expect(row.width).toBe(160);
        const vid = row.video_info.vid_id as string;
        const split = shard.split('/')[1]!.split('-')[0]!;
        expect(videoSplit.get(vid) ?? split).toBe(split);
        videoSplit.set(vid, split);
        expect(row.scene_level_tags).toHaveProperty('weather');
      }
    }
    expect(rows).toBe(30);
    expect(videoSplit.size).toBe(10);
  });

  it('the same seed gives identical files; another seed different ones', async () => {
    const args = (out: string, seed: string): string[] => ['datasets', 'synth', '--out', out, '--count', '12', '--size', '128x96', '--seed', seed, '--format', 'manifest'];
    await runNatix(args(path.join(tmp, 'a'), '5'));
    await runNatix(args(path.join(tmp, 'b'), '5'));
    await runNatix(args(path.join(tmp, 'c'), '6'));
    const a = await hashes(path.join(tmp, 'a'));
    expect(a.size).toBe(13);
    expect([...(await hashes(path.join(tmp, 'b'))).entries()]).toEqual([...a.entries()]);
    const c = await hashes(path.join(tmp, 'c'));
    expect([...c.values()].filter((h) => [...a.values()].includes(h))).toEqual([]);
  });

  it('refuses a non-empty folder and bad flags with exit 2', async () => {
    const out = path.join(tmp, 'folder');
    const r = await runNatix(['datasets', 'synth', '--out', out, '--count', '2', '--json']);
    expect(r.code).toBe(2);
    expect(r.json.code).toBe('OUTPUT_NOT_EMPTY');
    const bad = await runNatix(['datasets', 'synth', '--out', path.join(tmp, 'x'), '--splits', '0.5,0.5,0.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--splits');
  });
});

describe('--config files mirror flags', () => {
  it('takes flag values from the file, lets the command line win, and rejects bad values with exit 2', async () => {
    const {writeFile} = await import('node:fs/promises');
    const config = path.join(tmp, 'synth.yaml');
    await writeFile(config, 'count: 6\nsize: 96x64\nformat: manifest\npositive-ratio: 0.5\n');
    const out = path.join(tmp, 'from-config');
    const r = await runNatix(['datasets', 'synth', '--config', config, '--out', out, '--count', '4', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result).toMatchObject({images: 4, format: 'manifest'});
    const meta = await sharp(path.join(out, (await fg('images/*.jpg', {cwd: out}))[0]!)).metadata();
    expect([meta.width, meta.height]).toEqual([96, 64]);

    await writeFile(config, 'count: many\n');
    const bad = await runNatix(['datasets', 'synth', '--config', config, '--out', path.join(tmp, 'nope')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('synth.yaml: /count');
    await writeFile(config, 'format: tiff\n');
    const badEnum = await runNatix(['datasets', 'synth', '--config', config, '--out', path.join(tmp, 'nope')]);
    expect(badEnum.code).toBe(2);
    expect(badEnum.stderr).toContain('synth.yaml: /format must be one of "folder", "manifest", "yolo", "coco", "parquet"');
  });
});

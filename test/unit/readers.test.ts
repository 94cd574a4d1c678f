import {mkdir, mkdtemp, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {openDataset} from '../../src/lib/data/open.js';
import {parseLabelValue, labelForClassName} from '../../src/lib/data/labels.js';
import {PathEscapeError, resolveInsideRoot} from '../../src/lib/data/safe-path.js';
import type {DataIssue, Sample} from '../../src/lib/data/sample.js';

async function jpeg(file: string, rgb: [number, number, number]): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true});
  await sharp({create: {width: 16, height: 12, channels: 3, background: {r: rgb[0], g: rgb[1], b: rgb[2]}}}).jpeg().toFile(file);
}

async function collect(iterable: AsyncIterable<Sample>): Promise<Sample[]> {
  const out: Sample[] = [];
  for await (const s of iterable) out.push(s);
  return out;
}

let base: string;
let outside: string;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-readers-'));
  outside = path.join(base, 'outside');
  await jpeg(path.join(outside, 'secret.jpg'), [1, 2, 3]);
});

describe('class-folder reader', () => {
  it('reads split/class folders, maps class names to labels, and yields in sorted order', async () => {
    const root = path.join(base, 'folders');
    await jpeg(path.join(root, 'train', 'roadwork', 'b.jpg'), [255, 128, 0]);
    await jpeg(path.join(root, 'train', 'roadwork', 'a.JPG'), [255, 128, 0]);
    await jpeg(path.join(root, 'train', 'none', 'c.png'), [0, 0, 0]);
    await jpeg(path.join(root, 'val', 'no_roadwork', 'd.webp'), [0, 0, 0]);
    await writeFile(path.join(root, 'train', 'none', 'notes.txt'), 'not an image');
    const dataset = await openDataset(root);
    expect(dataset.format).toBe('folder');
    const samples = await collect(dataset.samples());
    expect(samples.map((s) => [s.path, s.label, s.split])).toEqual([
      ['train/none/c.png', 0, 'train'],
      ['train/roadwork/a.JPG', 1, 'train'],
      ['train/roadwork/b.jpg', 1, 'train'],
      ['val/no_roadwork/d.webp', 0, 'val'],
    ]);
    expect(samples.every((s) => s.absPath?.startsWith(dataset.root))).toBe(true);
  });

  it('reports a symlinked image pointing outside the root and never yields it', async () => {
    const root = path.join(base, 'folders-link');
    await jpeg(path.join(root, 'roadwork', 'ok.jpg'), [255, 128, 0]);
    await symlink(path.join(outside, 'secret.jpg'), path.join(root, 'roadwork', 'evil.jpg'));
    const issues: DataIssue[] = [];
    const dataset = await openDataset(root, 'folder', {onIssue: (i) => issues.push(i)});
    const samples = await collect(dataset.samples());
    expect(samples.map((s) => s.path)).toEqual(['roadwork/ok.jpg']);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({check: 'path-escape', path: 'roadwork/evil.jpg'});
  });

  it('an unknown class folder is an issue unless a class map names it', async () => {
    const root = path.join(base, 'folders-unknown');
    await jpeg(path.join(root, 'cats', 'x.jpg'), [9, 9, 9]);
    const issues: DataIssue[] = [];
    const unmapped = await collect((await openDataset(root, 'folder', {onIssue: (i) => issues.push(i)})).samples());
    expect(unmapped[0]!.label).toBeNull();
    expect(issues[0]!.check).toBe('label-class-unknown');
    const mapped = await collect((await openDataset(root, 'folder', {classMap: {cats: 1}})).samples());
    expect(mapped[0]!.label).toBe(1);
  });
});

describe('manifest reader', () => {
  it('reads CSV with metadata columns and refuses paths that escape the root', async () => {
    const root = path.join(base, 'manifest-csv');
    await jpeg(path.join(root, 'img', 'a.jpg'), [10, 10, 10]);
    await jpeg(path.join(root, 'img', 'b.jpg'), [200, 10, 10]);
    await writeFile(
      path.join(root, 'manifest.csv'),
      [
        'path,label,split,city',
        'img/a.jpg,0,train,Berlin',
        'img/b.jpg,roadwork,validation,"Paris, FR"',
        '../outside/secret.jpg,1,train,x',
        `${path.join(outside, 'secret.jpg')},1,train,x`,
        'img/a.jpg,,test,y',
      ].join('\n'),
    );
    const issues: DataIssue[] = [];
    const dataset = await openDataset(root, 'auto', {onIssue: (i) => issues.push(i)});
    expect(dataset.format).toBe('manifest');
    const samples = await collect(dataset.samples());
    expect(samples.map((s) => [s.path, s.label, s.split, s.metadata.city])).toEqual([
      ['img/a.jpg', 0, 'train', 'Berlin'],
      ['img/b.jpg', 1, 'val', 'Paris, FR'],
      ['img/a.jpg', null, 'test', 'y'],
    ]);
    expect(issues.map((i) => [i.check, i.line])).toEqual([
      ['path-escape', 4],
      ['path-escape', 5],
      ['label-missing', 6],
    ]);
  });

  it('reads JSON lines and reports malformed lines', async () => {
    const root = path.join(base, 'manifest-jsonl');
    await jpeg(path.join(root, 'a.jpg'), [10, 10, 10]);
    await writeFile(path.join(root, 'manifest.jsonl'), '{"path":"a.jpg","label":1,"weather":"rain"}\n{not json\n[1,2]\n');
    const issues: DataIssue[] = [];
    const samples = await collect((await openDataset(path.join(root, 'manifest.jsonl'), 'auto', {onIssue: (i) => issues.push(i)})).samples());
    expect(samples).toHaveLength(1);
    expect(samples[0]).toMatchObject({path: 'a.jpg', label: 1, metadata: {weather: 'rain'}});
    expect(issues.map((i) => i.check)).toEqual(['label-malformed', 'label-malformed']);
  });
});

describe('path safety and labels', () => {
  it('refuses absolute paths, .. escapes and NUL bytes', () => {
    const root = path.join(base, 'folders');
    expect(() => resolveInsideRoot(root, '/etc/passwd')).toThrow(PathEscapeError);
    expect(() => resolveInsideRoot(root, '../../etc/passwd')).toThrow(PathEscapeError);
    expect(() => resolveInsideRoot(root, 'a/../../x')).toThrow(PathEscapeError);
    expect(() => resolveInsideRoot(root, 'a\0b')).toThrow(PathEscapeError);
    expect(resolveInsideRoot(root, 'train/../train/roadwork/b.jpg')).toBe(path.join(root, 'train', 'roadwork', 'b.jpg'));
  });

  it('maps class names by the documented rule', () => {
    expect(labelForClassName('Roadwork')).toBe(1);
    expect(labelForClassName('no_roadwork')).toBe(0);
    expect(labelForClassName('No-Roadwork')).toBe(0);
    expect(labelForClassName('none')).toBe(0);
    expect(labelForClassName('Street_Signs')).toBe(2);
    expect(labelForClassName('cats')).toBeUndefined();
    expect(labelForClassName('none', {none: 5})).toBe(5);
    expect(parseLabelValue('1')).toBe(1);
    expect(parseLabelValue(0)).toBe(0);
    expect(parseLabelValue(1.5)).toBeUndefined();
    expect(parseLabelValue('')).toBeUndefined();
  });
});

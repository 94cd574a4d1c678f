/**
 * The readers against hostile and broken inputs (issue 10): paths escaping the root, FIFOs and other non-regular
 * files (each must be refused at once, never opened), directories where files are expected, garbled CSV / COCO /
 * parquet / labels, strict label parsing, and zero samples read. Every case here hung, crashed or gave a silent
 * wrong answer before the fix.
 */
import {mkdir, mkdtemp, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {asyncBufferFromFile, parquetMetadataAsync} from 'hyparquet';
import {beforeAll, describe, expect, it} from 'vitest';
import {imageLabelShard} from '../helpers/parquet.js';
import {openDataset} from '../../src/lib/data/open.js';
import {parseLabelValue} from '../../src/lib/data/labels.js';
import type {DataIssue, Sample} from '../../src/lib/data/sample.js';
import {decodeImage} from '../../src/lib/image/decode.js';
import {garbledCsvs, garbleRowGroup, mkfifo} from '../helpers/corrupt.js';

let base: string;
let outside: string;
let jpegBytes: Buffer;

async function jpeg(file: string): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true});
  await writeFile(file, jpegBytes);
}

async function read(input: string, format: Parameters<typeof openDataset>[1] = 'auto'): Promise<{samples: Sample[]; issues: DataIssue[]}> {
  const issues: DataIssue[] = [];
  const dataset = await openDataset(input, format, {onIssue: (i) => issues.push(i)});
  const samples: Sample[] = [];
  for await (const s of dataset.samples()) samples.push(s);
  return {samples, issues};
}

/** Like read(), but returns the error a read ends with (every case here must end within the test timeout). */
async function readError(input: string, format: Parameters<typeof openDataset>[1] = 'auto'): Promise<{error: {code?: string; message: string; exitCode?: number}; issues: DataIssue[]}> {
  const issues: DataIssue[] = [];
  try {
    const dataset = await openDataset(input, format, {onIssue: (i) => issues.push(i)});
    for await (const _ of dataset.samples()) void _;
  } catch (error) {
    return {error: error as {code?: string; message: string}, issues};
  }
  throw new Error('expected the read to fail');
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-hostile-'));
  jpegBytes = await sharp({create: {width: 32, height: 24, channels: 3, background: {r: 200, g: 90, b: 10}}}).jpeg().toBuffer();
  outside = path.join(base, 'outside');
  await jpeg(path.join(outside, 'yolo', 'images', 'train', 'secret-outside.jpg'));
  await jpeg(path.join(outside, 'classdir', 'secret-name.jpg'));
});

describe('paths never escape the dataset root', () => {
  it('a YOLO data.yaml whose path: leaves the folder is a path-escape finding and nothing outside is listed or opened', async () => {
    const root = path.join(base, 'yolo-escape');
    await jpeg(path.join(root, 'images', 'train', 'inside.jpg'));
    await writeFile(path.join(root, 'data.yaml'), 'path: ../outside/yolo\ntrain: images/train\nnames: [cone]\n');
    const {error, issues} = await readError(root);
    expect(error).toMatchObject({code: 'NO_SAMPLES', exitCode: 2});
    expect(issues).toEqual([expect.objectContaining({check: 'path-escape', path: 'data.yaml'})]);
    expect(JSON.stringify(issues)).not.toContain('secret-outside');
  });

  it('a YOLO path: inside the folder is still honoured', async () => {
    const root = path.join(base, 'yolo-sub');
    await jpeg(path.join(root, 'ds', 'images', 'train', 'a.jpg'));
    await writeFile(path.join(root, 'data.yaml'), 'path: ds\ntrain: images/train\nnames: [cone]\n');
    const {samples} = await read(root);
    expect(samples.map((s) => s.path)).toEqual(['ds/images/train/a.jpg']);
  });

  it('a symlinked class folder pointing outside is reported once and never listed', async () => {
    const root = path.join(base, 'folder-link-dir');
    await jpeg(path.join(root, 'roadwork', 'ok.jpg'));
    await symlink(path.join(outside, 'classdir'), path.join(root, 'none'));
    const {samples, issues} = await read(root);
    expect(samples.map((s) => s.path)).toEqual(['roadwork/ok.jpg']);
    expect(issues).toEqual([expect.objectContaining({check: 'path-escape', path: 'none'})]);
    expect(JSON.stringify(issues)).not.toContain('secret-name');
  });
});

describe('non-regular files are refused at once, never opened', () => {
  it('a FIFO named x.jpg, a symlink to a FIFO and a directory named x.jpg in a class folder are findings on their paths', async () => {
    const root = path.join(base, 'folder-fifo');
    await jpeg(path.join(root, 'roadwork', 'ok.jpg'));
    mkfifo(path.join(root, 'roadwork', 'pipe.jpg'));
    mkfifo(path.join(base, 'pipe-target'));
    await symlink(path.join(root, 'roadwork', 'pipe.jpg'), path.join(root, 'roadwork', 'pipe-link.jpg'));
    await mkdir(path.join(root, 'roadwork', 'folder.jpg'));
    const {samples} = await read(root);
    // Listed (so that they become findings), then refused by the decoder without opening them.
    expect(samples.map((s) => s.path)).toEqual(['roadwork/folder.jpg', 'roadwork/ok.jpg', 'roadwork/pipe-link.jpg', 'roadwork/pipe.jpg']);
    const outcome = async (s: Sample): Promise<string> => decodeImage(s.absPath!).then(() => 'decoded', (e: Error) => e.message);
    const messages = await Promise.all(samples.map(outcome));
    expect(messages[0]).toMatch(/is a directory/);
    expect(messages[1]).toBe('decoded');
    expect(messages[2]).toMatch(/FIFO/);
    expect(messages[3]).toMatch(/FIFO/);
  });

  it('a FIFO manifest.csv and a FIFO given as the dataset are errors naming the file, not hangs', async () => {
    const root = path.join(base, 'manifest-fifo');
    await mkdir(root, {recursive: true});
    mkfifo(path.join(root, 'manifest.csv'));
    const {error} = await readError(root);
    expect(error.message).toMatch(/manifest\.csv is a FIFO/);
    const {error: direct} = await readError(path.join(root, 'manifest.csv'));
    expect(direct.message).toMatch(/FIFO/);
  });

  it('a FIFO or a directory as a YOLO label file is an unreadable finding, not background', async () => {
    const root = path.join(base, 'yolo-fifo-label');
    await jpeg(path.join(root, 'images', 'train', 'a.jpg'));
    await jpeg(path.join(root, 'images', 'train', 'b.jpg'));
    await jpeg(path.join(root, 'images', 'train', 'c.jpg'));
    await mkdir(path.join(root, 'labels', 'train'), {recursive: true});
    mkfifo(path.join(root, 'labels', 'train', 'a.txt'));
    await mkdir(path.join(root, 'labels', 'train', 'b.txt'));
    await writeFile(path.join(root, 'data.yaml'), 'train: images/train\nnames: [cone]\n');
    const {samples, issues} = await read(root);
    expect(samples.map((s) => [s.path, s.label])).toEqual([
      ['images/train/a.jpg', null],
      ['images/train/b.jpg', null],
      ['images/train/c.jpg', 0],
    ]);
    expect(issues.map((i) => [i.check, i.path])).toEqual([
      ['unreadable', 'labels/train/a.txt'],
      ['unreadable', 'labels/train/b.txt'],
    ]);
    expect(issues[0]!.message).toMatch(/FIFO/);
    expect(issues[1]!.message).toMatch(/directory/);
  });

  it('a directory named manifest.csv is passed over by detection and refused when chosen', async () => {
    const root = path.join(base, 'manifest-dir');
    await mkdir(path.join(root, 'manifest.csv'), {recursive: true});
    await jpeg(path.join(root, 'roadwork', 'a.jpg'));
    const {samples} = await read(root);
    expect(samples.map((s) => s.path)).toEqual(['roadwork/a.jpg']);
    const {error} = await readError(root, 'manifest');
    expect(error.message).toMatch(/manifest\.csv is a directory/);
  });

  it('a symlink loop named like an image is reported as a symlink loop', async () => {
    const root = path.join(base, 'folder-loop');
    await jpeg(path.join(root, 'roadwork', 'ok.jpg'));
    await symlink('loop-b.jpg', path.join(root, 'roadwork', 'loop-a.jpg'));
    await symlink('loop-a.jpg', path.join(root, 'roadwork', 'loop-b.jpg'));
    const {samples, issues} = await read(root);
    expect(samples.map((s) => s.path)).toEqual(['roadwork/ok.jpg']);
    expect(issues.map((i) => [i.check, i.path])).toEqual([
      ['unreadable', 'roadwork/loop-a.jpg'],
      ['unreadable', 'roadwork/loop-b.jpg'],
    ]);
    expect(issues[0]!.message).toMatch(/symlink loop/);
  });
});

describe('garbled files are findings naming the file and line', () => {
  for (const bad of garbledCsvs('a.jpg,1')) {
    it(`CSV: ${bad.name}`, async () => {
      const root = path.join(base, `csv-${bad.name}`);
      await jpeg(path.join(root, 'a.jpg'));
      await writeFile(path.join(root, 'manifest.csv'), bad.text);
      const {samples, issues} = await read(root);
      expect(samples.map((s) => s.path)).toEqual(['a.jpg']);
      expect(issues.length).toBeGreaterThanOrEqual(1);
      expect(issues[0]).toMatchObject({check: 'label-malformed', path: 'manifest.csv', line: bad.line});
      expect(issues[0]!.message).toMatch(new RegExp(`^manifest\\.csv:${bad.line}: CSV error`));
    });
  }

  it('CSV: duplicate header columns are a finding; the first column is used', async () => {
    const root = path.join(base, 'csv-dup-header');
    await jpeg(path.join(root, 'a.jpg'));
    await writeFile(path.join(root, 'manifest.csv'), 'path,label,label\na.jpg,1,0\n');
    const {samples, issues} = await read(root);
    expect(samples.map((s) => [s.path, s.label])).toEqual([['a.jpg', 1]]);
    expect(issues).toEqual([expect.objectContaining({check: 'label-malformed', path: 'manifest.csv', line: 1})]);
    expect(issues[0]!.message).toMatch(/duplicate header column.*"label"/);
  });

  it('an empty or header-only manifest is an error (zero samples), with the reason', async () => {
    for (const [name, text] of [['empty', ''], ['header-only', 'path,label\n']] as const) {
      const root = path.join(base, `csv-${name}`);
      await mkdir(root, {recursive: true});
      await writeFile(path.join(root, 'manifest.csv'), text);
      const {error, issues} = await readError(root);
      expect(error).toMatchObject({code: 'NO_SAMPLES', exitCode: 2});
      expect(issues).toEqual([expect.objectContaining({check: 'label-malformed', path: 'manifest.csv'})]);
      expect(error.message).toMatch(/no data rows/);
    }
  });

  it('strict labels: -1, 1e21, 999999999999999999999, 1.5 and 0x1 are findings, never a class', async () => {
    const root = path.join(base, 'csv-labels');
    await jpeg(path.join(root, 'a.jpg'));
    await writeFile(path.join(root, 'manifest.csv'), ['path,label', 'a.jpg,-1', 'a.jpg,1e21', 'a.jpg,999999999999999999999', 'a.jpg,1.5', 'a.jpg,0x1', 'a.jpg,+1', 'a.jpg,1'].join('\n'));
    const {samples, issues} = await read(root);
    expect(samples.map((s) => s.label)).toEqual([null, null, null, null, null, null, 1]);
    expect(issues.map((i) => [i.check, i.line])).toEqual([2, 3, 4, 5, 6, 7].map((line) => ['label-class-unknown', line]));
    expect(parseLabelValue(-1)).toBeUndefined();
    expect(parseLabelValue(1e21)).toBeUndefined();
    expect(parseLabelValue(10n ** 21n)).toBeUndefined();
    expect(parseLabelValue('constructor')).toBeUndefined();
  });

  it('YOLO: 0x1, 1e400 and Infinity in a label row are malformed, not numbers', async () => {
    const root = path.join(base, 'yolo-strict');
    for (const n of ['a', 'b', 'c']) await jpeg(path.join(root, 'images', 'train', `${n}.jpg`));
    await mkdir(path.join(root, 'labels', 'train'), {recursive: true});
    await writeFile(path.join(root, 'labels', 'train', 'a.txt'), '0x1 0.5 0.5 0.1 0.1\n');
    await writeFile(path.join(root, 'labels', 'train', 'b.txt'), '0 0x1 0.5 0.1 0.1\n0 Infinity 0.5 0.1 0.1\n');
    await writeFile(path.join(root, 'labels', 'train', 'c.txt'), '0 0.5 0.5 0.1 1e400\n');
    await writeFile(path.join(root, 'data.yaml'), 'train: images/train\nnames: [cone, drum]\n');
    const {samples, issues} = await read(root);
    expect(samples.map((s) => s.label)).toEqual([0, 0, 0]);
    expect(issues.map((i) => [i.check, i.path, i.line])).toEqual([
      ['label-malformed', 'labels/train/a.txt', 1],
      ['label-malformed', 'labels/train/b.txt', 1],
      ['label-malformed', 'labels/train/b.txt', 2],
      ['label-malformed', 'labels/train/c.txt', 1],
    ]);
  });

  it('COCO: null entries and a null document are findings, not crashes; a missing annotations key is a finding', async () => {
    const root = path.join(base, 'coco-null');
    await jpeg(path.join(root, 'images', 'a.jpg'));
    await writeFile(path.join(root, 'instances.json'), JSON.stringify({images: [null, {id: 1, file_name: 'a.jpg', width: 32, height: 24}, 7], annotations: [null, {id: 9, image_id: 1, category_id: 1, bbox: [1, 1, 4, 4]}], categories: [null, {id: 1, name: 'cone'}]}));
    const {samples, issues} = await read(root);
    expect(samples.map((s) => [s.path, s.label])).toEqual([['images/a.jpg', 1]]);
    expect(issues.map((i) => i.message)).toEqual([
      'instances.json: categories[0] must be an object, got null',
      'instances.json: images[0] must be an object, got null',
      'instances.json: images[2] must be an object, got number',
      'instances.json: annotations[0] must be an object, got null',
    ]);

    const top = path.join(base, 'coco-top-null');
    await mkdir(top, {recursive: true});
    await writeFile(path.join(top, 'instances.json'), 'null');
    const {error, issues: topIssues} = await readError(top);
    expect(error).toMatchObject({code: 'NO_SAMPLES'});
    expect(topIssues[0]!.message).toMatch(/top level must be an object/);

    const noAnnotations = path.join(base, 'coco-no-annotations');
    await jpeg(path.join(noAnnotations, 'a.jpg'));
    await writeFile(path.join(noAnnotations, 'instances.json'), JSON.stringify({images: [{id: 1, file_name: 'a.jpg'}], categories: []}));
    const {issues: missing} = await read(noAnnotations);
    expect(missing).toEqual([expect.objectContaining({check: 'label-malformed', path: 'instances.json'})]);
    expect(missing[0]!.message).toMatch(/"annotations" must be an array, got nothing/);
  });

  it('COCO: findings about an annotation name the image file and the annotation id', async () => {
    const root = path.join(base, 'coco-names');
    await jpeg(path.join(root, 'images', 'a.jpg'));
    await writeFile(path.join(root, 'instances.json'), JSON.stringify({images: [{id: 1, file_name: 'a.jpg', width: 32, height: 24}], annotations: [{id: 41, image_id: 1, category_id: 1, bbox: [30, 20, 10, 10]}, {id: 42, image_id: 1, category_id: 5, bbox: [1, 1, 2, 2]}], categories: [{id: 1, name: 'cone'}]}));
    const {issues} = await read(root);
    expect(issues.map((i) => [i.check, i.path])).toEqual([
      ['box-out-of-bounds', 'images/a.jpg'],
      ['label-class-unknown', 'images/a.jpg'],
    ]);
    expect(issues[0]!.message).toMatch(/^instances\.json: annotation 41 \(image images\/a\.jpg\)/);
    expect(issues[1]!.message).toMatch(/annotation 42 \(image images\/a\.jpg\)/);
  });
});

const shard = (images: Uint8Array[], labels: number[]): Uint8Array => imageLabelShard(images, labels, 1);

describe('parquet', () => {
  it('a garbled page spoils its row group only: the shard and row group are named and the rest is read', async () => {
    const root = path.join(base, 'parquet-garbled');
    await mkdir(path.join(root, 'data'), {recursive: true});
    const good = path.join(root, 'data', 'train-00000-of-00002.parquet');
    await writeFile(good, shard([jpegBytes, jpegBytes, jpegBytes], [1, 0, 1]));
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(good));
    const offset = Number(meta.row_groups[1]!.columns[0]!.meta_data!.data_page_offset);
    await writeFile(path.join(root, 'data', 'train-00001-of-00002.parquet'), garbleRowGroup(shard([jpegBytes, jpegBytes, jpegBytes], [1, 0, 1]), offset));
    const {samples, issues} = await read(root);
    expect(samples.map((s) => s.path)).toEqual([
      'data/train-00000-of-00002.parquet#0',
      'data/train-00000-of-00002.parquet#1',
      'data/train-00000-of-00002.parquet#2',
      'data/train-00001-of-00002.parquet#0',
      'data/train-00001-of-00002.parquet#2',
    ]);
    expect(issues).toEqual([expect.objectContaining({check: 'unreadable', path: 'data/train-00001-of-00002.parquet', value: {rowGroup: 1, rows: [1, 1]}})]);
    expect(issues[0]!.message).toMatch(/^data\/train-00001-of-00002\.parquet: row group 1 \(rows 1-1\) cannot be read/);
  });

  it('the Hugging Face export layouts are detected with their split; dev and eval map to val and test', async () => {
    const hf = path.join(base, 'hf-default');
    for (const [dir, label] of [['default/train', 1], ['default/dev', 0], ['default/eval', 1]] as const) {
      await mkdir(path.join(hf, dir), {recursive: true});
      await writeFile(path.join(hf, dir, '0000.parquet'), shard([jpegBytes], [label]));
    }
    const {samples} = await read(hf);
    expect(samples.map((s) => [s.path, s.split])).toEqual([
      ['default/dev/0000.parquet#0', 'val'],
      ['default/eval/0000.parquet#0', 'test'],
      ['default/train/0000.parquet#0', 'train'],
    ]);
    const flat = path.join(base, 'hf-split');
    for (const dir of ['train', 'test']) {
      await mkdir(path.join(flat, dir), {recursive: true});
      await writeFile(path.join(flat, dir, '0000.parquet'), shard([jpegBytes], [1]));
    }
    expect((await read(flat)).samples.map((s) => s.split)).toEqual(['test', 'train']);
  });
});

describe('zero samples read is an error, and unlabelled photo folders are datasets', () => {
  it('a folder dataset read as parquet reads nothing: error NO_SAMPLES, exit 2, naming the format', async () => {
    const root = path.join(base, 'folder-as-parquet');
    await jpeg(path.join(root, 'roadwork', 'a.jpg'));
    const {error} = await readError(root, 'parquet');
    expect(error).toMatchObject({code: 'NO_SAMPLES', exitCode: 2});
    expect(error.message).toMatch(/as parquet \(chosen with --format\)/);
  });

  it('a flat folder of photos is read as unlabelled images', async () => {
    const root = path.join(base, 'flat');
    await jpeg(path.join(root, 'IMG_0001.jpg'));
    await jpeg(path.join(root, 'IMG_0002.JPG'));
    await writeFile(path.join(root, 'notes.txt'), 'not an image');
    const dataset = await openDataset(root);
    expect(dataset.format).toBe('folder');
    const {samples, issues} = await read(root);
    expect(samples.map((s) => [s.path, s.label, s.split])).toEqual([
      ['IMG_0001.jpg', null, undefined],
      ['IMG_0002.JPG', null, undefined],
    ]);
    expect(issues).toEqual([]);
  });
});

/**
 * Fuzzing the label readers through the real binary: hundreds of randomly broken YOLO label files, a COCO file
 * with random bad records, `../../etc/passwd` file names and symlinks out of the root. No crash, every bad input
 * a finding on its own path, controls left alone, exit code 1, and the dataset is byte-for-byte unchanged.
 * (Randomly mutated and truncated IMAGES and a PNG bomb are fuzzed in test/e2e/validate-data.test.ts.)
 */
import {mkdir, mkdtemp, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {lcg} from '../helpers/corrupt.js';
import {runNatix} from '../helpers/cli.js';
import {snapshot} from '../helpers/snapshot.js';

const LABEL_CHECKS = new Set(['label-malformed', 'label-class-unknown', 'box-out-of-bounds', 'box-degenerate', 'duplicate-box', 'path-escape', 'unreadable']);
let base: string;
let jpeg: Buffer;


beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-fuzz-'));
  // A small textured photo-like image: noise over a gradient, so no quality check fires on the controls.
  const w = 96;
  const h = 64;
  const raw = Buffer.alloc(w * h * 3);
  const rand = lcg(7);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.min(255, Math.floor((i % w) * 2 + c * 30 + rand() * 60));
  jpeg = await sharp(raw, {raw: {width: w, height: h, channels: 3}}).jpeg({quality: 90}).toBuffer();
  await writeFile(path.join(base, 'outside-secret.txt'), 'secret');
});

/** One label file guaranteed to be wrong, of a kind drawn at random, then randomly mangled a little more. */
function badLabel(rand: () => number): string {
  const num = (): string => rand().toFixed(3);
  const good = (): string => `${Math.floor(rand() * 2)} ${(0.3 + rand() * 0.4).toFixed(3)} ${(0.3 + rand() * 0.4).toFixed(3)} ${(0.05 + rand() * 0.2).toFixed(3)} ${(0.05 + rand() * 0.2).toFixed(3)}`;
  const kind = Math.floor(rand() * 8);
  const lines = Array.from({length: Math.floor(rand() * 3)}, good);
  switch (kind) {
    case 0: lines.push(`0 ${num()} ${num()} ${num()}`); break; // 4 columns
    case 1: lines.push(`${good()} ${num()}`); break; // 6 columns
    case 2: lines.push(`0 ${num()} x${num()} ${num()} ${num()}`); break; // not a number
    case 3: lines.push(`${2 + Math.floor(rand() * 50)} 0.5 0.5 0.1 0.1`); break; // class out of range
    case 4: lines.push(`1 0.5 0.5 ${(1.05 + rand()).toFixed(3)} 0.2`); break; // value > 1
    case 5: lines.push('0 0.5 0.5 0 0.1'); break; // zero width
    case 6: { const row = good(); lines.push(row, row); break; } // duplicate row
    default: lines.push(Array.from({length: 1 + Math.floor(rand() * 40)}, () => String.fromCharCode(33 + Math.floor(rand() * 90))).join('')); // garbage
  }
  return lines.sort(() => rand() - 0.5).join(rand() < 0.5 ? '\n' : '\r\n') + (rand() < 0.5 ? '\n' : '');
}

describe('fuzz: label files, COCO records, escapes', () => {
  it('YOLO: 600 randomly broken label files are each a finding; controls are not; nothing is written', async () => {
    const root = path.join(base, 'yolo');
    await mkdir(path.join(root, 'images', 'train'), {recursive: true});
    await mkdir(path.join(root, 'labels', 'train'), {recursive: true});
    await writeFile(path.join(root, 'data.yaml'), 'path: .\ntrain: images/train\nnames: [Cone, Drum]\n');
    const rand = lcg(20261122);
    const bad: string[] = [];
    const good: string[] = [];
    for (let i = 0; i < 800; i++) {
      const name = `f${String(i).padStart(4, '0')}`;
      await writeFile(path.join(root, 'images', 'train', `${name}.jpg`), jpeg);
      const label = `labels/train/${name}.txt`;
      if (i % 4 === 0) {
        await writeFile(path.join(root, label), `0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n`);
        good.push(label);
      } else {
        await writeFile(path.join(root, label), badLabel(rand));
        bad.push(label);
      }
    }
    await symlink(path.join(base, 'outside-secret.txt'), path.join(root, 'images', 'train', 'escape.jpg'));
    const before = await snapshot(root);
    const r = await runNatix(['validate-data', root, '--json', '--max-findings', '100000'], {timeoutMs: 120_000});
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const labelFindings = new Set(r.json.result.findings.filter((f: {check: string}) => LABEL_CHECKS.has(f.check)).map((f: {path: string}) => f.path));
    expect(bad.filter((f) => !labelFindings.has(f))).toEqual([]);
    expect(good.filter((f) => labelFindings.has(f))).toEqual([]);
    expect(r.json.result.findings.some((f: {check: string; path: string}) => f.check === 'path-escape' && f.path.includes('escape.jpg'))).toBe(true);
    expect(await snapshot(root)).toEqual(before);
  }, 150_000);

  it('COCO: random bad records and ../../etc/passwd are findings, never a crash', async () => {
    const root = path.join(base, 'coco');
    await mkdir(path.join(root, 'images'), {recursive: true});
    await mkdir(path.join(root, 'annotations'), {recursive: true});
    const rand = lcg(99);
    const images: unknown[] = [];
    const annotations: unknown[] = [];
    for (let i = 1; i <= 40; i++) {
      await writeFile(path.join(root, 'images', `i${i}.jpg`), jpeg);
      images.push({id: i, file_name: `images/i${i}.jpg`, width: 96, height: 64});
    }
    images.push({id: 1000, file_name: '../../etc/passwd', width: 10, height: 10}, {id: 1001, file_name: '/etc/passwd', width: 10, height: 10});
    await symlink(path.join(base, 'outside-secret.txt'), path.join(root, 'images', 'link.jpg'));
    images.push({id: 1002, file_name: 'images/link.jpg', width: 10, height: 10});
    const expected: string[] = [];
    for (let a = 1; a <= 300; a++) {
      const imageId = 1 + Math.floor(rand() * 40);
      const kind = Math.floor(rand() * 6);
      const bbox = [5 + rand() * 20, 5 + rand() * 20, 5 + rand() * 20, 5 + rand() * 20];
      if (kind === 0) annotations.push({id: a, image_id: imageId, category_id: 1, bbox});
      else if (kind === 1) { annotations.push({id: a, image_id: imageId, category_id: 77, bbox}); expected.push('label-class-unknown'); }
      else if (kind === 2) { annotations.push({id: a, image_id: imageId, category_id: 1, bbox: [90, 60, 40, 40]}); expected.push('box-out-of-bounds'); }
      else if (kind === 3) { annotations.push({id: a, image_id: imageId, category_id: 1, bbox: [10, 10, -rand() * 5, 4]}); expected.push('box-degenerate'); }
      else if (kind === 4) { annotations.push({id: a, image_id: 5000 + a, category_id: 1, bbox}); expected.push('label-malformed'); }
      else { annotations.push({id: a, image_id: imageId, category_id: 1, bbox: ['x', null, 3]}); expected.push('label-malformed'); }
    }
    await writeFile(path.join(root, 'annotations', 'instances_train.json'), JSON.stringify({images, annotations, categories: [{id: 1, name: 'Cone'}]}));
    const before = await snapshot(root);
    const r = await runNatix(['validate-data', root, '--json', '--max-findings', '100000'], {timeoutMs: 60_000});
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const checks: string[] = r.json.result.findings.map((f: {check: string}) => f.check);
    const count = (c: string): number => checks.filter((x) => x === c).length;
    for (const c of new Set(expected)) expect(count(c), c).toBeGreaterThanOrEqual(expected.filter((x) => x === c).length);
    expect(count('path-escape')).toBe(3);
    expect(await snapshot(root)).toEqual(before);
  }, 90_000);

  it('a truncated COCO file is a label-malformed finding, not a crash; alone, it is "no images read" (exit 2) saying why', async () => {
    const root = path.join(base, 'coco-truncated');
    await mkdir(path.join(root, 'images'), {recursive: true});
    await writeFile(path.join(root, 'images', 'a.jpg'), jpeg);
    const full = JSON.stringify({images: [{id: 1, file_name: 'images/a.jpg', width: 96, height: 64}], annotations: [], categories: [{id: 1, name: 'Cone'}]});
    await writeFile(path.join(root, 'instances_train.json'), full.slice(0, full.length - 20));
    await writeFile(path.join(root, 'instances_val.json'), full);
    const r = await runNatix(['validate-data', root, '--format', 'coco', '--json']);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    expect(r.json.result.findings).toEqual(expect.arrayContaining([expect.objectContaining({check: 'label-malformed', path: 'instances_train.json'})]));
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*\.js:\d+:\d+\)/); // no stack trace
    const alone = await runNatix(['validate-data', path.join(root, 'instances_train.json'), '--json']);
    expect(alone.code).toBe(2);
    expect(alone.json).toMatchObject({code: 'NO_SAMPLES'});
    expect(alone.json.message).toMatch(/instances_train\.json: not valid JSON/);
  }, 90_000);
});

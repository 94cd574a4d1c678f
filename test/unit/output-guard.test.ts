/**
 * natix never writes into a dataset (issue 10): every output path is resolved through symlinks (the real path of
 * its nearest existing parent) and refused inside the dataset root; the quarantine copy never follows a symlink
 * planted inside the quarantine folder.
 */
import {mkdir, mkdtemp, readdir, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {beforeAll, describe, expect, it} from 'vitest';
import {assertOutsideDataset, realOutputPath} from '../../src/lib/data/safe-path.js';
import {quarantineFlagged} from '../../src/lib/quality/quarantine.js';
import type {Finding, ImageRecord} from '../../src/lib/quality/validate.js';
import {snapshot} from '../helpers/snapshot.js';

let base: string;
let dataset: string;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-outguard-'));
  dataset = path.join(base, 'dataset');
  await mkdir(path.join(dataset, 'train', 'roadwork'), {recursive: true});
  await writeFile(path.join(dataset, 'train', 'roadwork', 'a.jpg'), 'not really a jpeg');
  await symlink(path.join(dataset, 'train'), path.join(base, 'link-into-dataset'));
});

describe('output paths', () => {
  it('resolves the nearest existing parent through symlinks', () => {
    expect(realOutputPath(path.join(base, 'link-into-dataset', 'qq', 'deeper'))).toBe(path.join(dataset, 'train', 'qq', 'deeper'));
    expect(realOutputPath(path.join(base, 'fresh', 'report.html'))).toBe(path.join(base, 'fresh', 'report.html'));
  });

  it('refuses a path inside the dataset, directly or through a symlink, with a usage error naming the flag', () => {
    for (const output of [path.join(dataset, 'report.html'), path.join(dataset, 'train', 'new', 'x'), path.join(base, 'link-into-dataset', 'qq'), dataset]) {
      expect(() => assertOutsideDataset(output, dataset, '--quarantine')).toThrow(expect.objectContaining({code: 'OUTPUT_INSIDE_DATASET', exitCode: 2, message: expect.stringContaining('--quarantine')}));
    }
    expect(assertOutsideDataset(path.join(base, 'out', 'report.html'), dataset, '--report')).toBe(path.join(base, 'out', 'report.html'));
  });

  it('a symlink planted inside the quarantine folder cannot redirect a copy into the dataset', async () => {
    const quarantine = path.join(base, 'quarantine');
    await mkdir(path.join(quarantine, 'files'), {recursive: true});
    await symlink(path.join(dataset, 'train'), path.join(quarantine, 'files', 'train'));
    const before = await snapshot(dataset);
    const records: ImageRecord[] = [{ordinal: 0, path: 'train/roadwork/a.jpg', label: 1, source: path.join(dataset, 'train', 'roadwork', 'a.jpg')}];
    const findings: Finding[] = [{check: 'unreadable', severity: 'error', path: 'train/roadwork/a.jpg', message: 'x'}];
    await expect(quarantineFlagged(quarantine, findings, records, dataset)).rejects.toMatchObject({code: 'OUTPUT_ESCAPE'});
    expect(await snapshot(dataset)).toEqual(before);
    await expect(quarantineFlagged(path.join(base, 'link-into-dataset', 'qq'), findings, records, dataset)).rejects.toMatchObject({code: 'OUTPUT_INSIDE_DATASET'});
    expect(await snapshot(dataset)).toEqual(before);
  });

  it('a symlink at a quarantine target is replaced, not followed', async () => {
    const quarantine = path.join(base, 'quarantine-2');
    await mkdir(path.join(quarantine, 'files', 'train', 'roadwork'), {recursive: true});
    const victim = path.join(base, 'victim.txt');
    await writeFile(victim, 'keep me');
    await symlink(victim, path.join(quarantine, 'files', 'train', 'roadwork', 'a.jpg'));
    const records: ImageRecord[] = [{ordinal: 0, path: 'train/roadwork/a.jpg', label: 1, source: path.join(dataset, 'train', 'roadwork', 'a.jpg')}];
    await quarantineFlagged(quarantine, [{check: 'unreadable', severity: 'error', path: 'train/roadwork/a.jpg', message: 'x'}], records, dataset);
    const {readFile} = await import('node:fs/promises');
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    expect(await readFile(path.join(quarantine, 'files', 'train', 'roadwork', 'a.jpg'), 'utf8')).toBe('not really a jpeg');
    expect((await readdir(path.join(quarantine, 'files', 'train', 'roadwork'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

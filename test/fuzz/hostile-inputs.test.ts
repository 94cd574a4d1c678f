/**
 * Fuzzing the classes of hostile input issue 10 found (each hung, crashed or answered wrongly before):
 * FIFOs, chmod 000 files and folders, symlink loops, symlinks out of the root, directories where files are
 * expected, empty and random-byte files, garbled CSV / COCO / parquet / YOLO labels, and huge numbers in every
 * numeric flag; FIFOs, symlinks to FIFOs and folders where a model, its external data, its configs or a checkpoint
 * file should be. The rule checked every time: a finding on the right path or a usage error (exit 2), within the
 * test's time limit - never a hang, a crash, an INTERNAL_ERROR, a write into the dataset, or a silent pass.
 */
import {chmod, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {asyncBufferFromFile, parquetMetadataAsync} from 'hyparquet';
import sharp from 'sharp';
import {imageLabelShard} from '../helpers/parquet.js';
import {beforeAll, describe, expect, it} from 'vitest';
import {openDataset} from '../../src/lib/data/open.js';
import type {DataIssue} from '../../src/lib/data/sample.js';
import {NatixError} from '../../src/lib/errors.js';
import {garbleRowGroup, lcg, mkfifo} from '../helpers/corrupt.js';
import {REPO_ROOT, runNatix, unprivileged} from '../helpers/cli.js';
import {externalDataModel, redVsBlueLogitsModel, writeHfModelDir} from '../helpers/models.js';
import {snapshot} from '../helpers/snapshot.js';

let base: string;
let jpeg: Buffer;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'natix-fuzz-hostile-'));
  await chmod(base, 0o755);
  const w = 64;
  const h = 48;
  const raw = Buffer.alloc(w * h * 3);
  const rand = lcg(3);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.min(255, Math.floor((i % w) * 3 + c * 40 + rand() * 60));
  jpeg = await sharp(raw, {raw: {width: w, height: h, channels: 3}}).jpeg({quality: 90}).toBuffer();
  await mkdir(path.join(base, 'outside'), {recursive: true});
  await writeFile(path.join(base, 'outside', 'secret.jpg'), jpeg);
});

/** Reads a dataset in-process; the only error a read may end with is a NatixError (exit 2), never anything else. */
async function readAll(input: string): Promise<{count: number; issues: DataIssue[]; error?: NatixError}> {
  const issues: DataIssue[] = [];
  let count = 0;
  try {
    const dataset = await openDataset(input, 'auto', {onIssue: (i) => issues.push(i)});
    for await (const _ of dataset.samples()) count++;
  } catch (error) {
    if (!(error instanceof NatixError)) throw error;
    expect(error.exitCode).toBe(2);
    return {count, issues, error};
  }
  return {count, issues};
}

describe('fuzz: hostile files in a class-folder dataset (through the binary, as an unprivileged user)', () => {
  it('FIFOs, chmod 000, symlink loops, folders named x.jpg, empty and random files: each a finding on its path', async () => {
    const root = path.join(base, 'folders');
    const rand = lcg(20261123);
    const bad = new Map<string, RegExp>();
    const good: string[] = [];
    const asUser = unprivileged(base);
    const canObserveEacces = asUser.uid !== undefined || process.getuid?.() !== 0;
    for (const cls of ['roadwork', 'none']) await mkdir(path.join(root, 'train', cls), {recursive: true});
    for (let i = 0; i < 120; i++) {
      const cls = i % 2 ? 'roadwork' : 'none';
      const rel = `train/${cls}/f${String(i).padStart(3, '0')}.jpg`;
      const file = path.join(root, rel);
      const kind = Math.floor(rand() * 10);
      switch (kind) {
        case 0:
          mkfifo(file);
          bad.set(rel, /FIFO/);
          break;
        case 1:
          mkfifo(`${file}.target`);
          await symlink(`${path.basename(file)}.target`, file);
          bad.set(rel, /FIFO/);
          break;
        case 2:
          await symlink(path.basename(file), file); // a link to itself: a loop
          bad.set(rel, /symlink loop/);
          break;
        case 3:
          await mkdir(file);
          bad.set(rel, /directory/);
          break;
        case 4:
          await writeFile(file, '');
          bad.set(rel, /empty/);
          break;
        case 5:
          await writeFile(file, Buffer.from(Array.from({length: 200 + Math.floor(rand() * 500)}, () => Math.floor(rand() * 256))));
          bad.set(rel, /cannot decode/);
          break;
        case 6:
          if (canObserveEacces) {
            await writeFile(file, jpeg);
            await chmod(file, 0o000);
            bad.set(rel, /permission denied/);
          } else {
            await writeFile(file, jpeg);
            good.push(rel);
          }
          break;
        case 7:
          await symlink(path.join(base, 'outside', 'secret.jpg'), file);
          bad.set(rel, /outside the dataset root/);
          break;
        default:
          await writeFile(file, jpeg);
          good.push(rel);
      }
    }
    // A chmod 000 class folder and a class folder that is a symlink out of the root.
    await mkdir(path.join(root, 'val', 'roadwork'), {recursive: true});
    await writeFile(path.join(root, 'val', 'roadwork', 'hidden.jpg'), jpeg);
    if (canObserveEacces) {
      await chmod(path.join(root, 'val', 'roadwork'), 0o000);
      bad.set('val/roadwork', /permission denied/);
    } else {
      good.push('val/roadwork/hidden.jpg');
    }
    await symlink(path.join(base, 'outside'), path.join(root, 'val', 'none'));
    bad.set('val/none', /outside the dataset root/);

    const before = await snapshot(root);
    const r = await runNatix(['validate-data', root, '--json', '--max-findings', '100000', '--concurrency', '8'], {...asUser, timeoutMs: 120_000});
    expect(r.signal, 'killed: it hung').toBeNull();
    expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+:\d+/);
    expect(r.code, r.stdout.slice(0, 2000) + r.stderr.slice(-2000)).toBe(1);
    const findings = r.json.result.findings as Array<{check: string; path: string; message: string}>;
    const byPath = new Map<string, string[]>();
    for (const f of findings) byPath.set(f.path, [...(byPath.get(f.path) ?? []), f.message]);
    const missing = [...bad].filter(([p, why]) => !(byPath.get(p) ?? []).some((m) => why.test(m))).map(([p, why]) => `${p} ${why} got ${JSON.stringify(byPath.get(p))}`);
    expect(missing).toEqual([]);
    expect(good.filter((p) => findings.some((f) => f.path === p && (f.check === 'unreadable' || f.check === 'path-escape')))).toEqual([]);
    expect(JSON.stringify(findings)).not.toContain(base); // paths relative to the root, never absolute
    expect(JSON.stringify(findings)).not.toContain('secret.jpg');
    await chmod(path.join(root, 'val', 'roadwork'), 0o755);
    expect(await snapshot(root)).toEqual(before);
  }, 150_000);
});

describe('fuzz: garbled label files (in-process readers)', () => {
  it('CSV manifests: 300 random mutations never crash; every problem names manifest.csv and a line', async () => {
    const rand = lcg(77);
    const root = path.join(base, 'csv');
    await mkdir(root, {recursive: true});
    await writeFile(path.join(root, 'a.jpg'), jpeg);
    const clean = ['path,label,split,city', 'a.jpg,1,train,Berlin', 'a.jpg,0,val,"Paris, FR"', 'a.jpg,roadwork,test,x'].join('\n');
    const junk = ['"', '""', ',', '\n', '\r\n', '\u0000', '\u00ff', '-1', '1e21', '0x1', 'label', ' ', '"\n"'];
    for (let k = 0; k < 300; k++) {
      let text = clean;
      for (let m = 0; m < 1 + Math.floor(rand() * 4); m++) {
        const at = Math.floor(rand() * text.length);
        const op = Math.floor(rand() * 3);
        if (op === 0) text = text.slice(0, at) + junk[Math.floor(rand() * junk.length)]! + text.slice(at);
        else if (op === 1) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 5));
        else text = text.slice(0, at);
      }
      await writeFile(path.join(root, 'manifest.csv'), text);
      const {issues} = await readAll(root);
      for (const i of issues) {
        if (i.check === 'label-malformed') expect(i.path).toBe('manifest.csv');
        expect(i.message).toMatch(/^manifest\.csv(:\d+)?: |^a\.jpg|^manifest\.csv/);
      }
    }
  }, 120_000);

  it('COCO: 300 documents with random values replaced (null, numbers, strings, arrays) never crash', async () => {
    const rand = lcg(5);
    const root = path.join(base, 'coco');
    await mkdir(path.join(root, 'images'), {recursive: true});
    await writeFile(path.join(root, 'images', 'a.jpg'), jpeg);
    const replacements: unknown[] = [null, 0, -1, 1e21, 'x', [], {}, [null], true];
    const mutate = (value: unknown): unknown => {
      if (rand() < 0.15) return replacements[Math.floor(rand() * replacements.length)];
      if (Array.isArray(value)) return value.map(mutate);
      if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(() => rand() > 0.05).map(([k, v]) => [k, mutate(v)]));
      return value;
    };
    const doc = {images: [{id: 1, file_name: 'a.jpg', width: 64, height: 48}, {id: 2, file_name: 'images/a.jpg', width: 64, height: 48, label: 1}], annotations: [{id: 7, image_id: 1, category_id: 1, bbox: [1, 2, 10, 10]}, {id: 8, image_id: 2, category_id: 1, bbox: [5, 5, 5, 5]}], categories: [{id: 1, name: 'cone'}]};
    for (let k = 0; k < 300; k++) {
      await writeFile(path.join(root, 'instances.json'), JSON.stringify(mutate(doc)));
      const {issues} = await readAll(root);
      for (const i of issues) expect(typeof i.message).toBe('string');
    }
  }, 120_000);

  it('parquet: 60 shards with random byte ranges garbled never crash; problems name the shard', async () => {
    const rand = lcg(11);
    const root = path.join(base, 'parquet');
    await mkdir(path.join(root, 'data'), {recursive: true});
    const shard = imageLabelShard([0, 1, 2, 3].map(() => new Uint8Array(jpeg)), [1, 0, 1, 0], 2);
    const file = path.join(root, 'data', 'train-00000-of-00001.parquet');
    await writeFile(file, shard);
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(file));
    const pages = meta.row_groups.flatMap((g) => g.columns.map((c) => Number(c.meta_data!.data_page_offset)));
    for (let k = 0; k < 60; k++) {
      // Half the time a page header, half the time anywhere (including the footer).
      const offset = rand() < 0.5 ? pages[Math.floor(rand() * pages.length)]! : Math.floor(rand() * shard.length);
      await writeFile(file, garbleRowGroup(shard, offset, 1 + Math.floor(rand() * 40), k + 1));
      const {issues, count} = await readAll(root);
      expect(count).toBeLessThanOrEqual(4);
      for (const i of issues) expect(i.path.startsWith('data/train-00000-of-00001.parquet')).toBe(true);
    }
  }, 120_000);

  it('YOLO: label files of random bytes and number-like garbage are findings on the label file, never numbers', async () => {
    const rand = lcg(9);
    const root = path.join(base, 'yolo');
    await mkdir(path.join(root, 'images', 'train'), {recursive: true});
    await mkdir(path.join(root, 'labels', 'train'), {recursive: true});
    await writeFile(path.join(root, 'data.yaml'), 'train: images/train\nnames: [cone, drum]\n');
    const tokens = ['0x1', '1e400', 'Infinity', '-0', '1_0', '0b1', '.5.', '+-1', 'NaN', '１'];
    const labels: string[] = [];
    for (let i = 0; i < 80; i++) {
      await writeFile(path.join(root, 'images', 'train', `i${i}.jpg`), jpeg);
      const label = `labels/train/i${i}.txt`;
      const row = ['0', '0.5', '0.5', '0.2', '0.2'];
      row[Math.floor(rand() * 5)] = tokens[Math.floor(rand() * tokens.length)]!;
      await writeFile(path.join(root, label), i % 5 === 0 ? Buffer.from(Array.from({length: 64}, () => Math.floor(rand() * 256))) : `${row.join(' ')}\n`);
      labels.push(label);
    }
    const {issues} = await readAll(root);
    const flagged = new Set(issues.map((i) => i.path));
    expect(labels.filter((l) => !flagged.has(l))).toEqual([]);
  }, 60_000);
});

describe('fuzz: huge numbers in every numeric flag', () => {
  it('no numeric flag of any command accepts 99999999999999999999', async () => {
    const commands = ['bench', 'validate-data', 'validate-data/merge', 'test-inference', 'train', 'export', 'doctor', 'datasets/synth', 'tracking/sync'];
    const unbounded: string[] = [];
    for (const name of commands) {
      const mod = (await import(path.join(REPO_ROOT, 'src', 'commands', `${name}.ts`))) as {default: {flags?: Record<string, {type: string; parse?: (input: string, ctx: unknown, opts: unknown) => Promise<unknown>}>}};
      for (const [flag, def] of Object.entries(mod.default.flags ?? {})) {
        if (def.type !== 'option' || !def.parse) continue;
        let parsed: unknown;
        try {
          parsed = await def.parse('99999999999999999999', {}, def);
        } catch {
          continue; // refused: good
        }
        // Accepted: only a non-numeric reading of the text (a name, a path) is fine.
        if (typeof parsed === 'number' || (parsed && typeof parsed === 'object')) unbounded.push(`${name} --${flag} accepted ${JSON.stringify(parsed)}`);
      }
    }
    expect(unbounded).toEqual([]);
  }, 60_000);
});

describe('fuzz: hostile model files (through the binary): never handed to onnxruntime, never waited on', () => {
  /** Each case: the command, and what the error must say (the file named, what it is). */
  it('FIFOs, symlinks to FIFOs and folders where a model, its weights or its configs should be: exit 2 naming the file', async () => {
    const root = path.join(base, 'models');
    await mkdir(root, {recursive: true});
    const image = path.join(root, 'photo.jpg');
    await writeFile(image, jpeg);
    const data = path.join(root, 'data');
    for (const cls of ['roadwork', 'none']) {
      await mkdir(path.join(data, 'test', cls), {recursive: true});
      await writeFile(path.join(data, 'test', cls, 'a.jpg'), jpeg);
    }
    const cascade = async (name: string, modelPath: string): Promise<string> => {
      const file = path.join(root, `${name}.yaml`);
      await writeFile(file, `models:\n  m:\n    path: ${modelPath}\nstages:\n  - name: one\n    models: [m]\n`);
      return file;
    };
    // 1. A cascade whose model file is a FIFO.
    mkfifo(path.join(root, 'fifo.onnx'));
    const fifoCascade = await cascade('fifo-cascade', 'fifo.onnx');
    // 2. A cascade whose model is a symlink to a FIFO.
    mkfifo(path.join(root, 'real-fifo'));
    await symlink('real-fifo', path.join(root, 'link.onnx'));
    const linkCascade = await cascade('link-cascade', 'link.onnx');
    // 3. An HF folder whose model.onnx is a FIFO; 4. one where it is a folder; 5. a FIFO preprocessor_config.json.
    const hf = async (name: string, onnx: 'fifo' | 'dir' | 'file', preprocessor: 'fifo' | 'file'): Promise<string> => {
      const dir = path.join(root, name);
      await writeHfModelDir(dir, redVsBlueLogitsModel(3));
      if (onnx !== 'file') {
        await rm(path.join(dir, 'model.onnx'));
        if (onnx === 'fifo') mkfifo(path.join(dir, 'model.onnx'));
        else await mkdir(path.join(dir, 'model.onnx'));
      }
      if (preprocessor === 'fifo') {
        await rm(path.join(dir, 'preprocessor_config.json'));
        mkfifo(path.join(dir, 'preprocessor_config.json'));
      }
      return dir;
    };
    const hfFifo = await hf('hf-fifo', 'fifo', 'file');
    const hfDir = await hf('hf-dir', 'dir', 'file');
    const hfPre = await cascade('hf-pre', `${path.basename(await hf('hf-pre-fifo', 'file', 'fifo'))}`);
    // 6. An ONNX model whose external data file (model.onnx_data) is a FIFO.
    const external = path.join(root, 'external');
    await mkdir(external, {recursive: true});
    await writeFile(path.join(external, 'model.onnx'), externalDataModel('model.onnx_data').model);
    mkfifo(path.join(external, 'model.onnx_data'));
    // 7. A checkpoint whose manifest lists a FIFO (natix export, and train --resume, read it).
    const checkpoint = path.join(root, 'run', 'epoch-0001');
    await mkdir(checkpoint, {recursive: true});
    await writeFile(path.join(checkpoint, 'manifest.json'), JSON.stringify({format: 'natix-checkpoint/1', files: {'weights.bin': '0'.repeat(64)}}));
    mkfifo(path.join(checkpoint, 'weights.bin'));
    // 8. natix train with model.from: an HF folder whose model.onnx is a FIFO.
    const trainConfig = path.join(root, 'train.yaml');
    await writeFile(trainConfig, `dataset:\n  path: data\nmodel:\n  from: hf-fifo\n`);

    const cases: Array<{args: string[]; message: RegExp}> = [
      {args: ['test-inference', '--model', fifoCascade, '--image', image], message: /fifo\.onnx is a FIFO/},
      {args: ['bench', '--model', fifoCascade, '--dataset', data, '--warmup', '1', '--min-duration', '1s'], message: /fifo\.onnx is a FIFO/},
      {args: ['test-inference', '--model', linkCascade, '--image', image], message: /link\.onnx \(a symlink to .*real-fifo\) is a FIFO/},
      {args: ['test-inference', '--model', hfFifo, '--image', image], message: /hf-fifo\/model\.onnx is a FIFO/},
      {args: ['test-inference', '--model', hfDir, '--image', image], message: /hf-dir\/model\.onnx is a directory/},
      {args: ['test-inference', '--model', hfPre, '--image', image], message: /preprocessor_config\.json is a FIFO/},
      {args: ['test-inference', '--model', path.join(external, 'model.onnx'), '--image', image], message: /model\.onnx_data is a FIFO/},
      {args: ['export', checkpoint, '--out', path.join(root, 'export-out')], message: /weights\.bin is a FIFO/},
      {args: ['train', '--config', trainConfig, '--inspect'], message: /hf-fifo\/model\.onnx is a FIFO/},
    ];
    // All at once: a hang shows as a kill at the time limit (signal set, no exit code), not as a blocked suite.
    const results = await Promise.all(cases.map(({args}) => runNatix([...args, '--json'], {cwd: root, timeoutMs: 90_000})));
    const wrong: string[] = [];
    for (const [i, r] of results.entries()) {
      const {args, message} = cases[i]!;
      const what = `natix ${args.map((a) => (path.isAbsolute(a) ? path.relative(root, a) : a)).join(' ')}`;
      if (r.signal) wrong.push(`${what}: killed after 90 s (hung)`);
      else if (r.code !== 2) wrong.push(`${what}: exit ${r.code}: ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
      else if (!message.test(r.json?.message ?? '')) wrong.push(`${what}: message ${JSON.stringify(r.json?.message ?? r.stderr.slice(0, 300))} does not match ${message}`);
    }
    expect(wrong).toEqual([]);
  }, 240_000);
});

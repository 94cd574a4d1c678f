/** Typos, config errors and cascade errors as a new user meets them: each says what to do, once. */
import {existsSync} from 'node:fs';
import {mkdtemp, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {publishedSchemaPath} from '../../src/lib/config/load.js';
import {SCHEMAS} from '../../src/lib/config/schemas/index.js';
import {suggest} from '../../src/lib/cli/suggest.js';
import {REPO_ROOT, runNatix} from '../helpers/cli.js';

const IMAGE = path.join(REPO_ROOT, 'datasets', 'sample', 'test', 'roadwork', 'synth-2026-000000.jpg');

describe('did you mean', () => {
  it('suggests the closest command and flag names', () => {
    expect(suggest('bnech', ['bench', 'doctor', 'export'])).toEqual(['bench']);
    expect(suggest('min-mc', ['min-mcc', 'min-accuracy', 'max-p50-ms'])).toEqual(['min-mcc']);
    expect(suggest('validate', ['validate-data', 'train'])).toEqual(['validate-data']);
    expect(suggest('zzzzzz', ['bench', 'train'])).toEqual([]);
  });

  it('a mistyped command exits 2 with a suggestion (also in --json)', async () => {
    const r = await runNatix(['bnech']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"bnech" is not a natix command. Did you mean "bench"?');
    const j = await runNatix(['trian', '--json']);
    expect(j.code).toBe(2);
    expect(j.json).toMatchObject({code: 'COMMAND_NOT_FOUND', message: '"trian" is not a natix command. Did you mean "train"?'});
  });

  it('a mistyped flag exits 2 with a suggestion, and the help advice is given once', async () => {
    const r = await runNatix(['bench', '--min-mc', '0.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Nonexistent flag: --min-mc. Did you mean --min-mcc?');
    expect(r.stderr.match(/--help/g)).toHaveLength(1);
    expect(r.stderr).toContain('Run natix bench --help to see its flags.');
  });
});

describe('config and cascade errors point at what to fix', () => {
  it('every schema a config error names is published under schemas/, and the package ships that folder', async () => {
    for (const schema of Object.values(SCHEMAS)) {
      const published = publishedSchemaPath(schema);
      expect(published && existsSync(published), String(published)).toBe(true);
    }
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {files: string[]};
    expect(pkg.files).toContain('schemas');
  });

  it('a bad config names its published schema file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-cli-'));
    const bad = path.join(dir, 'train.yaml');
    await writeFile(bad, 'epochs: 0\ndataset:\n  path: x\n');
    const r = await runNatix(['train', '--config', bad, '--json']);
    expect(r.code).toBe(2);
    expect(r.json.actions.join(' ')).toContain(path.join(REPO_ROOT, 'schemas', 'train-config.schema.json'));
    expect(r.json.actions.join(' ')).not.toContain('src/lib/config/schemas');
  });

  it('a cascade whose model cannot be loaded names the cascade file and the model key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-cli-'));
    const cascade = path.join(dir, 'cascade.yaml');
    await writeFile(cascade, 'models:\n  fast: {path: missing-model}\nstages:\n  - name: one\n    models: [fast]\n');
    const r = await runNatix(['test-inference', '--image', IMAGE, '--model', cascade, '--json']);
    expect(r.code).toBe(2);
    expect(r.json.message).toMatch(new RegExp(`^${cascade.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: models\\.fast: `));
  });
});

import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, it} from 'vitest';
import {schemaFromFlags} from '../../src/lib/cli/base-command.js';
import {colorLevelFor, formatTable} from '../../src/lib/cli/ui.js';
import {loadConfigFile, validateAgainstSchema} from '../../src/lib/config/load.js';
import {ExitCode, NatixError} from '../../src/lib/errors.js';

const trainLike = {
  type: 'object',
  additionalProperties: false,
  properties: {
    epochs: {type: 'integer', minimum: 1},
    optimizer: {type: 'object', additionalProperties: false, properties: {name: {enum: ['adam', 'sgd']}}},
  },
} as const;

describe('config validation', () => {
  it('names the file, the JSON path and what was expected, merging type and bound', () => {
    let error: unknown;
    try {
      validateAgainstSchema(trainLike, {epochs: 0.5, optimizer: {name: 'rmsprop', extra: 1}}, 'train.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NatixError);
    const e = error as NatixError;
    expect(e.exitCode).toBe(ExitCode.Usage);
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message.split('\n')).toEqual([
      'train.yaml: /epochs must be integer >= 1',
      'train.yaml: /optimizer has unknown key "extra"',
      'train.yaml: /optimizer/name must be one of "adam", "sgd"',
    ]);
  });

  it('reports YAML syntax errors and missing files as config errors (exit 2)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-config-'));
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'epochs: [1, 2\n');
    await expect(loadConfigFile(bad)).rejects.toMatchObject({code: 'CONFIG_PARSE', exitCode: 2});
    await expect(loadConfigFile(path.join(dir, 'missing.yaml'))).rejects.toMatchObject({code: 'CONFIG_NOT_FOUND', exitCode: 2});
    const good = path.join(dir, 'good.json');
    await writeFile(good, '{"epochs": 3}');
    await expect(loadConfigFile(good, trainLike)).resolves.toEqual({epochs: 3});
  });

  it('derives a config schema from flag definitions', () => {
    const schema = schemaFromFlags(
      {
        device: {type: 'option', options: ['auto', 'cpu', 'cuda']},
        strict: {type: 'boolean'},
        count: {type: 'option'},
        tag: {type: 'option', multiple: true},
        json: {type: 'boolean'},
      },
      ['json'],
    );
    expect(schema).toEqual({
      type: 'object',
      additionalProperties: false,
      properties: {
        device: {enum: ['auto', 'cpu', 'cuda']},
        strict: {type: 'boolean'},
        count: {type: ['string', 'number', 'boolean']},
        tag: {type: 'array', items: {type: ['string', 'number', 'boolean']}},
      },
    });
  });
});

describe('terminal output', () => {
  it('colours only a TTY, honours NO_COLOR and FORCE_COLOR', () => {
    expect(colorLevelFor({isTTY: false}, {})).toBe(0);
    expect(colorLevelFor({isTTY: true}, {})).toBeGreaterThan(0);
    expect(colorLevelFor({isTTY: true}, {NO_COLOR: '1'})).toBe(0);
    expect(colorLevelFor({isTTY: false}, {FORCE_COLOR: '1'})).toBe(1);
    expect(colorLevelFor({isTTY: true}, {TERM: 'dumb'})).toBe(0);
  });

  it('aligns table columns, ignoring colour codes', () => {
    const table = formatTable(['check', 'count'], [['dark', 3], ['\u001B[31mblurry\u001B[39m', 12]], ['left', 'right']);
    expect(table.split('\n')).toEqual(['check   count', '------  -----', 'dark        3', '\u001B[31mblurry\u001B[39m     12']);
  });
});

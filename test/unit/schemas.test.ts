import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {Ajv} from 'ajv';
import addFormatsModule from 'ajv-formats';
import {describe, expect, it} from 'vitest';
import {SCHEMAS} from '../../src/lib/config/schemas/index.js';
import {REPO_ROOT} from '../helpers/cli.js';

const addFormats = ((addFormatsModule as unknown as {default?: unknown}).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

describe('published JSON Schemas', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${name} compiles in ajv strict mode and its published copy is current`, async () => {
      const ajv = addFormats(new Ajv({strict: true, allowUnionTypes: true}));
      expect(() => ajv.compile(schema)).not.toThrow();
      const published = JSON.parse(await readFile(path.join(REPO_ROOT, 'schemas', `${name}.schema.json`), 'utf8')) as unknown;
      expect(published, `run \`npm run schemas\` to refresh schemas/${name}.schema.json`).toEqual(schema);
    });
  }
});

/**
 * Publishes every registered JSON Schema (src/lib/config/schemas/index.ts) as `schemas/<name>.schema.json`, the
 * files the README points users and editors to. `npm run schemas`; a test checks the published copies are current.
 */
import {mkdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {SCHEMAS} from '../src/lib/config/schemas/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'schemas');
await mkdir(out, {recursive: true});
for (const [name, schema] of Object.entries(SCHEMAS)) {
  await writeFile(path.join(out, `${name}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`schemas/${name}.schema.json`);
}

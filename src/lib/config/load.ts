/**
 * Reading and validating configuration files (YAML or JSON) against the JSON Schemas in this folder.
 * Errors name the file, the JSON path and what was expected, e.g. `train.yaml: /epochs must be integer >= 1`.
 */
import path from 'node:path';
import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';
import {ExitCode, NatixError} from '../errors.js';
import {packageRoot} from '../runtime/environment.js';
import {readUserFile, UserFileError} from '../util/user-files.js';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop.
const addFormats = ((addFormatsModule as unknown as {default?: unknown}).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

export type JsonSchema = Record<string, unknown>;

const ajv = new Ajv({allErrors: true, strict: true, useDefaults: false, allowUnionTypes: true});
addFormats(ajv);
const compiled = new WeakMap<object, ValidateFunction>();

function validatorFor(schema: JsonSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** One readable line per schema violation: `/epochs must be integer >= 1`. */
export function describeSchemaErrors(errors: ErrorObject[]): string[] {
  // Merge type + bound errors on the same path so users read one line: "must be integer >= 1".
  const byPath = new Map<string, string[]>();
  for (const error of errors) {
    const where = error.instancePath || '/';
    let what: string;
    switch (error.keyword) {
      case 'additionalProperties':
        what = `has unknown key "${String(error.params.additionalProperty)}"`;
        break;
      case 'enum':
        what = `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'minimum':
        what = `>= ${String(error.params.limit)}`;
        break;
      case 'maximum':
        what = `<= ${String(error.params.limit)}`;
        break;
      case 'exclusiveMinimum':
        what = `> ${String(error.params.limit)}`;
        break;
      case 'exclusiveMaximum':
        what = `< ${String(error.params.limit)}`;
        break;
      case 'type':
        what = `must be ${String(error.params.type)}`;
        break;
      case 'required':
        what = `is missing required key "${String(error.params.missingProperty)}"`;
        break;
      default:
        what = error.message ?? error.keyword;
    }
    const list = byPath.get(where) ?? [];
    if (!list.includes(what)) list.push(what);
    byPath.set(where, list);
  }
  const lines: string[] = [];
  for (const [where, whats] of byPath) {
    const type = whats.find((w) => w.startsWith('must be ') && !w.startsWith('must be one of'));
    const bounds = whats.filter((w) => /^[<>]=? /.test(w));
    const rest = whats.filter((w) => w !== type && !bounds.includes(w));
    if (type || bounds.length > 0) {
      lines.push(`${where} ${[type ?? 'must be', ...bounds].join(' ')}`);
    }
    for (const r of rest) lines.push(`${where} ${r}`);
  }
  return lines;
}

/**
 * Validates `data` against `schema`; throws a NatixError (exit 2) listing every violation, prefixed by `label`
 * (usually the file's base name).
 */
export function validateAgainstSchema<T>(schema: JsonSchema, data: unknown, label: string): T {
  const validate = validatorFor(schema);
  if (!validate(data)) {
    const lines = describeSchemaErrors(validate.errors ?? []);
    throw new NatixError(lines.map((l) => `${label}: ${l}`).join('\n'), {
      code: 'CONFIG_INVALID',
      exitCode: ExitCode.Usage,
      actions: [`Fix ${label}; ${publishedSchemaPath(schema) ? `its JSON Schema: ${publishedSchemaPath(schema)}` : `the JSON Schemas are in ${path.join(packageRoot(), 'schemas')}`}`],
      data: {file: label, errors: lines},
    });
  }
  return data as T;
}

/** Where the published copy of `schema` is (`<package>/schemas/<name>.schema.json`, named by its $id), if it has one. */
export function publishedSchemaPath(schema: JsonSchema): string | undefined {
  const id = typeof schema.$id === 'string' ? schema.$id : undefined;
  return id ? path.join(packageRoot(), 'schemas', id.slice(id.lastIndexOf('/') + 1)) : undefined;
}

/** Parses YAML or JSON text; the file's extension decides, with JSON being valid YAML anyway. */
export function parseConfigText(text: string, file: string): unknown {
  const label = path.basename(file);
  try {
    if (file.endsWith('.json')) return JSON.parse(text) as unknown;
    const doc = YAML.parseDocument(text, {prettyErrors: true});
    if (doc.errors.length > 0) throw doc.errors[0];
    return doc.toJS() as unknown;
  } catch (error) {
    throw new NatixError(`${label}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`, {
      code: 'CONFIG_PARSE',
      exitCode: ExitCode.Usage,
      actions: [`Check the syntax of ${file}.`],
    });
  }
}

/** Reads a YAML/JSON config file and, when a schema is given, validates it. */
export async function loadConfigFile<T = unknown>(file: string, schema?: JsonSchema): Promise<T> {
  let text: string;
  try {
    // Regular files only: a FIFO would block forever; a directory, chmod 000 or a symlink loop says so.
    text = await readUserFile(file, 'utf8');
  } catch (error) {
    const what = error instanceof UserFileError ? error.what : (error as Error).message;
    throw new NatixError(`Config file ${file} ${what}`, {
      code: 'CONFIG_NOT_FOUND',
      exitCode: ExitCode.Usage,
      actions: ['Check the path given to --config.'],
      data: {reason: error instanceof UserFileError ? error.reason : 'io'},
    });
  }
  const data = parseConfigText(text, file) ?? {};
  return schema ? validateAgainstSchema<T>(schema, data, path.basename(file)) : (data as T);
}

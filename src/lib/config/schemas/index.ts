/**
 * Every JSON Schema natix validates against or publishes: config files and `--json` outputs.
 * Each schema lives in its own module here (`as const`, with its TypeScript type derived by json-schema-to-ts);
 * register it below so the schema test compiles it and `npm run schemas` publishes it under `schemas/`.
 */
import type {JsonSchema} from '../load.js';
import {benchResultSchema} from './bench.js';
import {cascadeFileSchema} from './cascade.js';
import {trainConfigSchema} from './train.js';
import {trainerStateSchema} from './train-state.js';
import {validateDataConfigSchema, validateDataResultSchema} from './validate-data.js';

export const SCHEMAS: Record<string, JsonSchema> = {
  cascade: cascadeFileSchema,
  'bench-result': benchResultSchema,
  'validate-data-config': validateDataConfigSchema,
  'validate-data-result': validateDataResultSchema,
  'train-config': trainConfigSchema,
  'train-state': trainerStateSchema,
};

/** The config file of `natix validate-data` (keys mirror its flags, plus thresholds and severities), and its --json result. */
import type {FromSchema} from 'json-schema-to-ts';

export const CHECK_IDS = [
  'unreadable',
  'extension-mismatch',
  'too-small',
  'too-large',
  'dark',
  'light',
  'blurry',
  'low-information',
  'grayscale',
  'odd-aspect-ratio',
  'odd-size',
  'exact-duplicate',
  'near-duplicate',
  'split-leak',
  'label-conflict',
  'class-imbalance',
  'single-class',
  'split-ratio',
  'label-missing',
  'label-malformed',
  'label-class-unknown',
  'box-out-of-bounds',
  'box-degenerate',
  'duplicate-box',
  'label-description-mismatch',
  'path-escape',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

const severity = {enum: ['error', 'warning', 'info', 'off']} as const;

export const validateDataConfigSchema = {
  $id: 'https://natix.dev/schemas/validate-data-config.schema.json',
  title: 'natix validate-data config file',
  type: 'object',
  additionalProperties: false,
  properties: {
    format: {enum: ['auto', 'folder', 'manifest', 'parquet', 'yolo', 'coco']},
    'fail-on': {enum: ['error', 'warning', 'never']},
    hamming: {type: 'integer', minimum: 0, maximum: 32},
    report: {type: 'string'},
    quarantine: {type: 'string'},
    concurrency: {type: 'integer', minimum: 1},
    'class-map': {type: 'string'},
    'max-findings': {type: 'integer', minimum: 1},
    'exact-brightness': {type: 'boolean'},
    thresholds: {
      type: 'object',
      additionalProperties: false,
      properties: {
        dark: {type: 'number', minimum: 0, maximum: 1},
        light: {type: 'number', minimum: 0, maximum: 1},
        'low-information': {type: 'number', minimum: 0, maximum: 1},
        'odd-aspect-ratio': {type: 'number', minimum: 0, maximum: 1},
        blurry: {type: 'number', minimum: 0},
        'too-small': {type: 'integer', minimum: 1},
        'too-large': {type: 'integer', minimum: 1},
        'odd-size': {type: 'number', exclusiveMinimum: 0},
        'class-imbalance': {type: 'number', exclusiveMinimum: 0.5, maximum: 1},
        'split-ratio': {type: 'number', exclusiveMinimum: 0, maximum: 1},
      },
    },
    severities: {type: 'object', additionalProperties: false, properties: Object.fromEntries(CHECK_IDS.map((c) => [c, severity])) as Record<CheckId, typeof severity>},
    'expected-splits': {type: 'object', additionalProperties: {type: 'number', minimum: 0, maximum: 1}},
  },
} as const;

export type ValidateDataConfig = FromSchema<typeof validateDataConfigSchema>;

export const findingSchema = {
  type: 'object',
  required: ['check', 'severity', 'path', 'message'],
  properties: {
    check: {enum: CHECK_IDS},
    severity: {enum: ['error', 'warning', 'info']},
    path: {type: 'string'},
    message: {type: 'string'},
    related: {type: 'array', items: {type: 'string'}},
    value: {},
    threshold: {},
  },
} as const;

export const validateDataResultSchema = {
  $id: 'https://natix.dev/schemas/validate-data-result.schema.json',
  title: 'natix validate-data --json result',
  type: 'object',
  required: ['dataset', 'findings', 'summary', 'statistics', 'verdict'],
  properties: {
    dataset: {
      type: 'object',
      required: ['root', 'format', 'images', 'splits', 'classes'],
      properties: {
        root: {type: 'string'},
        format: {type: 'string'},
        detectedBy: {type: 'string'},
        images: {type: 'integer', minimum: 0},
        splits: {type: 'object', additionalProperties: {type: 'integer'}},
        classes: {type: 'object', additionalProperties: {type: 'integer'}},
      },
    },
    findings: {type: 'array', items: findingSchema},
    findingsTruncated: {type: 'integer'},
    summary: {type: 'object', additionalProperties: {type: 'object', required: ['count', 'severity'], properties: {count: {type: 'integer'}, severity: {enum: ['error', 'warning', 'info']}}}},
    statistics: {type: 'object'},
    seconds: {type: 'number'},
    imagesPerSecond: {type: 'number'},
    verdict: {enum: ['pass', 'fail']},
    failOn: {enum: ['error', 'warning', 'never']},
    report: {type: 'string'},
    quarantine: {type: 'string'},
  },
} as const;

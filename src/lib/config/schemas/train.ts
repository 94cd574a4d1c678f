/** The config file of `natix train` (YAML or JSON). Top-level keys that match a flag can also be given as flags. */
import type {FromSchema} from 'json-schema-to-ts';

export const trainConfigSchema = {
  $id: 'https://natix.dev/schemas/train-config.schema.json',
  title: 'natix train config file',
  type: 'object',
  additionalProperties: false,
  required: ['dataset'],
  properties: {
    'run-name': {type: 'string', pattern: '^[A-Za-z0-9._-]+$'},
    out: {type: 'string'},
    backend: {enum: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']},
    epochs: {type: 'integer', minimum: 1, maximum: 100000},
    'batch-size': {type: 'integer', minimum: 1, maximum: 65536},
    lr: {type: 'number', exclusiveMinimum: 0, maximum: 10},
    seed: {type: 'integer', minimum: 0, maximum: 4294967295},
    'keep-last': {type: 'integer', minimum: 1, maximum: 100000},
    dataset: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: {
        path: {type: 'string'},
        format: {enum: ['auto', 'folder', 'manifest', 'parquet', 'yolo', 'coco']},
        'train-split': {type: 'string'},
        'val-split': {type: 'string'},
        /** Used when the dataset has no splits: [train, val] fractions. */
        'split-ratios': {type: 'array', items: {type: 'number', minimum: 0, maximum: 1}, minItems: 2, maxItems: 2},
        'image-size': {type: 'integer', minimum: 16, maximum: 512},
        'cache-decoded': {type: 'boolean'},
      },
    },
    model: {
      type: 'object',
      additionalProperties: false,
      properties: {
        architecture: {enum: ['tiny-cnn', 'small-cnn', 'mobilenet']},
        width: {type: 'number', exclusiveMinimum: 0, maximum: 4},
        /** A checkpoint folder (epoch-NNNN) or run folder to start from. */
        init: {type: 'string'},
        /** Freeze the first N layers, or the named layers. */
        freeze: {anyOf: [{type: 'integer', minimum: 0}, {type: 'array', items: {type: 'string'}}]},
      },
    },
    optimizer: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: {enum: ['adam', 'sgd']},
        momentum: {type: 'number', minimum: 0, maximum: 1},
        'weight-decay': {type: 'number', minimum: 0},
        schedule: {enum: ['constant', 'step', 'cosine']},
        'warmup-epochs': {type: 'integer', minimum: 0},
        'step-size': {type: 'integer', minimum: 1},
        gamma: {type: 'number', exclusiveMinimum: 0, maximum: 1},
      },
    },
    balance: {enum: ['none', 'sampling']},
    'early-stopping': {
      type: 'object',
      additionalProperties: false,
      properties: {
        patience: {type: 'integer', minimum: 1},
        monitor: {enum: ['val_mcc', 'val_accuracy', 'val_loss', 'loss']},
        mode: {enum: ['max', 'min']},
      },
    },
    'best-metric': {enum: ['val_mcc', 'val_accuracy', 'val_loss']},
    augmentation: {
      type: 'object',
      additionalProperties: false,
      properties: {
        flip: {type: 'boolean'},
        'color-jitter': {type: 'number', minimum: 0, maximum: 1},
        /** Random crop keeping at least this share of each side (1 = off). */
        'random-crop': {type: 'number', exclusiveMinimum: 0, maximum: 1},
        /** Random rotation up to +- this many degrees. */
        rotation: {type: 'number', minimum: 0, maximum: 45},
        /** The subnet's own challenge augmentations (see STREETVISION.md), so the model trains on what it is tested on. */
        validator: {type: 'boolean'},
      },
    },
  },
} as const;

export type TrainConfig = FromSchema<typeof trainConfigSchema>;

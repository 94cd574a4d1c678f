/** The config file of `natix train` (YAML or JSON). Top-level keys that match a flag can also be given as flags. */
import type {FromSchema} from 'json-schema-to-ts';

/** A run folder name: one path segment (not `.` or `..`), at most 100 characters. `--run-name` obeys it too. */
export const RUN_NAME_PATTERN = '^(?!\\.{1,2}$)[A-Za-z0-9._-]+$';
export const RUN_NAME_MAX_LENGTH = 100;

export const trainConfigSchema = {
  $id: 'https://natix.dev/schemas/train-config.schema.json',
  title: 'natix train config file',
  type: 'object',
  additionalProperties: false,
  required: ['dataset'],
  properties: {
    'run-name': {type: 'string', pattern: RUN_NAME_PATTERN, minLength: 1, maxLength: RUN_NAME_MAX_LENGTH},
    out: {type: 'string'},
    backend: {enum: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']},
    epochs: {type: 'integer', minimum: 1, maximum: 100000},
    'batch-size': {type: 'integer', minimum: 1, maximum: 65536},
    lr: {type: 'number', exclusiveMinimum: 0, maximum: 10},
    /** Learning rate of the trained part of the backbone (model.train last:N / all, model.train-from); default lr / 10. */
    'backbone-lr': {type: 'number', exclusiveMinimum: 0, maximum: 10},
    /** Images per forward/backward pass when part of the backbone trains (gradients accumulate to batch-size); default 8. */
    'micro-batch': {type: 'integer', minimum: 1, maximum: 65536},
    /**
     * Threads computing the gradients when part of the backbone trains on the wasm or cpu backend: the main thread and
     * worker threads share each batch's micro-batches out (the result is bit-identical for any count). Default auto:
     * one per core, at most 4 and at most the micro-batches of a batch; tfjs-node backends always use 1.
     */
    'gradient-threads': {anyOf: [{type: 'integer', minimum: 1, maximum: 64}, {const: 'auto'}]},
    /**
     * Keep the frozen prefix's outputs per training image and view on disk (`<run>/boundary/`) when part of the backbone
     * trains, so epochs after the first skip decoding and the prefix; the numbers do not change. Default auto: on up
     * to 4 GB of cached values.
     */
    'boundary-cache': {anyOf: [{type: 'boolean'}, {const: 'auto'}]},
    seed: {type: 'integer', minimum: 0, maximum: 4294967295},
    'keep-last': {type: 'integer', minimum: 1, maximum: 100000},
    /** One dataset, or (head training on a backbone) a list of sources mixed by weight. */
    dataset: {
      anyOf: [
        {
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
            /** How images are resized to the model input: pillow (Pillow-exact, default) or vips (faster); recorded in the export. */
            resampler: {enum: ['pillow', 'vips']},
            'cache-decoded': {type: 'boolean'},
          },
        },
        {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['path'],
            properties: {
              /** Source name in counts and per-source metrics (default: the folder / file name). */
              name: {type: 'string', pattern: '^[A-Za-z0-9._-]+$'},
              path: {type: 'string'},
              format: {enum: ['auto', 'folder', 'manifest', 'parquet', 'yolo', 'coco']},
              /** Share of training draws relative to the other sources' weights (default 1). */
              weight: {type: 'number', exclusiveMinimum: 0},
              /** Class name (or label) -> label for this source. */
              'label-map': {type: 'object', additionalProperties: {type: 'integer', minimum: 0}},
              /** auto: the source's own splits (else split-ratios); train / val: all of it goes there. */
              split: {enum: ['auto', 'train', 'val']},
              'train-split': {type: 'string'},
              'val-split': {type: 'string'},
              'split-ratios': {type: 'array', items: {type: 'number', minimum: 0, maximum: 1}, minItems: 2, maxItems: 2},
            },
          },
        },
      ],
    },
    model: {
      type: 'object',
      additionalProperties: false,
      properties: {
        architecture: {enum: ['tiny-cnn', 'small-cnn', 'mobilenet']},
        /** A frozen backbone: an .onnx file or a Hugging Face-style folder (model.onnx, preprocessor_config.json). */
        from: {type: 'string'},
        /** The feature value: auto, or an output / intermediate value name (natix train --inspect lists them). */
        features: {type: 'string'},
        /** What trains with model.from: head (frozen backbone, default), last:N (the last N blocks too; --inspect lists them) or all. */
        train: {type: 'string', pattern: '^(head|all|last:[1-9][0-9]{0,3})$'},
        /** Train the backbone from this value (a block's "from" in --inspect) to the end; instead of model.train. */
        'train-from': {type: 'string', minLength: 1},
        /** Pooling of the features: cls token (ViT/DINO), mean (tokens or H x W), none, or auto by rank. */
        pool: {enum: ['auto', 'cls', 'mean', 'none']},
        /** preprocessor_config.json to use (default: the model's own, beside model.onnx). */
        preprocessor: {type: 'string'},
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
        name: {enum: ['adam', 'adamw', 'sgd']},
        beta1: {type: 'number', minimum: 0, exclusiveMaximum: 1},
        beta2: {type: 'number', minimum: 0, exclusiveMaximum: 1},
        momentum: {type: 'number', minimum: 0, maximum: 1},
        'weight-decay': {type: 'number', minimum: 0},
        schedule: {enum: ['constant', 'step', 'cosine']},
        'warmup-epochs': {type: 'integer', minimum: 0},
        'step-size': {type: 'integer', minimum: 1},
        gamma: {type: 'number', exclusiveMinimum: 0, maximum: 1},
      },
    },
    balance: {enum: ['none', 'sampling']},
    /** The head trained on the backbone's cached features (model.from). */
    head: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: {enum: ['linear', 'mlp']},
        hidden: {type: 'integer', minimum: 1},
        dropout: {type: 'number', minimum: 0, exclusiveMaximum: 1},
      },
    },
    features: {
      type: 'object',
      additionalProperties: false,
      properties: {
        /** Cached views per training image: 1 = the plain image; more = seeded augmented views (see augmentation.validator). */
        views: {type: 'integer', minimum: 1, maximum: 64},
        /** Images per backbone run. */
        'batch-size': {type: 'integer', minimum: 1},
        /** Images per cache shard. */
        'shard-size': {type: 'integer', minimum: 1},
      },
    },
    /** Loss weight per class: none, auto (inverse frequency, n / (C * count)), or one weight per class. */
    'class-weights': {anyOf: [{enum: ['none', 'auto']}, {type: 'array', items: {type: 'number', minimum: 0}, minItems: 2}]},
    'label-smoothing': {type: 'number', minimum: 0, exclusiveMaximum: 1},
    /** EMA decay of the head weights (e.g. 0.999); 0 = off. */
    ema: {type: 'number', minimum: 0, exclusiveMaximum: 1},
    /** Clip the global gradient norm (0 = off). */
    'max-grad-norm': {type: 'number', minimum: 0},
    /** Exit threshold(s) t: coverage and accuracy of the images with max probability >= t. */
    'exit-threshold': {anyOf: [{type: 'number', minimum: 0.5, maximum: 1}, {type: 'array', items: {type: 'number', minimum: 0.5, maximum: 1}, minItems: 1}]},
    'early-stopping': {
      type: 'object',
      additionalProperties: false,
      properties: {
        patience: {type: 'integer', minimum: 1},
        monitor: {enum: ['val_mcc', 'val_accuracy', 'val_loss', 'loss', 'val_auc', 'val_ece']},
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

/**
 * The cascade file (YAML or JSON): models, and stages that run them with a combiner and an escalation rule.
 * See docs/cascade.md for the meaning of every key.
 */
import type {FromSchema} from 'json-schema-to-ts';

const rgbTriple = {type: 'array', items: {type: 'number'}, minItems: 3, maxItems: 3} as const;

export const preprocessSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    width: {type: 'integer', minimum: 1, maximum: 4096},
    height: {type: 'integer', minimum: 1, maximum: 4096},
    /** shorter-side: resize the shorter side only (output size follows the image); none: no resize (crop if width/height). */
    resize: {enum: ['stretch', 'shorter-side-crop', 'shorter-side', 'letterbox', 'none']},
    /** Pillow's filters (PIL resample codes 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming). */
    resample: {enum: ['nearest', 'bilinear', 'bicubic', 'lanczos', 'box', 'hamming']},
    /** pillow: full-resolution decode + Pillow-exact resize (bit-identical to transformers); vips: the faster libvips path. */
    resampler: {enum: ['pillow', 'vips']},
    scale: {type: 'number', exclusiveMinimum: 0},
    mean: rgbTriple,
    std: rgbTriple,
    channels: {enum: ['rgb', 'bgr']},
    layout: {enum: ['nchw', 'nhwc']},
    dtype: {enum: ['float32', 'uint8']},
    /** Shorter-side target before the centre crop (Hugging Face `shortest_edge`); defaults to the crop size. */
    shortestEdge: {type: 'integer', minimum: 1, maximum: 4096},
    /** With shortestEdge: cap of the longer side (Hugging Face `longest_edge`). */
    longestEdge: {type: 'integer', minimum: 1, maximum: 8192},
    /** Or an exact resize (stretch) to resizeWidth x resizeHeight before the centre crop. */
    resizeWidth: {type: 'integer', minimum: 1, maximum: 4096},
    resizeHeight: {type: 'integer', minimum: 1, maximum: 4096},
    /** Subtracted after rescaling (EfficientNet rescale_offset). */
    offset: {type: 'number'},
    /** A second division by these after normalising (EfficientNet include_top). */
    extraStd: rgbTriple,
  },
} as const;

export const outputSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    decode: {enum: ['auto', 'probability', 'sigmoid', 'softmax', 'detections']},
    positiveIndex: {type: 'integer', minimum: 0},
    positiveLabel: {type: 'string'},
    /** Detections: class ids that count as roadwork (default: all). */
    classes: {type: 'array', items: {type: 'integer', minimum: 0}},
    confidence: {type: 'number', minimum: 0, maximum: 1},
    iou: {type: 'number', minimum: 0, maximum: 1},
    score: {enum: ['max', 'noisy-or']},
    outputName: {type: 'string'},
  },
} as const;

export const modelSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: {type: 'string', minLength: 1},
    type: {enum: ['auto', 'onnx', 'hf', 'tfjs']},
    preprocess: preprocessSchema,
    output: outputSchema,
    /** Run-time limit of one call (ms); a miss fails the model at once and its worker is replaced. */
    timeoutMs: {type: 'number', exclusiveMinimum: 0},
    /** Worker threads running this model, each with its own session (default 1). */
    replicas: {type: 'integer', minimum: 1, maximum: 64},
    breaker: {
      type: 'object',
      additionalProperties: false,
      properties: {failures: {type: 'integer', minimum: 1}, cooldownMs: {type: 'number', minimum: 0}},
    },
  },
} as const;

export const stageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['models'],
  properties: {
    name: {type: 'string'},
    models: {
      type: 'array',
      minItems: 1,
      items: {
        anyOf: [
          {type: 'string'},
          {type: 'object', additionalProperties: false, required: ['model'], properties: {model: {type: 'string'}, weight: {type: 'number', exclusiveMinimum: 0}}},
        ],
      },
    },
    combine: {enum: ['mean', 'weighted-mean', 'geometric-mean', 'vote']},
    escalate: {
      type: 'object',
      additionalProperties: false,
      required: ['when', 'band'],
      properties: {
        when: {enum: ['inside', 'outside']},
        band: {type: 'array', items: {type: 'number', minimum: 0, maximum: 1}, minItems: 2, maxItems: 2},
      },
    },
    /** `skip` drops a failing model from the vote; a model name runs that model in its place. */
    fallback: {type: 'string'},
    /** Combine the models that answered within this many ms of the stage's start (late ones count as failures). */
    deadlineMs: {type: 'number', exclusiveMinimum: 0},
  },
} as const;

export const cascadeFileSchema = {
  $id: 'https://natix.dev/schemas/cascade.schema.json',
  title: 'natix cascade file',
  type: 'object',
  additionalProperties: false,
  required: ['models', 'stages'],
  properties: {
    name: {type: 'string'},
    description: {type: 'string'},
    /** Roadwork iff the final probability > threshold (the subnet rounds half to even: 0.5 is "none"). */
    threshold: {type: 'number', minimum: 0, maximum: 1},
    /** Answer with the best result available this many ms after a request starts, marked degraded (subnet: 9000). */
    deadlineMs: {type: 'number', exclusiveMinimum: 0},
    models: {type: 'object', minProperties: 1, additionalProperties: modelSchema},
    stages: {type: 'array', minItems: 1, items: stageSchema},
  },
} as const;

export type CascadeFile = FromSchema<typeof cascadeFileSchema>;
export type ModelConfig = FromSchema<typeof modelSchema>;
export type PreprocessConfig = FromSchema<typeof preprocessSchema>;
export type OutputConfig = FromSchema<typeof outputSchema>;
export type StageConfig = FromSchema<typeof stageSchema>;

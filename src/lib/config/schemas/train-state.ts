/**
 * `state.json` of a training checkpoint: what a resume trusts to continue a run. Validated on every read (a
 * checkpoint whose state does not match is skipped like a corrupt one), so `epoch: "x"` can never "finish" a run.
 */
import type {FromSchema} from 'json-schema-to-ts';

const count = {type: 'integer', minimum: 0} as const;
const sum = {type: 'number'} as const;

export const trainerStateSchema = {
  $id: 'https://natix.dev/schemas/train-state.schema.json',
  title: 'natix training checkpoint state.json',
  type: 'object',
  // Trainers may keep their own state beside these keys (the head trainer's `head`); the keys below are checked.
  additionalProperties: true,
  required: ['epoch', 'stepInEpoch', 'step', 'rng', 'best', 'history', 'epochsPlanned', 'natixVersion', 'backend'],
  properties: {
    /** Epochs completed. */
    epoch: count,
    /** Steps completed inside epoch `epoch` (0 at an epoch boundary). */
    stepInEpoch: count,
    /** Optimizer steps completed overall. */
    step: count,
    rng: {type: 'object', additionalProperties: false, required: ['seed', 'scheme'], properties: {seed: {type: 'integer'}, scheme: {const: 'seed-epoch-index'}}},
    best: {
      type: 'object',
      additionalProperties: false,
      required: ['metric', 'value', 'epoch'],
      properties: {metric: {type: 'string'}, value: {type: ['number', 'null']}, epoch: {type: ['integer', 'null'], minimum: 1}},
    },
    /** One record per finished epoch (a NaN metric is stored as null). */
    history: {type: 'array', items: {type: 'object', required: ['epoch'], properties: {epoch: {type: 'integer', minimum: 1}}, additionalProperties: {type: ['number', 'null']}}},
    epochsPlanned: {type: 'integer', minimum: 1},
    natixVersion: {type: 'string'},
    backend: {type: 'string'},
    stoppedEarly: {type: 'boolean'},
    /** Running sums of an interrupted epoch, so its history record covers every step, not only those after resume. */
    partial: {
      anyOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['lossSum', 'accSum', 'counted', 'seconds'],
          properties: {lossSum: sum, accSum: sum, counted: count, seconds: {type: 'number', minimum: 0}},
        },
        {
          /** A head run's interrupted epoch: its logits and labels so far (the epoch metrics need all of them). */
          type: 'object',
          additionalProperties: false,
          required: ['lossSum', 'n', 'logits', 'labels'],
          properties: {lossSum: sum, n: count, logits: {type: 'array', items: sum}, labels: {type: 'array', items: count}},
        },
      ],
    },
    /** Frozen-backbone head runs: what the head was trained on (a resume checks the backbone is unchanged). */
    head: {
      type: 'object',
      additionalProperties: false,
      required: ['backboneSha256', 'inputDim', 'classes', 'feature', 'pool'],
      properties: {
        backboneSha256: {type: 'string', pattern: '^[0-9a-f]{64}$'},
        inputDim: {type: 'integer', minimum: 1},
        classes: {type: 'integer', minimum: 2},
        feature: {type: 'string'},
        pool: {type: 'string'},
        /** Fine-tuning runs (model.train last:N / all / train-from): the value the trained tail starts from. */
        trainFrom: {type: 'string'},
      },
    },
  },
} as const;

export type TrainerStateFile = FromSchema<typeof trainerStateSchema>;

/** The `result` of `natix bench --json` (the envelope is {status, result, warnings}). */
import type {FromSchema} from 'json-schema-to-ts';

const num = {type: 'number'} as const;
const nullableNum = {type: ['number', 'null']} as const;
const verdict = {enum: ['PASS', 'WARN', 'FAIL', 'INVALID']} as const;

export const benchResultSchema = {
  $id: 'https://natix.dev/schemas/bench-result.schema.json',
  title: 'natix bench --json result',
  type: 'object',
  required: ['model', 'dataset', 'scenario', 'metrics', 'latency', 'throughput', 'gates', 'verdict', 'cpu', 'cascade'],
  properties: {
    model: {type: 'object', required: ['stages', 'devices', 'threshold'], properties: {stages: {type: 'array'}, devices: {type: 'array', items: {type: 'string'}}, threshold: num}},
    dataset: {type: 'object', required: ['root', 'format', 'images'], properties: {root: {type: 'string'}, format: {type: 'string'}, split: {type: ['string', 'null']}, images: {type: 'integer'}}},
    scenario: {enum: ['single-stream', 'offline', 'server']},
    metrics: {
      type: 'object',
      required: ['n', 'mcc', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'confusion'],
      properties: {
        n: {type: 'integer'},
        mcc: num,
        accuracy: num,
        precision: num,
        recall: num,
        f1: num,
        balancedAccuracy: num,
        auc: nullableNum,
        confusion: {type: 'object', required: ['tp', 'fp', 'tn', 'fn'], properties: {tp: {type: 'integer'}, fp: {type: 'integer'}, tn: {type: 'integer'}, fn: {type: 'integer'}}},
        matrix: {type: 'array', items: {type: 'array', items: num}},
        /** Seeded bootstrap interval of the MCC (Dirichlet(counts + 1/2) over the confusion cells). */
        mccInterval: {type: 'object', required: ['low', 'high', 'confidence', 'resamples', 'seed', 'method'], properties: {low: num, high: num, confidence: num, resamples: {type: 'integer'}, seed: {type: 'integer'}, method: {type: 'string'}}},
      },
    },
    errors: {type: 'integer'},
    latency: {
      type: 'object',
      required: ['n', 'min', 'max', 'mean', 'p50', 'p90', 'p95', 'p99', 'definition'],
      properties: {n: {type: 'integer'}, min: nullableNum, max: nullableNum, mean: nullableNum, stddev: num, cv: num, p50: nullableNum, p90: nullableNum, p95: nullableNum, p97: nullableNum, p99: nullableNum, p999: nullableNum, definition: {type: 'string'}},
    },
    throughput: num,
    cpu: {type: 'object', required: ['cores', 'coresBusy', 'utilisation'], properties: {cores: {type: 'integer'}, coresBusy: num, utilisation: num}},
    cascade: {type: 'array', items: {type: 'object', required: ['name', 'runRate', 'timeShare'], properties: {name: {type: 'string'}, runRate: num, timeShare: num, meanMs: num, accuracyIfLast: nullableNum, mccIfLast: nullableNum}}},
    gates: {
      type: 'array',
      items: {type: 'object', required: ['name', 'metric', 'value', 'pass', 'verdict', 'message'], properties: {name: {type: 'string'}, metric: {type: 'string'}, value: nullableNum, pass: num, warn: num, verdict, message: {type: 'string'}, unit: {const: 'percent'}, interval: {type: 'object', required: ['low', 'high', 'confidence'], properties: {low: num, high: num, confidence: num}}}},
    },
    verdict,
    validator: {
      type: 'object',
      required: ['challenges', 'seed', 'finalReward', 'finalScore', 'perLevel'],
      properties: {
        challenges: {type: 'integer'},
        seed: {type: 'integer'},
        flips: {type: 'boolean'},
        finalReward: num,
        finalScore: num,
        meanReward: num,
        mcc: num,
        accuracy: num,
        perLevel: {type: 'array', items: {type: 'object', required: ['level', 'n', 'mcc', 'accuracy'], properties: {level: {type: 'integer'}, n: {type: 'integer'}, mcc: num, accuracy: num}}},
      },
    },
    server: {
      type: 'object',
      required: ['targetQps', 'seed', 'queries', 'scheduledQps', 'completedQps', 'p99BoundMs', 'latency', 'valid', 'constraints', 'recommendation'],
      properties: {
        targetQps: num,
        seed: {type: 'integer'},
        queries: {type: 'integer'},
        scheduledQps: num,
        completedQps: num,
        p99BoundMs: num,
        latency: {type: 'object', required: ['n', 'p50', 'p99'], properties: {n: {type: 'integer'}, p50: nullableNum, p90: nullableNum, p99: nullableNum, mean: nullableNum, max: nullableNum}},
        issueDelay: {type: 'object', properties: {p99: nullableNum, max: nullableNum}},
        errors: {type: 'integer'},
        valid: {type: 'boolean'},
        constraints: {type: 'array', items: {type: 'object', required: ['name', 'ok', 'detail'], properties: {name: {type: 'string'}, ok: {type: 'boolean'}, detail: {type: 'string'}}}},
        recommendation: {type: 'string'},
        peak: {
          type: 'object',
          required: ['peakQps', 'trials'],
          properties: {peakQps: nullableNum, trials: {type: 'array', items: {type: 'object', required: ['qps', 'valid', 'p99'], properties: {qps: num, valid: {type: 'boolean'}, p99: nullableNum}}}},
        },
      },
    },
    baseline: {type: 'object', required: ['file', 'deltas'], properties: {file: {type: 'string'}, deltas: {type: 'array'}}},
  },
} as const;

export type BenchResultJson = FromSchema<typeof benchResultSchema>;

/**
 * Turning a model's raw output into the roadwork probability: a probability as is, a logit through a sigmoid, a
 * softmax over classes (positive index), or YOLO-style detections [1, 4+C, N] -> confidence filter -> NMS -> a
 * score from the boxes of roadwork classes.
 */

export type OutputDecoding = 'auto' | 'probability' | 'sigmoid' | 'softmax' | 'detections';

export interface OutputSpec {
  decode: OutputDecoding;
  positiveIndex: number;
  /** Detections: class ids that count as roadwork (undefined = all). */
  classes?: number[];
  confidence: number;
  iou: number;
  score: 'max' | 'noisy-or';
}

export const DEFAULT_OUTPUT: OutputSpec = {decode: 'auto', positiveIndex: 1, confidence: 0.25, iou: 0.45, score: 'max'};

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

export function softmaxAt(values: ArrayLike<number>, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]!);
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i]! - max);
  return Math.exp(values[index]! - max) / sum;
}

export interface Detection {
  x: number;
  y: number;
  w: number;
  h: number;
  classId: number;
  score: number;
}

function iou(a: Detection, b: Detection): number {
  const x0 = Math.max(a.x - a.w / 2, b.x - b.w / 2);
  const y0 = Math.max(a.y - a.h / 2, b.y - b.h / 2);
  const x1 = Math.min(a.x + a.w / 2, b.x + b.w / 2);
  const y1 = Math.min(a.y + a.h / 2, b.y + b.h / 2);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a.w * a.h + b.w * b.h - inter;
  return union <= 0 ? 0 : inter / union;
}

/** Decodes a YOLOv8-style [1, 4+C, N] output (cx, cy, w, h, class scores) with a confidence filter and class-wise NMS. */
export function decodeDetections(data: ArrayLike<number>, dims: readonly number[], spec: OutputSpec): Detection[] {
  const rows = dims[dims.length - 2]!;
  const n = dims[dims.length - 1]!;
  const classes = rows - 4;
  const candidates: Detection[] = [];
  for (let j = 0; j < n; j++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = data[(4 + c) * n + j]!;
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    if (bestScore < spec.confidence) continue;
    candidates.push({x: data[j]!, y: data[n + j]!, w: data[2 * n + j]!, h: data[3 * n + j]!, classId: best, score: bestScore});
  }
  candidates.sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const c of candidates) {
    if (kept.every((k) => k.classId !== c.classId || iou(k, c) <= spec.iou)) kept.push(c);
  }
  return kept;
}

/** True when the values are already a probability distribution (all in [0, 1], summing to 1). */
function isDistribution(data: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < data.length; i++) {
    if (!(data[i]! >= 0 && data[i]! <= 1)) return false;
    sum += data[i]!;
  }
  return Math.abs(sum - 1) < 1e-4;
}

/** The roadwork probability of a model output. */
export function outputProbability(data: ArrayLike<number>, dims: readonly number[], spec: OutputSpec): number {
  let mode = spec.decode;
  if (mode === 'auto') {
    if (data.length === 1) mode = data[0]! >= 0 && data[0]! <= 1 ? 'probability' : 'sigmoid';
    else if (dims.length >= 3 && dims[dims.length - 2]! > 4) mode = 'detections';
    else if (isDistribution(data)) return data[spec.positiveIndex]!; // already softmax-ed (e.g. a Keras softmax head)
    else mode = 'softmax';
  }
  switch (mode) {
    case 'probability':
      return data[0]!;
    case 'sigmoid':
      return sigmoid(data[0]!);
    case 'softmax':
      if (spec.positiveIndex >= data.length) throw new Error(`positive index ${spec.positiveIndex} outside an output of ${data.length} values`);
      return softmaxAt(data, spec.positiveIndex);
    case 'detections': {
      const boxes = decodeDetections(data, dims, spec).filter((d) => !spec.classes || spec.classes.includes(d.classId));
      if (boxes.length === 0) return 0;
      if (spec.score === 'max') return Math.max(...boxes.map((b) => b.score));
      return 1 - boxes.reduce((q, b) => q * (1 - b.score), 1);
    }
    default:
      throw new Error(`unknown output decoding ${String(mode)}`);
  }
}

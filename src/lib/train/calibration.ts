/**
 * Calibration and exit metrics of a classifier's logits: softmax, expected calibration error (10 equal-width bins
 * on the confidence of the predicted class, bins (i/10, (i+1)/10], as Guo et al. 2017 define it), temperature
 * scaling fitted by minimising the validation NLL, and "exit" coverage / accuracy at a threshold t: the share of
 * images answered confidently (max probability >= t, i.e. p >= t or p <= 1 - t for two classes) and the accuracy
 * on those, which decides how often a cascade's heavier stage runs.
 */

/** Row-wise softmax of [n, classes] logits divided by `temperature`, in double precision. */
export function softmaxRows(logits: ArrayLike<number>, classes: number, temperature = 1): Float64Array {
  const n = logits.length / classes;
  const out = new Float64Array(logits.length);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[i * classes + c]! / temperature);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[i * classes + c] = Math.exp(logits[i * classes + c]! / temperature - max);
    for (let c = 0; c < classes; c++) out[i * classes + c]! /= sum;
  }
  return out;
}

function argmaxRow(p: ArrayLike<number>, i: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) if (p[i * classes + c]! > p[i * classes + best]!) best = c;
  return best;
}

/** Expected calibration error with `bins` equal-width bins on the predicted class's probability. */
export function expectedCalibrationError(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, bins = 10): number {
  const n = labels.length;
  if (n === 0) return Number.NaN;
  const count = new Float64Array(bins);
  const correct = new Float64Array(bins);
  const confidence = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const pred = argmaxRow(probs, i, classes);
    const conf = probs[i * classes + pred]!;
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf * bins) - 1));
    count[b]!++;
    confidence[b]! += conf;
    if (pred === labels[i]) correct[b]!++;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]! > 0) ece += (count[b]! / n) * Math.abs(correct[b]! / count[b]! - confidence[b]! / count[b]!);
  return ece;
}

/** Mean negative log-likelihood of the labels under softmax(logits / T). */
export function nll(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number, temperature = 1): number {
  const n = labels.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[i * classes + c]! / temperature);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[i * classes + c]! / temperature - max);
    total -= logits[i * classes + labels[i]!]! / temperature - max - Math.log(sum);
  }
  return n ? total / n : Number.NaN;
}

/**
 * The temperature T > 0 minimising the NLL of softmax(logits / T): golden-section search on log T in
 * [1/100, 100] (the NLL is unimodal in T), to a relative precision of 1e-6.
 */
export function fitTemperature(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  if (labels.length === 0) return 1;
  const f = (logT: number): number => nll(logits, labels, classes, Math.exp(logT));
  let a = Math.log(0.01);
  let b = Math.log(100);
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-6) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  return Math.exp((a + b) / 2);
}

export interface ExitMetrics {
  threshold: number;
  /** Share of images with max probability >= threshold. */
  coverage: number;
  /** Accuracy on those (NaN when none). */
  accuracy: number;
}

export function exitMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, classes: number, threshold: number): ExitMetrics {
  const n = labels.length;
  let covered = 0;
  let right = 0;
  for (let i = 0; i < n; i++) {
    const pred = argmaxRow(probs, i, classes);
    if (probs[i * classes + pred]! >= threshold) {
      covered++;
      if (pred === labels[i]) right++;
    }
  }
  return {threshold, coverage: n ? covered / n : Number.NaN, accuracy: covered ? right / covered : Number.NaN};
}

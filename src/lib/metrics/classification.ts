/**
 * Classification metrics from one accumulated confusion matrix (never an average of per-batch numbers).
 * MCC follows scikit-learn exactly (what the subnet's validators run): the multi-class formula, and 0.0 whenever
 * the denominator is 0 (even for a perfect one-class prediction).
 */

/** Binary decision rule of the subnet: roadwork iff p > threshold (0.5 -> "none": Python's round-half-even). */
export function decide(probability: number, threshold = 0.5): 0 | 1 {
  return probability > threshold ? 1 : 0;
}

/** A K x K confusion matrix accumulated one answer at a time; rows = true class, columns = predicted class. */
export class ConfusionMatrix {
  private counts: number[][];

  constructor(public classes = 2) {
    this.counts = Array.from({length: classes}, () => new Array<number>(classes).fill(0));
  }

  add(truth: number, predicted: number, weight = 1): void {
    const needed = Math.max(truth, predicted) + 1;
    if (needed > this.classes) this.grow(needed);
    this.counts[truth]![predicted]! += weight;
  }

  private grow(classes: number): void {
    for (const row of this.counts) while (row.length < classes) row.push(0);
    while (this.counts.length < classes) this.counts.push(new Array<number>(classes).fill(0));
    this.classes = classes;
  }

  get(truth: number, predicted: number): number {
    return this.counts[truth]?.[predicted] ?? 0;
  }

  get total(): number {
    return this.counts.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  }

  toArray(): number[][] {
    return this.counts.map((r) => [...r]);
  }

  /** Binary view with class 1 positive. */
  binary(positive = 1): {tp: number; fp: number; tn: number; fn: number} {
    let tp = 0;
    let fp = 0;
    let tn = 0;
    let fn = 0;
    for (let t = 0; t < this.classes; t++) {
      for (let p = 0; p < this.classes; p++) {
        const c = this.get(t, p);
        if (t === positive && p === positive) tp += c;
        else if (t !== positive && p === positive) fp += c;
        else if (t === positive) fn += c;
        else tn += c;
      }
    }
    return {tp, fp, tn, fn};
  }
}

/** scikit-learn's matthews_corrcoef on a confusion matrix. */
export function mccFromConfusion(cm: ConfusionMatrix): number {
  const k = cm.classes;
  let s = 0;
  let c = 0;
  const t = new Array<number>(k).fill(0);
  const p = new Array<number>(k).fill(0);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const v = cm.get(i, j);
      s += v;
      t[i]! += v;
      p[j]! += v;
      if (i === j) c += v;
    }
  }
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (let i = 0; i < k; i++) {
    tp += t[i]! * p[i]!;
    pp += p[i]! * p[i]!;
    tt += t[i]! * t[i]!;
  }
  const covYtYp = c * s - tp;
  const covYpYp = s * s - pp;
  const covYtYt = s * s - tt;
  if (covYpYp * covYtYt === 0) return 0;
  return covYtYp / Math.sqrt(covYtYt * covYpYp);
}

/** MCC of label/prediction lists (same length). */
export function matthewsCorrcoef(labels: readonly number[], predictions: readonly number[]): number {
  const cm = new ConfusionMatrix(2);
  labels.forEach((l, i) => cm.add(l, predictions[i]!));
  return mccFromConfusion(cm);
}

export interface ClassificationMetrics {
  n: number;
  mcc: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  balancedAccuracy: number;
  confusion: {tp: number; fp: number; tn: number; fn: number};
  /** Full K x K matrix, rows = truth. */
  matrix: number[][];
}

function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/**
 * Metrics of a confusion matrix. precision/recall/F1 are for `positive` (binary view); zero-division gives 0
 * (scikit-learn's zero_division=0 warning case). Balanced accuracy is the mean recall over classes present.
 */
export function classificationMetrics(cm: ConfusionMatrix, positive = 1): ClassificationMetrics {
  const n = cm.total;
  let correct = 0;
  const recalls: number[] = [];
  for (let i = 0; i < cm.classes; i++) {
    correct += cm.get(i, i);
    let rowTotal = 0;
    for (let j = 0; j < cm.classes; j++) rowTotal += cm.get(i, j);
    if (rowTotal > 0) recalls.push(cm.get(i, i) / rowTotal);
  }
  const b = cm.binary(positive);
  const precision = ratio(b.tp, b.tp + b.fp);
  const recall = ratio(b.tp, b.tp + b.fn);
  return {
    n,
    mcc: mccFromConfusion(cm),
    accuracy: ratio(correct, n),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    balancedAccuracy: recalls.length === 0 ? 0 : recalls.reduce((a, v) => a + v, 0) / recalls.length,
    confusion: b,
    matrix: cm.toArray(),
  };
}

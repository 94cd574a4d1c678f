/**
 * How far an MCC measured on n images can be trusted: a seeded bootstrap interval of the binary confusion matrix.
 *
 * Each replicate draws the four cell probabilities (tp, fp, tn, fn) from Dirichlet(counts + 1/2) - a Bayesian
 * bootstrap with Jeffreys' prior - and computes the MCC of those proportions (MCC is scale-free). The plain
 * bootstrap collapses to a zero-width interval when a cell is empty (a perfect score on 30 images would "prove"
 * MCC 1.0); the half-count prior keeps the interval honest there and vanishes as n grows. The interval is the
 * percentile interval of the replicates. Same counts and seed, same interval.
 */
import {SeededRandom} from '../util/random.js';

export interface MccInterval {
  /** Lower and upper percentile bounds. */
  low: number;
  high: number;
  /** 0.95 for a 95% interval. */
  confidence: number;
  resamples: number;
  seed: number;
  method: 'bootstrap-dirichlet-jeffreys';
}

/** MCC of a binary confusion (counts or proportions); 0 when a margin is empty, as scikit-learn. */
export function binaryMcc(tp: number, fp: number, tn: number, fn: number): number {
  const denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
  return denominator === 0 ? 0 : (tp * tn - fp * fn) / Math.sqrt(denominator);
}

/** Gamma(shape, 1) by Marsaglia and Tsang (shape < 1 boosted by U^(1/shape)). */
function gamma(rng: SeededRandom, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(Math.max(rng.next(), Number.MIN_VALUE), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(Math.max(u, Number.MIN_VALUE)) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function mccInterval(confusion: {tp: number; fp: number; tn: number; fn: number}, options: {confidence?: number; resamples?: number; seed?: number} = {}): MccInterval {
  const confidence = options.confidence ?? 0.95;
  const resamples = options.resamples ?? 2000;
  const seed = options.seed ?? 1;
  const rng = new SeededRandom(`mcc-interval:${seed}`);
  const cells = [confusion.tp, confusion.fp, confusion.tn, confusion.fn].map((c) => c + 0.5);
  const values = new Float64Array(resamples);
  for (let i = 0; i < resamples; i++) {
    const [tp, fp, tn, fn] = cells.map((a) => gamma(rng, a)) as [number, number, number, number];
    values[i] = binaryMcc(tp, fp, tn, fn);
  }
  values.sort();
  const alpha = (1 - confidence) / 2;
  const at = (q: number): number => values[Math.min(resamples - 1, Math.max(0, Math.floor(q * resamples)))]!;
  return {low: at(alpha), high: at(1 - alpha), confidence, resamples, seed, method: 'bootstrap-dirichlet-jeffreys'};
}

/**
 * Combining the probabilities of a stage's models, and clamping: NaN or out-of-range values never leave the
 * library (the subnet zeroes a miner's reward for an answer outside [0, 1]).
 */

export type Combiner = 'mean' | 'weighted-mean' | 'geometric-mean' | 'vote';

/** Clamps to [0, 1]; NaN becomes `fallback` (0.5 by default: "no information"). */
export function clampProbability(p: number, fallback = 0.5): number {
  if (Number.isNaN(p)) return fallback;
  return p < 0 ? 0 : p > 1 ? 1 : p;
}

const EPS = 1e-7;

/**
 * Combines (probability, weight) pairs. `geometric-mean` is the weighted geometric mean of p normalised against
 * that of 1-p (so it stays a probability); `vote` is the weighted share of models saying roadwork (p > threshold).
 */
export function combineProbabilities(values: Array<{p: number; weight: number}>, combiner: Combiner, threshold = 0.5): number {
  if (values.length === 0) return Number.NaN;
  const weights = combiner === 'mean' ? values.map(() => 1) : values.map((v) => v.weight);
  const total = weights.reduce((a, b) => a + b, 0);
  switch (combiner) {
    case 'mean':
    case 'weighted-mean':
      return clampProbability(values.reduce((s, v, i) => s + v.p * weights[i]!, 0) / total);
    case 'geometric-mean': {
      let logP = 0;
      let logQ = 0;
      values.forEach((v, i) => {
        const p = Math.min(1 - EPS, Math.max(EPS, v.p));
        logP += (weights[i]! / total) * Math.log(p);
        logQ += (weights[i]! / total) * Math.log(1 - p);
      });
      const gp = Math.exp(logP);
      const gq = Math.exp(logQ);
      return clampProbability(gp / (gp + gq));
    }
    case 'vote':
      return clampProbability(values.reduce((s, v, i) => s + (v.p > threshold ? weights[i]! : 0), 0) / total);
  }
}

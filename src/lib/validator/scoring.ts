/**
 * The subnet's reward for one miner as one validator computes it (STREETVISION.md):
 *   pred == -1 -> reward 0 (and the answer is dropped from the metric windows)
 *   reward = 0.5 * max(0, MCC(last 100 answers)) + 0.5 * accuracy(last 10 answers), predictions = round(p)
 *   (round half to even: 0.5 -> 0), MCC = 0 unless labels and predictions both contain both classes,
 *   reward = 0 if any answer in the window is outside [0, 1], then reward ** 3,
 *   score = 0.05 * reward + 0.95 * previous score.
 */
import {matthewsCorrcoef} from '../metrics/classification.js';

export const MCC_WINDOW = 100;
export const ACCURACY_WINDOW = 10;
export const EMA_ALPHA = 0.05;

/** Python's round() for probabilities: half to even, so 0.5 -> 0 and only p > 0.5 means roadwork. */
export function roundHalfEven(p: number): number {
  const floor = Math.floor(p);
  const diff = p - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface RewardStep {
  reward: number;
  mcc: number;
  accuracy: number;
  score: number;
  penalised: boolean;
}

/** Rolling reward state of one miner. */
export class MinerScore {
  private answers: Array<{label: number; p: number}> = [];
  score = 0;

  /** Records one answer (p = -1 for "no answer") and returns the reward of this challenge and the new score. */
  record(label: number, p: number): RewardStep {
    if (p === -1) {
      this.score = EMA_ALPHA * 0 + (1 - EMA_ALPHA) * this.score;
      return {reward: 0, mcc: 0, accuracy: 0, score: this.score, penalised: false};
    }
    this.answers.push({label, p});
    if (this.answers.length > MCC_WINDOW) this.answers.shift();
    const window = this.answers;
    const recent = window.slice(-ACCURACY_WINDOW);
    const penalised = window.some((a) => !(a.p >= 0 && a.p <= 1));
    const labels = window.map((a) => a.label);
    const predictions = window.map((a) => (Number.isFinite(a.p) ? roundHalfEven(a.p) : 0));
    const bothClasses = (xs: number[]): boolean => xs.includes(0) && xs.includes(1);
    const mcc = bothClasses(labels) && bothClasses(predictions) ? Math.max(0, matthewsCorrcoef(labels, predictions)) : 0;
    const accuracy = recent.filter((a) => Number.isFinite(a.p) && roundHalfEven(a.p) === a.label).length / recent.length;
    let reward = 0.5 * mcc + 0.5 * accuracy;
    if (penalised) reward = 0;
    reward = reward ** 3;
    this.score = EMA_ALPHA * reward + (1 - EMA_ALPHA) * this.score;
    return {reward, mcc, accuracy, score: this.score, penalised};
  }
}

/**
 * Validator simulation: turns a labelled dataset into subnet challenges exactly as validators make them (50/50 label
 * draw regardless of balance, augmentation level uniform in {0..3}, 224x224 JPEG at quality 75), asks the model,
 * and scores the answers with the subnet's reward (scoring.ts).
 *
 * Not simulated: the quarter of challenges that validators generate with SDXL text-to-image and the quarter from
 * SDXL image-to-image (no generator here): every challenge comes from a real image of the dataset.
 */
import type {Sample} from '../data/sample.js';
import {decodeImage} from '../image/decode.js';
import {ConfusionMatrix, classificationMetrics, decide} from '../metrics/classification.js';
import {SeededRandom} from '../util/random.js';
import type {Predictor} from '../bench/runner.js';
import {applyChallengeAugmentation, encodeChallengeJpeg, type AugmentationParams} from './augment.js';
import {MinerScore} from './scoring.js';

export interface ChallengeRecord {
  challenge: number;
  id: string;
  path: string;
  label: number;
  level: number;
  params: AugmentationParams;
  probability: number;
  /** -1 when the model gave no answer (unreadable challenge). */
  answer: number;
  ms: number;
  reward: number;
  score: number;
}

export interface ValidatorSummary {
  challenges: number;
  seed: number;
  flips: boolean;
  /** Reward of the last challenge (what the validator would set now, before the moving average). */
  finalReward: number;
  /** Moving-average score after all challenges (starting from 0). */
  finalScore: number;
  meanReward: number;
  mcc: number;
  accuracy: number;
  perLevel: Array<{level: number; n: number; mcc: number; accuracy: number}>;
  rewards: number[];
  scores: number[];
  notSimulated: string;
}

export interface SimulationOptions {
  challenges: number;
  seed: number;
  flips: boolean;
  onChallenge?: (done: number) => void;
}

export async function simulateValidator(samples: Sample[], predict: Predictor, options: SimulationOptions): Promise<{summary: ValidatorSummary; records: ChallengeRecord[]}> {
  const byLabel = new Map<number, Sample[]>([
    [0, samples.filter((s) => s.label === 0)],
    [1, samples.filter((s) => s.label === 1)],
  ]);
  for (const [label, pool] of byLabel) {
    if (pool.length === 0) throw new Error(`the dataset has no images labelled ${label}: a validator draws both labels 50/50`);
  }
  const rng = new SeededRandom(`validator:${options.seed}`);
  const miner = new MinerScore();
  const records: ChallengeRecord[] = [];
  const levels = [0, 1, 2, 3].map(() => new ConfusionMatrix(2));
  const all = new ConfusionMatrix(2);
  for (let i = 0; i < options.challenges; i++) {
    const label = rng.bool(0.5) ? 1 : 0;
    const sample = rng.pick(byLabel.get(label)!);
    const level = rng.int(4) as 0 | 1 | 2 | 3;
    const augRng = rng.fork();
    const image = await decodeImage(sample.bytes ?? sample.absPath!, {strict: false});
    const {rgb, params} = await applyChallengeAugmentation({data: image.data, width: image.width, height: image.height}, level, augRng, {flips: options.flips});
    const jpeg = await encodeChallengeJpeg(rgb);
    const t0 = performance.now();
    const result = await predict(jpeg, {id: sample.id, path: sample.path});
    const ms = performance.now() - t0;
    const answer = result.error ? -1 : result.probability;
    const step = miner.record(label, answer);
    if (answer !== -1) {
      levels[level]!.add(label, decide(answer));
      all.add(label, decide(answer));
    }
    records.push({challenge: i, id: sample.id, path: sample.path, label, level, params, probability: result.probability, answer, ms, reward: step.reward, score: step.score});
    options.onChallenge?.(i + 1);
  }
  const rewards = records.map((r) => r.reward);
  const overall = classificationMetrics(all);
  return {
    records,
    summary: {
      challenges: options.challenges,
      seed: options.seed,
      flips: options.flips,
      finalReward: rewards.at(-1) ?? 0,
      finalScore: miner.score,
      meanReward: rewards.length ? rewards.reduce((a, b) => a + b, 0) / rewards.length : 0,
      mcc: overall.mcc,
      accuracy: overall.accuracy,
      perLevel: levels.map((cm, level) => {
        const m = classificationMetrics(cm);
        return {level, n: m.n, mcc: m.mcc, accuracy: m.accuracy};
      }),
      rewards,
      scores: records.map((r) => r.score),
      notSimulated: 'SDXL text-to-image and image-to-image challenges (half of real validator traffic) are not generated here; every challenge comes from a real dataset image.',
    },
  };
}

/**
 * Cascade statistics from the traces of measured queries: how often each stage ran, its share of the total time,
 * and what the cascade would have scored had it stopped after each stage (later stages removed).
 */
import type {CascadeResult} from '../cascade/types.js';
import {ConfusionMatrix, classificationMetrics} from '../metrics/classification.js';

export interface StageStats {
  name: string;
  /** Fraction of queries on which the stage ran. */
  runRate: number;
  /** Sum of the stage's wall time / sum of end-to-end time. */
  timeShare: number;
  meanMs: number;
  /** Accuracy and MCC of the cascade cut after this stage (labelled queries only). */
  accuracyIfLast: number | null;
  mccIfLast: number | null;
}

export function cascadeStats(results: Array<{result: CascadeResult; label: number | null}>, threshold = 0.5): StageStats[] {
  const first = results.find((r) => r.result.stages.length > 0);
  if (!first) return [];
  const names = first.result.stages.map((s) => s.name);
  const totalMs = results.reduce((s, r) => s + r.result.totalMs, 0);
  return names.map((name, k) => {
    let runs = 0;
    let ms = 0;
    const cm = new ConfusionMatrix(2);
    for (const {result, label} of results) {
      const stage = result.stages[k];
      if (stage?.ran) {
        runs++;
        ms += stage.ms;
      }
      if (label === null || result.error?.startsWith('unreadable')) continue;
      let p = 0.5;
      for (let j = 0; j <= k; j++) if (result.stages[j]?.probability !== undefined) p = result.stages[j]!.probability!;
      cm.add(label, p > threshold ? 1 : 0);
    }
    const m = cm.total > 0 ? classificationMetrics(cm) : undefined;
    return {
      name,
      runRate: results.length ? runs / results.length : 0,
      timeShare: totalMs > 0 ? ms / totalMs : 0,
      meanMs: runs ? ms / runs : 0,
      accuracyIfLast: m ? m.accuracy : null,
      mccIfLast: m ? m.mcc : null,
    };
  });
}

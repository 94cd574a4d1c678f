import {describe, expect, it} from 'vitest';
import {rocAuc} from '../../src/lib/metrics/auc.js';
import {ConfusionMatrix, classificationMetrics, decide, matthewsCorrcoef, mccFromConfusion} from '../../src/lib/metrics/classification.js';
import {latencyPercentiles, minQueriesForPercentile, percentileSorted} from '../../src/lib/metrics/latency.js';

const TOL = 1e-12;

describe('MCC golden vectors (scikit-learn definition)', () => {
  const cases: Array<[string, number[], number[], number]> = [
    ['hand-computed binary: tp=2 fp=1 tn=1 fn=0', [1, 1, 0, 0], [1, 1, 1, 0], 2 / Math.sqrt(12)],
    ['perfect', [0, 1, 0, 1], [0, 1, 0, 1], 1],
    ['inverse', [0, 1, 0, 1], [1, 0, 1, 0], -1],
    ['all labels one class, predictions perfect: zero denominator -> 0', [1, 1, 1], [1, 1, 1], 0],
    ['all labels one class, predictions mixed -> 0', [0, 0, 0, 0], [0, 1, 0, 1], 0],
    ['all predictions one class -> 0', [0, 1, 0, 1], [1, 1, 1, 1], 0],
    ['empty -> 0', [], [], 0],
    ['tp=3 fp=1 tn=4 fn=2', [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0], (3 * 4 - 1 * 2) / Math.sqrt(4 * 5 * 5 * 6)],
  ];
  for (const [name, labels, predictions, expected] of cases) {
    it(name, () => {
      expect(Math.abs(matthewsCorrcoef(labels, predictions) - expected)).toBeLessThan(TOL);
    });
  }

  it('multi-class: the K x K formula', () => {
    const cm = new ConfusionMatrix(3);
    const labels = [0, 1, 2, 0, 1, 2];
    const predictions = [0, 1, 1, 0, 2, 2];
    labels.forEach((l, i) => cm.add(l, predictions[i]!));
    // c = 4, s = 6, t = p = [2, 2, 2]: (24 - 12) / sqrt((36 - 12) * (36 - 12)) = 0.5
    expect(Math.abs(mccFromConfusion(cm) - 0.5)).toBeLessThan(TOL);
  });

  it('accumulates one confusion matrix: precision, recall, F1, balanced accuracy', () => {
    const cm = new ConfusionMatrix(2);
    [[1, 1], [1, 1], [1, 1], [1, 0], [1, 0], [0, 1], [0, 0], [0, 0], [0, 0], [0, 0]].forEach(([t, p]) => cm.add(t!, p!));
    const m = classificationMetrics(cm);
    expect(m.confusion).toEqual({tp: 3, fp: 1, tn: 4, fn: 2});
    expect(Math.abs(m.accuracy - 0.7)).toBeLessThan(TOL);
    expect(Math.abs(m.precision - 0.75)).toBeLessThan(TOL);
    expect(Math.abs(m.recall - 0.6)).toBeLessThan(TOL);
    expect(Math.abs(m.f1 - (2 * 0.75 * 0.6) / 1.35)).toBeLessThan(TOL);
    expect(Math.abs(m.balancedAccuracy - (0.6 + 0.8) / 2)).toBeLessThan(TOL);
    const empty = classificationMetrics(new ConfusionMatrix(2));
    expect([empty.mcc, empty.accuracy, empty.precision, empty.f1]).toEqual([0, 0, 0, 0]);
  });

  it('decides like the subnet: p > 0.5 is roadwork, exactly 0.5 is none', () => {
    expect(decide(0.5)).toBe(0);
    expect(decide(0.5000001)).toBe(1);
    expect(decide(0)).toBe(0);
  });
});

describe('ROC AUC', () => {
  it('matches hand-computed values, ties counted half', () => {
    expect(Math.abs(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) - 0.75)).toBeLessThan(TOL);
    expect(Math.abs(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) - 0.875)).toBeLessThan(TOL);
    expect(rocAuc([1, 1], [0.2, 0.3])).toBeNaN();
  });
});

describe('latency percentiles', () => {
  it('uses sorted[floor(N*p)] and reports the definition', () => {
    const values = Array.from({length: 10}, (_, i) => 10 - i); // 10..1
    const s = latencyPercentiles(values);
    expect([s.min, s.max, s.p50, s.p90, s.p99]).toEqual([1, 10, 6, 10, 10]);
    expect(s.mean).toBe(5.5);
    expect(s.definition).toContain('floor(N*p)');
    expect(percentileSorted([1, 2, 3, 4], 0.25)).toBe(2);
  });

  it('LoadGen early-stopping minimums: 64 for p90, 662 for p99', () => {
    expect(minQueriesForPercentile(0.9)).toBe(64);
    expect(minQueriesForPercentile(0.99)).toBe(662);
    expect(minQueriesForPercentile(0.95)).toBe(130);
  });
});

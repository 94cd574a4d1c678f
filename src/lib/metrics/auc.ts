/**
 * ROC AUC from probabilities, as scikit-learn's roc_auc_score computes it for binary labels: the area under the
 * ROC curve with tied scores forming one step (equivalently, the Mann-Whitney U statistic with ties counted 1/2).
 * Undefined (NaN) when only one class is present, where scikit-learn raises.
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>, positive = 1): number {
  const n = labels.length;
  const order = Array.from({length: n}, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] === positive) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  // Average ranks over ties; AUC = (sum of positive ranks - P(P+1)/2) / (P * N).
  let rankSumPositive = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[order[k]!] === positive) rankSumPositive += averageRank;
    i = j + 1;
  }
  return (rankSumPositive - (positives * (positives + 1)) / 2) / (positives * negatives);
}

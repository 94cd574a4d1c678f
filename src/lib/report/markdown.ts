/** A Markdown summary of a benchmark, for CI job pages (e.g. $GITHUB_STEP_SUMMARY). */
import type {BenchResult} from '../bench/index.js';

const f = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
const ICON: Record<string, string> = {PASS: 'PASS', WARN: 'WARN', FAIL: 'FAIL', INVALID: 'INVALID'};

export function benchMarkdown(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`## natix bench: ${ICON[r.verdict]}`, '');
  lines.push(`Model: ${r.model.stages.map((s) => `${s.name} [${s.models.map((m) => m.name).join(', ')}]`).join(' -> ')} on ${r.model.devices.join('/')}`);
  lines.push(`Dataset: ${r.dataset.root} (${r.dataset.format}${r.dataset.split ? `, split ${r.dataset.split}` : ''}, ${r.dataset.images} images); scenario ${r.scenario}`, '');
  lines.push('| gate | value | threshold | verdict |', '|---|---|---|---|');
  for (const g of r.gates) lines.push(`| ${g.name} | ${f(g.value)} | ${g.pass}${g.warn !== undefined ? ` (warn ${g.warn})` : ''} | ${g.verdict} |`);
  lines.push('', '| metric | value |', '|---|---|');
  const m = r.metrics;
  for (const [k, v] of [['MCC', m.mcc], ['accuracy', m.accuracy], ['precision', m.precision], ['recall', m.recall], ['F1', m.f1], ['ROC AUC', m.auc]] as const) lines.push(`| ${k} | ${f(v)} |`);
  lines.push(`| confusion (tp/fp/tn/fn) | ${m.confusion.tp}/${m.confusion.fp}/${m.confusion.tn}/${m.confusion.fn} |`);
  const l = r.latency;
  lines.push('', `Latency (ms, n=${l.n}, ${l.definition}): min ${f(l.min, 2)}, p50 ${f(l.p50, 2)}, p90 ${f(l.p90, 2)}, p95 ${f(l.p95, 2)}, p99 ${f(l.p99, 2)}, max ${f(l.max, 2)}, mean ${f(l.mean, 2)} +- ${f(l.stddev, 2)}`);
  lines.push(`Throughput: ${f(r.throughput, 1)} images/s; CPU: ${f(r.cpu.coresBusy, 2)} of ${r.cpu.cores} cores busy`);
  if (r.cascade.length > 1) {
    lines.push('', '| stage | ran | time share | accuracy if last | MCC if last |', '|---|---|---|---|---|');
    for (const s of r.cascade) lines.push(`| ${s.name} | ${(s.runRate * 100).toFixed(1)}% | ${(s.timeShare * 100).toFixed(1)}% | ${f(s.accuracyIfLast)} | ${f(s.mccIfLast)} |`);
  }
  if (r.validator) {
    const v = r.validator;
    lines.push('', `Validator simulation (${v.challenges} challenges, seed ${v.seed}): final reward ${f(v.finalReward)}, moving-average score ${f(v.finalScore)}, MCC ${f(v.mcc)}, accuracy ${f(v.accuracy)}`);
    lines.push('', '| level | n | MCC | accuracy |', '|---|---|---|---|');
    for (const p of v.perLevel) lines.push(`| ${p.level} | ${p.n} | ${f(p.mcc)} | ${f(p.accuracy)} |`);
    lines.push('', `_${v.notSimulated}_`);
  }
  if (r.baseline) {
    lines.push('', `Baseline ${r.baseline.file}:`, '', '| metric | baseline | now | delta |', '|---|---|---|---|');
    for (const d of r.baseline.deltas) lines.push(`| ${d.metric} | ${f(d.baseline)} | ${f(d.current)} | ${d.delta >= 0 ? '+' : ''}${f(d.delta)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * What `natix validate-data` and `natix validate-data merge` print and return for a validation result: the summary
 * per check, the verdict against --fail-on, the human-readable text and the --json object. One function for both
 * commands, so a merged sharded run reports exactly what an unsharded run does.
 */
import type {ChalkInstance} from 'chalk';
import {formatTable} from '../cli/ui.js';
import {CHECK_IDS, type CheckId} from '../config/schemas/validate-data.js';
import type {Finding, Severity, ValidationResult} from './validate.js';

const RANK: Record<Severity, number> = {info: 0, warning: 1, error: 2};

export const ADVICE: Partial<Record<CheckId, string>> = {
  unreadable: 'remove or re-export these files; they cannot be trained on',
  'path-escape': 'fix the manifest/label paths so they stay inside the dataset folder',
  'split-leak': 'split by video / location, or drop the duplicates from one side: leaked pairs inflate validation scores',
  'label-conflict': 'compare each pair in --report: fix the wrong label, or keep both if they truly differ',
  'exact-duplicate': 'drop the copies (they weigh those images twice)',
  'near-duplicate': 'check them side by side in --report; keep one per group or group them into one split',
  'class-imbalance': 'validators draw labels 50/50: use class weights or balanced sampling when training',
  'single-class': 'add images of the other class (natix train refuses one-class data unless --allow-one-class)',
  'label-description-mismatch': 'validators skip these rows: fix the label or the scene_description',
  'too-large': 'these files were refused, not decoded: resize them or raise thresholds.too-large',
  blurry: 'inspect them in --report; drop those that are blurred beyond what the validators send',
};

export type FailOn = 'error' | 'warning' | 'never';

export interface ValidationSummary {
  summary: Record<string, {count: number; severity: Severity}>;
  failing: boolean;
}

export function summariseFindings(findings: Finding[], failOn: FailOn): ValidationSummary {
  const summary: Record<string, {count: number; severity: Severity}> = {};
  for (const f of findings) {
    const s = (summary[f.check] ??= {count: 0, severity: f.severity});
    s.count++;
    if (RANK[f.severity] > RANK[s.severity]) s.severity = f.severity;
  }
  const failing = failOn !== 'never' && findings.some((f) => RANK[f.severity] >= RANK[failOn]);
  return {summary, failing};
}

export interface DatasetInfo {
  root: string;
  format: string;
  detectedBy: string;
}

/** The --json result (schemas/validate-data-result.schema.json). */
export function validationJson(dataset: DatasetInfo, result: ValidationResult, failOn: FailOn, maxFindings: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const {summary, failing} = summariseFindings(result.findings, failOn);
  return {
    dataset: {...dataset, images: result.images.length, splits: result.statistics.splits, classes: result.statistics.classes},
    findings: result.findings.slice(0, maxFindings),
    ...(result.findings.length > maxFindings ? {findingsTruncated: result.findings.length - maxFindings} : {}),
    summary,
    statistics: result.statistics,
    seconds: Math.round(result.seconds * 1000) / 1000,
    imagesPerSecond: result.seconds > 0 ? Math.round((result.images.length / result.seconds) * 10) / 10 : 0,
    verdict: failing ? 'fail' : 'pass',
    failOn,
    ...extra,
  };
}

/** The human-readable report (tables, what to do next, PASS/FAIL). */
export function validationText(dataset: DatasetInfo, result: ValidationResult, failOn: FailOn, c: ChalkInstance): string {
  const {summary, failing} = summariseFindings(result.findings, failOn);
  const {findings, statistics: stats, seconds} = result;
  const images = result.images.length;
  const paint = (s: Severity): string => (s === 'error' ? c.red(s) : s === 'warning' ? c.yellow(s) : s);
  const out: string[] = [];
  out.push(`${c.bold(dataset.root)} (${dataset.format}): ${images} images in ${seconds.toFixed(2)} s (${(images / Math.max(seconds, 1e-9)).toFixed(1)} images/s)`);
  const splitRows = Object.entries(stats.bySplitAndClass).map(([split, classes]) => [split, ...['0', '1'].map((k) => classes[k] ?? 0), Object.values(classes).reduce((a, b) => a + b, 0)]);
  out.push(formatTable(['split', 'label 0', 'label 1', 'images'], splitRows, ['left', 'right', 'right', 'right']));
  if (stats.width && stats.height) out.push(`size: width ${stats.width.min}..${stats.width.max} (median ${stats.width.median}), height ${stats.height.min}..${stats.height.max} (median ${stats.height.median})`);
  if (stats.brightness) out.push(`mean brightness: p5 ${stats.brightness.p5.toFixed(3)}, median ${stats.brightness.median.toFixed(3)}, p95 ${stats.brightness.p95.toFixed(3)}`);
  if (stats.fullResolution > 0) out.push(`${stats.fullResolution} of ${images} images decoded again at full resolution for CleanVision's dark / light verdicts (--no-exact-brightness keeps the thumbnail's)`);
  if (findings.length === 0) {
    out.push(c.green('No findings.'));
    return out.join('\n');
  }
  const rows = CHECK_IDS.filter((id) => summary[id]).map((id) => {
    const examples = findings.filter((f) => f.check === id).slice(0, 2).map((f) => f.path);
    return [id, paint(summary[id]!.severity), summary[id]!.count, examples.join(', ')];
  });
  out.push(formatTable(['check', 'severity', 'count', 'examples'], rows, ['left', 'left', 'right', 'left']));
  const next = CHECK_IDS.filter((id) => summary[id] && ADVICE[id]).map((id) => `  - ${id}: ${ADVICE[id]}`);
  if (next.length) out.push(`What to do next:\n${next.join('\n')}`);
  out.push(failing ? c.red(`FAIL: findings at or above "${failOn}"`) : c.green(`PASS (fail-on ${failOn})`));
  return out.join('\n');
}

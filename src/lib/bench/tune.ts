/**
 * Exit-threshold tuning (`natix bench --tune`): run every stage of the cascade on every image ONCE (escalation
 * off), record each stage's probability and time, then evaluate offline, without running a model again:
 * - per stage, exit coverage and exit accuracy at thresholds t in [0.50, 0.99] (exit when p >= t or p <= 1 - t;
 *   METHODS.md: miners tune t for ~60% exits at >= 99% exit accuracy);
 * - for the whole cascade, every band choice (stage k escalates while 1 - t_k <= p <= t_k, exactly the engine's
 *   `escalate: {when: inside, band: [1 - t, t]}`): its MCC, accuracy, mean latency and exit rates;
 * - the frontier (no other choice is both faster and better), and a recommendation for targets: per stage the
 *   widest exit at the target exit accuracy (`--target-exit`, `--target-exit-accuracy`), or the best MCC within a
 *   latency budget (`--latency-budget`).
 * The simulated latency of an image is its decode time plus the recorded time of each stage it would reach.
 */
import path from 'node:path';
import YAML from 'yaml';
import type {Cascade, CascadeResult} from '../cascade/index.js';
import type {Sample} from '../data/sample.js';
import {ConfusionMatrix, classificationMetrics} from '../metrics/classification.js';
import {readUserFile} from '../util/user-files.js';

export interface TuneRecord {
  id: string;
  label: number;
  decodeMs: number;
  /** Per stage: its combined probability (null when every model of it failed) and its wall time (ms). */
  stages: Array<{p: number | null; ms: number}>;
}

/** t = 0.50, 0.51, ..., 0.99. */
export const THRESHOLD_GRID: number[] = Array.from({length: 50}, (_, i) => (50 + i) / 100);

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** The engine's band for threshold t: escalate while 1 - t <= p <= t. */
export function bandFor(t: number): {when: 'inside'; band: [number, number]} {
  return {when: 'inside', band: [round2(1 - t), t]};
}

export interface ExitRow {
  t: number;
  /** Images that exit at t / images considered. */
  coverage: number;
  /** Accuracy (p > decision threshold vs label) on the images that exit; null when none exits. */
  exitAccuracy: number | null;
  exits: number;
  n: number;
}

/** Exit coverage and exit accuracy of stage `k` at every t of the grid, over `records`. */
export function stageExitTable(records: TuneRecord[], k: number, grid: number[] = THRESHOLD_GRID, decision = 0.5): ExitRow[] {
  return grid.map((t) => {
    let exits = 0;
    let correct = 0;
    for (const r of records) {
      const p = r.stages[k]?.p;
      if (p === null || p === undefined) continue;
      if (p >= t || p <= 1 - t) {
        exits++;
        if (p > decision === (r.label === 1)) correct++;
      }
    }
    return {t, coverage: records.length ? exits / records.length : 0, exitAccuracy: exits ? correct / exits : null, exits, n: records.length};
  });
}

export type Band = {when: 'inside' | 'outside'; band: [number, number]} | undefined;

export interface BandChoice {
  /** t per non-last stage (null: a band that is not the symmetric [1 - t, t], e.g. the cascade's current one). */
  thresholds: Array<number | null>;
  bands: Band[];
  mcc: number;
  accuracy: number;
  meanMs: number;
  /** Share of the images whose answer comes from each stage. */
  exitRates: number[];
}

/** Whether an image goes on after a stage, by the engine's rule (cascade.ts). */
function escalates(band: Band, p: number): boolean {
  if (!band) return true;
  const inside = p >= band.band[0] && p <= band.band[1];
  return band.when === 'inside' ? inside : !inside;
}

/** Replays the cascade with `bands` (one per non-last stage) on the recorded probabilities. */
export function simulateBands(records: TuneRecord[], bands: Band[], decision = 0.5, thresholds: Array<number | null> = bands.map(() => null)): BandChoice {
  const stages = records[0]?.stages.length ?? 0;
  const cm = new ConfusionMatrix(2);
  const exitCounts = new Array<number>(stages).fill(0);
  let totalMs = 0;
  for (const r of records) {
    let p: number | undefined;
    let ms = r.decodeMs;
    let exitStage = stages - 1;
    for (let k = 0; k < stages; k++) {
      const s = r.stages[k]!;
      ms += s.ms;
      if (s.p === null) continue; // a failed stage: the engine goes on to the next one
      p = s.p;
      if (k < stages - 1 && !escalates(bands[k], s.p)) {
        exitStage = k;
        break;
      }
    }
    exitCounts[exitStage]!++;
    totalMs += ms;
    cm.add(r.label, (p ?? 0.5) > decision ? 1 : 0);
  }
  const m = classificationMetrics(cm);
  return {thresholds, bands, mcc: m.mcc, accuracy: m.accuracy, meanMs: records.length ? totalMs / records.length : 0, exitRates: exitCounts.map((c) => (records.length ? c / records.length : 0))};
}

/** Every combination of grid thresholds for the non-last stages (coarser grid when there would be too many). */
export function bandChoices(records: TuneRecord[], decision = 0.5, maxChoices = 100_000): {grid: number[]; choices: BandChoice[]} {
  const free = Math.max(0, (records[0]?.stages.length ?? 1) - 1);
  let grid = THRESHOLD_GRID;
  if (grid.length ** free > maxChoices) grid = THRESHOLD_GRID.filter((_, i) => i % 5 === 0);
  while (free > 0 && grid.length ** free > maxChoices && grid.length > 2) grid = grid.filter((_, i) => i % 2 === 0);
  const choices: BandChoice[] = [];
  const pick = (prefix: number[]): void => {
    if (prefix.length === free) {
      choices.push(simulateBands(records, prefix.map(bandFor), decision, prefix));
      return;
    }
    for (const t of grid) pick([...prefix, t]);
  };
  pick([]);
  return {grid, choices};
}

/** The choices no other choice beats on both mean latency (lower) and MCC (higher), fastest first. */
export function frontier(choices: BandChoice[]): BandChoice[] {
  const sorted = [...choices].sort((a, b) => a.meanMs - b.meanMs || b.mcc - a.mcc);
  const out: BandChoice[] = [];
  let best = Number.NEGATIVE_INFINITY;
  for (const c of sorted) {
    if (c.mcc > best) {
      out.push(c);
      best = c.mcc;
    }
  }
  return out;
}

export interface TuneTargets {
  /** Per stage: exit at least this share of the images reaching it (default 0.6)... */
  exit: number;
  /** ...with at least this exit accuracy (default 0.99). */
  exitAccuracy: number;
  /** Instead: the best MCC with a mean latency at most this (ms). */
  latencyBudgetMs?: number;
}

export interface Recommendation extends BandChoice {
  rule: string;
  /** Where a target could not be met, and what was chosen instead. */
  notes: string[];
}

/** The recommended band choice for the targets (see TuneTargets). */
export function recommend(records: TuneRecord[], choices: BandChoice[], stageNames: string[], targets: TuneTargets, decision = 0.5): Recommendation {
  const notes: string[] = [];
  if (targets.latencyBudgetMs !== undefined) {
    const within = choices.filter((c) => c.meanMs <= targets.latencyBudgetMs!);
    const rule = `best MCC with a mean latency <= ${targets.latencyBudgetMs} ms`;
    if (within.length === 0) {
      const fastest = [...choices].sort((a, b) => a.meanMs - b.meanMs)[0]!;
      return {...fastest, rule, notes: [`no band choice has a mean latency within ${targets.latencyBudgetMs} ms: the fastest one takes ${fastest.meanMs.toFixed(2)} ms`]};
    }
    const best = within.reduce((a, b) => (b.mcc > a.mcc || (b.mcc === a.mcc && b.meanMs < a.meanMs) ? b : a));
    return {...best, rule, notes};
  }
  const thresholds: number[] = [];
  let reaching = records;
  for (let k = 0; k < stageNames.length - 1; k++) {
    const rows = stageExitTable(reaching, k, THRESHOLD_GRID, decision);
    const accurate = rows.filter((r) => r.exits > 0 && r.exitAccuracy! >= targets.exitAccuracy);
    let t: number;
    if (accurate.length === 0) {
      t = THRESHOLD_GRID[THRESHOLD_GRID.length - 1]!;
      notes.push(`stage ${stageNames[k]}: no threshold reaches ${(targets.exitAccuracy * 100).toFixed(1)}% exit accuracy; t = ${t} (the narrowest exit)`);
    } else {
      const widest = accurate[0]!; // the smallest t: the most exits at the target accuracy
      t = widest.t;
      if (widest.coverage < targets.exit) {
        notes.push(`stage ${stageNames[k]}: at most ${(widest.coverage * 100).toFixed(1)}% of the images reaching it exit at >= ${(targets.exitAccuracy * 100).toFixed(1)}% exit accuracy (target ${(targets.exit * 100).toFixed(0)}%)`);
      }
    }
    thresholds.push(t);
    const band = bandFor(t);
    reaching = reaching.filter((r) => r.stages[k]!.p === null || escalates(band, r.stages[k]!.p!));
  }
  const rule = `per stage, the widest exit with >= ${(targets.exitAccuracy * 100).toFixed(1)}% exit accuracy (target ${(targets.exit * 100).toFixed(0)}% exits)`;
  return {...simulateBands(records, thresholds.map(bandFor), decision, thresholds), rule, notes};
}

export interface TuneResult {
  images: number;
  decisionThreshold: number;
  stages: Array<{name: string; answered: number; meanMs: number; table: ExitRow[]}>;
  /** The grid the band choices were drawn from, and how many there were. */
  grid: number[];
  choices: number;
  frontier: BandChoice[];
  /** The cascade as it is configured now, replayed on the same records. */
  current: BandChoice;
  recommended: Recommendation;
}

/** Everything `bench --tune` reports, from the records. */
export function tune(records: TuneRecord[], stageNames: string[], currentBands: Band[], targets: TuneTargets, decision = 0.5): TuneResult & {all: BandChoice[]} {
  const {grid, choices} = bandChoices(records, decision);
  return {
    images: records.length,
    decisionThreshold: decision,
    stages: stageNames.map((name, k) => {
      const answered = records.filter((r) => r.stages[k]!.p !== null);
      return {name, answered: answered.length, meanMs: records.length ? records.reduce((s, r) => s + r.stages[k]!.ms, 0) / records.length : 0, table: stageExitTable(records, k, THRESHOLD_GRID, decision)};
    }),
    grid,
    choices: choices.length,
    frontier: frontier(choices),
    current: simulateBands(records, currentBands, decision),
    recommended: recommend(records, choices, stageNames, targets, decision),
    all: choices,
  };
}

/** Runs every stage on every labelled sample once (escalation off) and records probabilities and times. */
export async function recordStages(cascade: Cascade, samples: Sample[], options: {concurrency: number; onImage?: (done: number) => void}): Promise<{records: TuneRecord[]; skipped: number}> {
  const labelled = samples.filter((s) => s.label === 0 || s.label === 1);
  const results: Array<CascadeResult | undefined> = new Array(labelled.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < labelled.length; i = next++) {
      const s = labelled[i]!;
      [results[i]] = await cascade.predictBatch([{input: s.bytes ?? s.absPath!, meta: {id: s.id, path: s.path}}], {allStages: true});
      options.onImage?.(++done);
    }
  };
  await Promise.all(Array.from({length: Math.max(1, options.concurrency)}, worker));
  const records: TuneRecord[] = [];
  labelled.forEach((s, i) => {
    const r = results[i]!;
    if (r.error?.startsWith('unreadable')) return;
    records.push({id: s.id, label: s.label!, decodeMs: r.decodeMs, stages: r.stages.map((st) => ({p: st.probability ?? null, ms: st.ms}))});
  });
  return {records, skipped: samples.length - records.length};
}

/**
 * A copy of the cascade file with the recommended bands (stage k: escalate inside [1 - t_k, t_k]), model paths
 * rewritten for the new file's folder. Returns the YAML text.
 */
export async function tunedCascadeYaml(cascadeFile: string, outFile: string, thresholds: Array<number | null>, comment: string): Promise<string> {
  const text = await readUserFile(cascadeFile, 'utf8');
  const doc = (/\.json$/i.test(cascadeFile) ? JSON.parse(text) : YAML.parse(text)) as {models: Record<string, {path: string}>; stages: Array<{escalate?: unknown}>};
  const from = path.dirname(path.resolve(cascadeFile));
  const to = path.dirname(path.resolve(outFile));
  for (const model of Object.values(doc.models)) {
    // Relative when the new file sits beside or above the models (a copy that travels with them), else absolute.
    const abs = path.resolve(from, model.path);
    const rel = path.relative(to, abs);
    model.path = rel === '' ? '.' : rel.startsWith('..') ? abs : rel.split(path.sep).join('/');
  }
  thresholds.forEach((t, k) => {
    if (t !== null && doc.stages[k]) doc.stages[k]!.escalate = bandFor(t);
  });
  return `# ${comment}\n${YAML.stringify(doc)}`;
}

export interface TuneRun {
  result: TuneResult;
  all: BandChoice[];
  skipped: number;
  /** The tuned cascade file's text, when a cascade file was given and a file to write was asked for. */
  cascadeYaml?: string;
}

/** `bench --tune` as a library call: record, evaluate, recommend, and (optionally) the tuned cascade file's text. */
export async function runTune(
  cascade: Cascade,
  samples: Sample[],
  options: {concurrency: number; targets: TuneTargets; cascadeFile?: string; writeTo?: string; onImage?: (done: number) => void},
): Promise<TuneRun> {
  const {records, skipped} = await recordStages(cascade, samples, {concurrency: options.concurrency, onImage: options.onImage});
  if (records.length === 0) throw new Error('no labelled image could be read: tuning needs labels (0 = none, 1 = roadwork)');
  const names = cascade.stages.map((s) => s.name);
  const {all, ...result} = tune(records, names, cascade.stages.slice(0, -1).map((s) => s.escalate), options.targets, cascade.threshold);
  let cascadeYaml: string | undefined;
  if (options.writeTo && options.cascadeFile) {
    const r = result.recommended;
    cascadeYaml = await tunedCascadeYaml(
      options.cascadeFile,
      options.writeTo,
      r.thresholds,
      `natix bench --tune on ${records.length} images: ${r.rule}; expected MCC ${r.mcc.toFixed(4)}, mean ${r.meanMs.toFixed(2)} ms per image`,
    );
  }
  return {result, all, skipped, cascadeYaml};
}

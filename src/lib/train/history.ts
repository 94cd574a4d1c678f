/** The run's per-epoch record: `history.csv` and a picture of the curves (`curves.svg`), rewritten each epoch. */
import path from 'node:path';
import {niceTicks} from '../report/ticks.js';
import {writeFileAtomic} from '../util/fs.js';

export type EpochRecord = Record<string, number>;

export const HISTORY_COLUMNS = ['epoch', 'lr', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'val_mcc', 'val_precision', 'val_recall', 'seconds'];

export function historyCsv(history: EpochRecord[], columns: string[] = HISTORY_COLUMNS): string {
  const lines = [columns.join(',')];
  for (const h of history) lines.push(columns.map((c) => (h[c] === undefined || Number.isNaN(h[c]) ? '' : String(Math.round(h[c]! * 1e6) / 1e6))).join(','));
  return `${lines.join('\n')}\n`;
}

/** Epoch numbers to label on the x axis: every one up to 10 epochs, then about 10 evenly spaced. */
function epochTicks(epochs: number[]): number[] {
  if (epochs.length <= 10) return epochs;
  const step = niceTicks(epochs[0]!, epochs.at(-1)!, 8)[1]! - niceTicks(epochs[0]!, epochs.at(-1)!, 8)[0]!;
  return epochs.filter((e) => e === epochs[0] || e % Math.max(1, Math.round(step)) === 0);
}

interface PanelOptions {
  x: number;
  y: number;
  w: number;
  h: number;
  title: string;
  /** The y range always includes these (e.g. [0, 1] for accuracy); the data may widen it (a negative MCC). */
  include?: [number, number];
}

/**
 * One chart: a frame, y gridlines with round tick labels, epoch ticks on the x axis, one line with dots per key, and
 * the legend above the frame (never over the lines). The y range fits the data with a margin, so every point is
 * inside the frame and a loss curve is not flattened against 0.
 */
function panel(history: EpochRecord[], keys: Array<[string, string]>, o: PanelOptions): string {
  const values = history.flatMap((r) => keys.map(([k]) => r[k]).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  let lo = Math.min(...values, ...(o.include ?? []));
  let hi = Math.max(...values, ...(o.include ?? []));
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  // A margin on every side the data sets (a fixed side like accuracy's 1.0 stays where it is).
  const pad = (hi - lo) * 0.06;
  if (!o.include || lo < o.include[0]) lo -= pad;
  if (!o.include || hi > o.include[1]) hi += pad;
  const ticks = niceTicks(lo, hi);
  lo = Math.min(lo, ticks[0]!);
  hi = Math.max(hi, ticks.at(-1)!);
  const epochs = history.map((r, i) => r.epoch ?? i + 1);
  const first = epochs[0] ?? 1;
  const last = epochs.at(-1) ?? 1;
  const px = (e: number): number => o.x + (last > first ? ((e - first) / (last - first)) * o.w : o.w / 2);
  const py = (v: number): number => o.y + o.h - ((v - lo) / (hi - lo)) * o.h;
  const digits = Math.max(0, -Math.floor(Math.log10(Math.max(1e-12, (ticks[1] ?? 1) - (ticks[0] ?? 0)))));
  let out = `<text x="${o.x}" y="${o.y - 26}" font-weight="bold">${o.title}</text>`;
  keys.forEach(([k, colour], j) => {
    const lx = o.x + j * 95;
    out += `<line x1="${lx}" y1="${o.y - 10}" x2="${lx + 16}" y2="${o.y - 10}" stroke="${colour}" stroke-width="2"/><text x="${lx + 20}" y="${o.y - 6}">${k}</text>`;
  });
  for (const t of ticks) {
    const ty = py(t).toFixed(1);
    out += `<line x1="${o.x}" y1="${ty}" x2="${o.x + o.w}" y2="${ty}" stroke="${t === 0 ? '#999' : '#eee'}"/><text x="${o.x - 5}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${t.toFixed(digits)}</text>`;
  }
  for (const e of epochTicks(epochs)) {
    const tx = px(e).toFixed(1);
    out += `<line x1="${tx}" y1="${o.y + o.h}" x2="${tx}" y2="${o.y + o.h + 4}" stroke="#666"/><text x="${tx}" y="${o.y + o.h + 16}" text-anchor="middle">${e}</text>`;
  }
  out += `<text x="${o.x + o.w / 2}" y="${o.y + o.h + 32}" text-anchor="middle">epoch</text>`;
  out += `<rect x="${o.x}" y="${o.y}" width="${o.w}" height="${o.h}" fill="none" stroke="#999"/>`;
  for (const [k, colour] of keys) {
    const pts = history.flatMap((r, i) => (r[k] === undefined || !Number.isFinite(r[k]) ? [] : [[px(epochs[i]!), py(r[k]!)] as const]));
    if (pts.length > 1) out += `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`;
    for (const [x, y] of pts) out += `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.5" fill="${colour}"/>`;
  }
  return out;
}

/** Training curves: loss (train and validation) and accuracy / MCC per epoch, as an SVG page. */
export function curvesSvg(history: EpochRecord[], title: string): string {
  const body =
    panel(history, [['loss', '#4c78a8'], ['val_loss', '#e45756']], {x: 60, y: 80, w: 320, h: 200, title: 'Loss'}) +
    panel(history, [['accuracy', '#4c78a8'], ['val_accuracy', '#e45756'], ['val_mcc', '#54a24b']], {x: 480, y: 80, w: 320, h: 200, title: 'Accuracy / MCC', include: [0, 1]});
  return `<svg xmlns="http://www.w3.org/2000/svg" width="840" height="340" font-family="sans-serif" font-size="11"><rect width="840" height="340" fill="#fff"/><text x="20" y="24" font-size="14" font-weight="bold">${title.replace(/[<&>]/g, '')}</text>${body}</svg>\n`;
}

export async function writeHistory(runDir: string, history: EpochRecord[], title: string, columns?: string[]): Promise<void> {
  await writeFileAtomic(path.join(runDir, 'history.csv'), historyCsv(history, columns));
  await writeFileAtomic(path.join(runDir, 'curves.svg'), curvesSvg(history, title));
}

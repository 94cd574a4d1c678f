/** The run's per-epoch record: `history.csv` and a picture of the curves (`curves.svg`), rewritten each epoch. */
import path from 'node:path';
import {writeFileAtomic} from '../util/fs.js';

export type EpochRecord = Record<string, number>;

export const HISTORY_COLUMNS = ['epoch', 'lr', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'val_mcc', 'val_precision', 'val_recall', 'seconds'];

export function historyCsv(history: EpochRecord[], columns: string[] = HISTORY_COLUMNS): string {
  const lines = [columns.join(',')];
  for (const h of history) lines.push(columns.map((c) => (h[c] === undefined || Number.isNaN(h[c]) ? '' : String(Math.round(h[c]! * 1e6) / 1e6))).join(','));
  return `${lines.join('\n')}\n`;
}

function panel(history: EpochRecord[], keys: Array<[string, string]>, x: number, y: number, w: number, h: number, title: string, fixed?: [number, number]): string {
  const values = history.flatMap((r) => keys.map(([k]) => r[k]).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const lo = fixed ? fixed[0] : Math.min(...values, 0);
  const hi = fixed ? fixed[1] : Math.max(...values, 1e-9);
  const n = history.length;
  const px = (i: number): number => x + (n > 1 ? (i / (n - 1)) * w : w / 2);
  const py = (v: number): number => y + h - ((v - lo) / (hi - lo || 1)) * h;
  let out = `<text x="${x}" y="${y - 8}" font-weight="bold">${title}</text><rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#ccc"/>`;
  out += `<text x="${x - 4}" y="${y + 4}" text-anchor="end">${hi.toFixed(2)}</text><text x="${x - 4}" y="${y + h}" text-anchor="end">${lo.toFixed(2)}</text>`;
  keys.forEach(([k, colour], j) => {
    const pts = history.map((r, i) => (r[k] === undefined || !Number.isFinite(r[k]) ? null : `${px(i).toFixed(1)},${py(r[k]!).toFixed(1)}`)).filter(Boolean);
    out += `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`;
    out += `<text x="${x + w - 90}" y="${y + 14 + j * 14}" fill="${colour}">${k}</text>`;
  });
  return out;
}

export function curvesSvg(history: EpochRecord[], title: string): string {
  const body =
    panel(history, [['loss', '#4c78a8'], ['val_loss', '#e45756']], 50, 50, 320, 200, 'Loss') +
    panel(history, [['accuracy', '#4c78a8'], ['val_accuracy', '#e45756'], ['val_mcc', '#54a24b']], 450, 50, 320, 200, 'Accuracy / MCC', [0, 1]);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="820" height="300" font-family="sans-serif" font-size="11"><rect width="820" height="300" fill="#fff"/><text x="20" y="22" font-size="14" font-weight="bold">${title.replace(/[<&>]/g, '')}</text>${body}<text x="50" y="280">epochs: ${history.length}</text></svg>\n`;
}

export async function writeHistory(runDir: string, history: EpochRecord[], title: string, columns?: string[]): Promise<void> {
  await writeFileAtomic(path.join(runDir, 'history.csv'), historyCsv(history, columns));
  await writeFileAtomic(path.join(runDir, 'curves.svg'), curvesSvg(history, title));
}

/**
 * A one-page picture of a benchmark as SVG (PNG through sharp's librsvg): latency histogram, confusion matrix, and
 * the reward / moving-average score over validator challenges when simulated.
 */
import {writeFile} from 'node:fs/promises';
import sharp from 'sharp';

export interface PlotData {
  title: string;
  latencies: ArrayLike<number>;
  p50: number;
  p95: number;
  confusion: {tp: number; fp: number; tn: number; fn: number};
  rewards?: number[];
  scores?: number[];
}

const esc = (t: string): string => t.replace(/[<>&]/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;'})[c]!);

function histogram(values: ArrayLike<number>, x: number, y: number, w: number, h: number, marks: Array<[string, number]>): string {
  const n = values.length;
  if (n === 0) return `<text x="${x}" y="${y + h / 2}">no latency samples</text>`;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    min = Math.min(min, values[i]!);
    max = Math.max(max, values[i]!);
  }
  const bins = 30;
  const width = max > min ? (max - min) / bins : 1;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) counts[Math.min(bins - 1, Math.floor((values[i]! - min) / width))]!++;
  const top = Math.max(...counts);
  let out = `<text x="${x}" y="${y - 8}" font-weight="bold">End-to-end latency (ms), n=${n}</text>`;
  counts.forEach((c, i) => {
    const bh = (c / top) * h;
    out += `<rect x="${(x + (i * w) / bins).toFixed(1)}" y="${(y + h - bh).toFixed(1)}" width="${(w / bins - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="#4c78a8"/>`;
  });
  for (const [label, v] of marks) {
    const mx = x + ((v - min) / (max - min || 1)) * w;
    out += `<line x1="${mx.toFixed(1)}" y1="${y}" x2="${mx.toFixed(1)}" y2="${y + h}" stroke="#e45756" stroke-dasharray="4 3"/><text x="${(mx + 3).toFixed(1)}" y="${y + 12}" fill="#e45756">${label} ${v.toFixed(2)}</text>`;
  }
  out += `<text x="${x}" y="${y + h + 16}">${min.toFixed(2)}</text><text x="${x + w}" y="${y + h + 16}" text-anchor="end">${max.toFixed(2)}</text>`;
  return out;
}

function confusionMatrix(c: PlotData['confusion'], x: number, y: number, size: number): string {
  const cells: Array<[string, number, number, number]> = [
    ['TN', c.tn, 0, 0],
    ['FP', c.fp, 1, 0],
    ['FN', c.fn, 0, 1],
    ['TP', c.tp, 1, 1],
  ];
  const max = Math.max(1, c.tn, c.fp, c.fn, c.tp);
  let out = `<text x="${x}" y="${y - 8}" font-weight="bold">Confusion matrix (rows: truth)</text>`;
  for (const [name, v, col, row] of cells) {
    const shade = Math.round(245 - (v / max) * 170);
    out += `<rect x="${x + col * size}" y="${y + row * size}" width="${size - 2}" height="${size - 2}" fill="rgb(${shade},${shade},255)"/><text x="${x + col * size + size / 2}" y="${y + row * size + size / 2}" text-anchor="middle">${name} ${v}</text>`;
  }
  out += `<text x="${x + size / 2}" y="${y + 2 * size + 14}" text-anchor="middle">none</text><text x="${x + 1.5 * size}" y="${y + 2 * size + 14}" text-anchor="middle">roadwork</text>`;
  return out;
}

function series(rewards: number[], scores: number[], x: number, y: number, w: number, h: number): string {
  const n = rewards.length;
  const px = (i: number): string => (x + (n > 1 ? (i / (n - 1)) * w : 0)).toFixed(1);
  const py = (v: number): string => (y + h - v * h).toFixed(1);
  let out = `<text x="${x}" y="${y - 8}" font-weight="bold">Validator simulation: reward (blue) and moving-average score (red) over ${n} challenges</text>`;
  out += `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#ccc"/>`;
  out += `<polyline fill="none" stroke="#4c78a8" stroke-width="1" points="${rewards.map((v, i) => `${px(i)},${py(v)}`).join(' ')}"/>`;
  out += `<polyline fill="none" stroke="#e45756" stroke-width="2" points="${scores.map((v, i) => `${px(i)},${py(v)}`).join(' ')}"/>`;
  out += `<text x="${x - 4}" y="${y + 4}" text-anchor="end">1</text><text x="${x - 4}" y="${y + h}" text-anchor="end">0</text>`;
  return out;
}

export function benchPlotSvg(data: PlotData): string {
  const withValidator = data.rewards && data.rewards.length > 0;
  const height = withValidator ? 560 : 340;
  let body = `<text x="20" y="28" font-size="16" font-weight="bold">${esc(data.title)}</text>`;
  body += histogram(data.latencies, 30, 70, 440, 200, [
    ['p50', data.p50],
    ['p95', data.p95],
  ]);
  body += confusionMatrix(data.confusion, 540, 70, 100);
  if (withValidator) body += series(data.rewards!, data.scores ?? [], 40, 340, 720, 180);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="${height}" font-family="sans-serif" font-size="11"><rect width="800" height="${height}" fill="#fff"/>${body}</svg>\n`;
}

/** Writes the plot as SVG or PNG, by the file's extension. */
export async function writeBenchPlot(file: string, data: PlotData): Promise<void> {
  const svg = benchPlotSvg(data);
  if (/\.png$/i.test(file)) await sharp(Buffer.from(svg)).png().toFile(file);
  else await writeFile(file, svg);
}

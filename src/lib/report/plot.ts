/**
 * A one-page picture of a benchmark as SVG (PNG through sharp's librsvg): latency histogram, confusion matrix, and
 * the reward / moving-average score over validator challenges when simulated.
 */
import {writeFile} from 'node:fs/promises';
import sharp from 'sharp';
import {niceTicks} from './ticks.js';

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

/** A latency histogram with a count (y) axis, ms (x) axis ticks and the p50 / p95 marks. */
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
  const yTicks = niceTicks(0, Math.max(...counts), 4).filter((t) => Number.isInteger(t));
  const top = Math.max(...counts, yTicks.at(-1) ?? 1);
  const xTicks = niceTicks(min, max, 5).filter((t) => t >= min && t <= max);
  const sx = (v: number): number => x + ((v - min) / (max - min || 1)) * w;
  let out = `<text x="${x}" y="${y - 8}" font-weight="bold">End-to-end latency, n=${n} queries</text>`;
  for (const t of yTicks) {
    const ty = (y + h - (t / top) * h).toFixed(1);
    out += `<line x1="${x}" y1="${ty}" x2="${x + w}" y2="${ty}" stroke="#eee"/><text x="${x - 5}" y="${(Number(ty) + 4).toFixed(1)}" text-anchor="end">${t}</text>`;
  }
  counts.forEach((c, i) => {
    const bh = (c / top) * h;
    out += `<rect x="${(x + (i * w) / bins).toFixed(1)}" y="${(y + h - bh).toFixed(1)}" width="${(w / bins - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="#4c78a8"/>`;
  });
  out += `<line x1="${x}" y1="${y}" x2="${x}" y2="${y + h}" stroke="#666"/><line x1="${x}" y1="${y + h}" x2="${x + w}" y2="${y + h}" stroke="#666"/>`;
  out += `<text x="${x - 34}" y="${y + h / 2}" text-anchor="middle" transform="rotate(-90 ${x - 34} ${y + h / 2})">queries per bin</text>`;
  for (const t of xTicks) {
    const tx = sx(t).toFixed(1);
    out += `<line x1="${tx}" y1="${y + h}" x2="${tx}" y2="${y + h + 4}" stroke="#666"/><text x="${tx}" y="${y + h + 16}" text-anchor="middle">${t}</text>`;
  }
  out += `<text x="${x + w / 2}" y="${y + h + 32}" text-anchor="middle">latency (ms)</text>`;
  marks.forEach(([label, v], j) => {
    const mx = sx(v);
    out += `<line x1="${mx.toFixed(1)}" y1="${y}" x2="${mx.toFixed(1)}" y2="${y + h}" stroke="#e45756" stroke-dasharray="4 3"/><text x="${(mx + 3).toFixed(1)}" y="${y + 12 + j * 13}" fill="#e45756">${label} ${v.toFixed(2)}</text>`;
  });
  return out;
}

/** The 2x2 confusion matrix: rows are the truth, columns the prediction, both labelled. */
function confusionMatrix(c: PlotData['confusion'], x: number, y: number, size: number): string {
  const cells: Array<[string, number, number, number]> = [
    ['TN', c.tn, 0, 0],
    ['FP', c.fp, 1, 0],
    ['FN', c.fn, 0, 1],
    ['TP', c.tp, 1, 1],
  ];
  const max = Math.max(1, c.tn, c.fp, c.fn, c.tp);
  const gx = x + 70;
  const gy = y + 34;
  let out = `<text x="${x}" y="${y - 8}" font-weight="bold">Confusion matrix</text>`;
  out += `<text x="${gx + size}" y="${y + 10}" text-anchor="middle" font-weight="bold">prediction</text>`;
  out += `<text x="${gx + size / 2}" y="${gy - 6}" text-anchor="middle">none</text><text x="${gx + 1.5 * size}" y="${gy - 6}" text-anchor="middle">roadwork</text>`;
  out += `<text x="${x + 10}" y="${gy + size}" text-anchor="middle" font-weight="bold" transform="rotate(-90 ${x + 10} ${gy + size})">truth</text>`;
  out += `<text x="${gx - 6}" y="${gy + size / 2 + 4}" text-anchor="end">none</text><text x="${gx - 6}" y="${gy + 1.5 * size + 4}" text-anchor="end">roadwork</text>`;
  for (const [name, v, col, row] of cells) {
    const shade = Math.round(245 - (v / max) * 170);
    const cx = gx + col * size;
    const cy = gy + row * size;
    const ink = shade < 140 ? '#fff' : '#222';
    out += `<rect x="${cx}" y="${cy}" width="${size - 2}" height="${size - 2}" fill="rgb(${shade},${shade},255)"/><text x="${cx + size / 2}" y="${cy + size / 2 - 2}" text-anchor="middle" font-size="16" fill="${ink}">${v}</text><text x="${cx + size / 2}" y="${cy + size / 2 + 14}" text-anchor="middle" fill="${ink}">${name}</text>`;
  }
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
  const height = withValidator ? 580 : 360;
  let body = `<text x="20" y="28" font-size="16" font-weight="bold">${esc(data.title)}</text>`;
  body += histogram(data.latencies, 70, 70, 420, 200, [
    ['p50', data.p50],
    ['p95', data.p95],
  ]);
  body += confusionMatrix(data.confusion, 530, 70, 100);
  if (withValidator) body += series(data.rewards!, data.scores ?? [], 40, 370, 720, 180);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="820" height="${height}" font-family="sans-serif" font-size="11"><rect width="820" height="${height}" fill="#fff"/>${body}</svg>\n`;
}

/** Writes the plot as SVG or PNG, by the file's extension. */
export async function writeBenchPlot(file: string, data: PlotData): Promise<void> {
  const svg = benchPlotSvg(data);
  if (/\.png$/i.test(file)) await sharp(Buffer.from(svg)).png().toFile(file);
  else await writeFile(file, svg);
}

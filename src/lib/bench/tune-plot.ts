/**
 * The picture of `bench --tune` as SVG (PNG through sharp's librsvg): left, MCC against mean latency for every band
 * choice, the frontier, the current cascade and the recommendation; right, each stage's exit coverage (solid) and
 * exit accuracy (dashed) against the threshold t.
 */
import sharp from 'sharp';
import {writeFileAtomic} from '../util/fs.js';
import type {BandChoice, TuneResult} from './tune.js';

const W = 960;
const H = 430;
const COLOURS = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
const esc = (s: string): string => s.replace(/[<>&"]/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'})[c]!);

interface Panel {
  x0: number;
  y0: number;
  w: number;
  h: number;
  xr: [number, number];
  yr: [number, number];
}
const px = (p: Panel, x: number): number => p.x0 + ((x - p.xr[0]) / (p.xr[1] - p.xr[0] || 1)) * p.w;
const py = (p: Panel, y: number): number => p.y0 + p.h - ((y - p.yr[0]) / (p.yr[1] - p.yr[0] || 1)) * p.h;

function axes(p: Panel, xLabel: string, yLabel: string, title: string): string {
  const ticks = (r: [number, number]): number[] => Array.from({length: 5}, (_, i) => r[0] + ((r[1] - r[0]) * i) / 4);
  const parts = [`<rect x="${p.x0}" y="${p.y0}" width="${p.w}" height="${p.h}" fill="none" stroke="#888"/>`, `<text x="${p.x0 + p.w / 2}" y="${p.y0 - 10}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`];
  for (const x of ticks(p.xr)) parts.push(`<text x="${px(p, x).toFixed(1)}" y="${p.y0 + p.h + 16}" text-anchor="middle" font-size="11">${x.toFixed(2)}</text>`);
  for (const y of ticks(p.yr)) parts.push(`<text x="${p.x0 - 6}" y="${(py(p, y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${y.toFixed(3)}</text>`);
  parts.push(`<text x="${p.x0 + p.w / 2}" y="${p.y0 + p.h + 34}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  parts.push(`<text x="${p.x0 - 52}" y="${p.y0 + p.h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${p.x0 - 52} ${p.y0 + p.h / 2})">${esc(yLabel)}</text>`);
  return parts.join('');
}

export function tunePlotSvg(result: TuneResult, all: BandChoice[]): string {
  const shown = all.length > 3000 ? all.filter((_, i) => i % Math.ceil(all.length / 3000) === 0) : all;
  const points = [...shown, result.current, result.recommended];
  const ms = points.map((c) => c.meanMs);
  const mccs = points.map((c) => c.mcc).filter((v) => Number.isFinite(v));
  const pad = (lo: number, hi: number): [number, number] => (hi - lo < 1e-9 ? [lo - 0.5, hi + 0.5] : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05]);
  const left: Panel = {x0: 80, y0: 40, w: 360, h: 320, xr: pad(Math.min(...ms), Math.max(...ms)), yr: pad(Math.min(...mccs), Math.max(...mccs))};
  const right: Panel = {x0: 560, y0: 40, w: 360, h: 320, xr: [0.5, 1], yr: [0, 1]};
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(axes(left, 'mean latency per image (ms)', 'MCC', `band choices (${result.choices}) and the frontier`));
  for (const c of shown) parts.push(`<circle cx="${px(left, c.meanMs).toFixed(1)}" cy="${py(left, c.mcc).toFixed(1)}" r="1.6" fill="#bbb"/>`);
  parts.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${result.frontier.map((c) => `${px(left, c.meanMs).toFixed(1)},${py(left, c.mcc).toFixed(1)}`).join(' ')}"/>`);
  for (const c of result.frontier) parts.push(`<circle cx="${px(left, c.meanMs).toFixed(1)}" cy="${py(left, c.mcc).toFixed(1)}" r="3" fill="#1f77b4"/>`);
  const cur = result.current;
  parts.push(`<rect x="${(px(left, cur.meanMs) - 5).toFixed(1)}" y="${(py(left, cur.mcc) - 5).toFixed(1)}" width="10" height="10" fill="none" stroke="#ff7f0e" stroke-width="2"/>`);
  const rec = result.recommended;
  parts.push(`<circle cx="${px(left, rec.meanMs).toFixed(1)}" cy="${py(left, rec.mcc).toFixed(1)}" r="7" fill="none" stroke="#d62728" stroke-width="2.5"/>`);
  parts.push(`<text x="${left.x0}" y="${H - 8}" font-size="11" fill="#ff7f0e">&#9633; current</text><text x="${left.x0 + 70}" y="${H - 8}" font-size="11" fill="#d62728">&#9675; recommended (t = ${esc(rec.thresholds.map((t) => (t === null ? '-' : t.toFixed(2))).join(', '))})</text><text x="${left.x0 + 260}" y="${H - 8}" font-size="11" fill="#1f77b4">&#8212; frontier</text>`);
  parts.push(axes(right, 'threshold t (exit when p >= t or p <= 1 - t)', 'share', 'per stage: exit coverage (solid), exit accuracy (dashed)'));
  result.stages.forEach((s, k) => {
    const colour = COLOURS[k % COLOURS.length]!;
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${s.table.map((r) => `${px(right, r.t).toFixed(1)},${py(right, r.coverage).toFixed(1)}`).join(' ')}"/>`);
    const acc = s.table.filter((r) => r.exitAccuracy !== null);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="5,3" points="${acc.map((r) => `${px(right, r.t).toFixed(1)},${py(right, r.exitAccuracy!).toFixed(1)}`).join(' ')}"/>`);
    parts.push(`<text x="${right.x0 + k * 90}" y="${H - 8}" font-size="11" fill="${colour}">&#8212; ${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export async function writeTunePlot(file: string, result: TuneResult, all: BandChoice[]): Promise<void> {
  const svg = tunePlotSvg(result, all);
  if (/\.png$/i.test(file)) await sharp(Buffer.from(svg)).png().toFile(file);
  else await writeFileAtomic(file, svg);
}

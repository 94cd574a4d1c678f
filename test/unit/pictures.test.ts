/** The pictures natix writes say what they show: every point inside its frame, labelled axes, labelled thumbnails. */
import {mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {describe, expect, it} from 'vitest';
import {validateHtmlReport} from '../../src/lib/quality/report-html.js';
import {benchPlotSvg} from '../../src/lib/report/plot.js';
import {niceTicks} from '../../src/lib/report/ticks.js';
import {curvesSvg} from '../../src/lib/train/history.js';

const history = Array.from({length: 12}, (_, i) => ({epoch: i + 1, lr: 0.001, loss: 0.9 - 0.04 * i, accuracy: 0.5 + 0.03 * i, val_loss: 0.95 - 0.03 * i, val_accuracy: 0.45 + 0.03 * i, val_mcc: -0.3 + 0.07 * i, seconds: 1}));

describe('curves.svg', () => {
  const svg = curvesSvg(history, 'run');
  const frames = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none"/g)].map((m) => m.slice(1, 5).map(Number) as [number, number, number, number]);

  it('draws every point (a negative val_mcc included) inside its frame', () => {
    expect(frames).toHaveLength(2);
    const points = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(points).toHaveLength(12 * 5);
    for (const [x, y] of points) expect(frames.some(([fx, fy, fw, fh]) => x >= fx && x <= fx + fw && y >= fy && y <= fy + fh), `${x},${y}`).toBe(true);
  });

  it('puts the legend above the frame, labels the epochs and does not pin the loss axis at 0', () => {
    const legend = [...svg.matchAll(/<text x="[\d.]+" y="([\d.]+)">(val_mcc|loss)<\/text>/g)].map((m) => Number(m[1]));
    for (const y of legend) expect(y).toBeLessThan(frames[0]![1]);
    for (const e of [1, 2, 4, 6, 8, 10, 12]) expect(svg).toMatch(new RegExp(`text-anchor="middle">${e}</text>`));
    expect(svg).toContain('>epoch</text>');
    const lossTicks = [...svg.slice(0, svg.indexOf('Accuracy / MCC')).matchAll(/text-anchor="end">([-\d.]+)<\/text>/g)].map((m) => Number(m[1]));
    expect(Math.min(...lossTicks)).toBeGreaterThan(0.3);
  });

  it('niceTicks gives round values covering the range', () => {
    expect(niceTicks(0.47, 0.93)).toEqual([0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(niceTicks(-0.3, 1)).toEqual([0, 0.5, 1]);
  });
});

describe('bench plot', () => {
  it('labels the confusion matrix (truth rows, prediction columns) and gives the histogram a count axis', () => {
    const svg = benchPlotSvg({title: 't', latencies: Float64Array.from({length: 200}, (_, i) => 5 + (i % 17)), p50: 12, p95: 20, confusion: {tp: 5, fp: 1, tn: 6, fn: 2}});
    expect(svg).toContain('>prediction</text>');
    expect(svg).toMatch(/>truth<\/text>/);
    expect(svg).toContain('>queries per bin</text>');
    expect(svg).toContain('>latency (ms)</text>');
    expect(svg).toMatch(/text-anchor="end">10<\/text>/);
  });
});

describe('validate-data HTML report', () => {
  it('thumbnails show each image label and split, and link to the full image file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'natix-report-'));
    const a = path.join(dir, 'a.png');
    await sharp({create: {width: 40, height: 30, channels: 3, background: '#123'}}).png().toFile(a);
    await writeFile(path.join(dir, 'x'), '');
    const html = await validateHtmlReport({
      title: 't',
      root: dir,
      format: 'folder',
      images: 2,
      findings: [{check: 'dark', severity: 'warning', path: 'train/roadwork/a.png', message: 'dark'}, {check: 'dark', severity: 'warning', path: 'b.parquet#3', message: 'dark'}],
      summary: {dark: {count: 2, severity: 'warning'}},
      records: [
        {ordinal: 0, path: 'train/roadwork/a.png', split: 'train', label: 1, source: a},
        {ordinal: 1, path: 'b.parquet#3', label: 0, source: new Uint8Array(await sharp(a).jpeg().toBuffer())},
      ],
    });
    expect(html).toContain(`<a href="file://${a}" target="_blank"`);
    expect(html).toContain('<span class="label roadwork">roadwork</span><span class="split">train</span>');
    expect(html).toContain('<span class="label none">none</span>');
    expect(html).toContain('(inside its file: no image file to open)');
  });
});

/**
 * A self-contained HTML page of validate-data's findings: a summary table, then thumbnails of flagged images
 * grouped by check (duplicates side by side). Thumbnails are small JPEG data URIs made from the flagged files only;
 * each shows the image's label and split, and links to the full image file (rows inside a parquet shard have no
 * file of their own: their caption says so).
 */
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import sharp from 'sharp';
import type {Finding, ImageRecord} from './validate.js';

const esc = (t: string): string => t.replace(/[<>&"]/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'})[c]!);

const THUMB = 180;

/** How a label reads in the report. */
function labelName(label: number | null | undefined): string {
  return label === 1 ? 'roadwork' : label === 0 ? 'none' : label === null || label === undefined ? 'unlabelled' : `class ${label}`;
}

async function thumbnail(source: string | Uint8Array | undefined): Promise<string | undefined> {
  if (!source) return undefined;
  try {
    const input = typeof source === 'string' ? source : Buffer.from(source);
    const jpeg = await sharp(input, {failOn: 'none', limitInputPixels: 100_000_000}).rotate().resize(THUMB, THUMB, {fit: 'inside'}).jpeg({quality: 75}).toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  } catch {
    return undefined;
  }
}

export interface HtmlReportInput {
  title: string;
  root: string;
  format: string;
  images: number;
  findings: Finding[];
  summary: Record<string, {count: number; severity: string}>;
  records: ImageRecord[];
  /** Thumbnails per check (default 24). */
  perCheck?: number;
}

export async function validateHtmlReport(input: HtmlReportInput): Promise<string> {
  const byPath = new Map(input.records.map((r) => [r.path, r]));
  const perCheck = input.perCheck ?? 24;
  const sections: string[] = [];
  const groups = new Map<string, Finding[]>();
  for (const f of input.findings) groups.set(f.check, [...(groups.get(f.check) ?? []), f]);
  for (const [check, findings] of groups) {
    const cards: string[] = [];
    for (const f of findings.slice(0, perCheck)) {
      const images = [f.path, ...(f.related ?? [])].filter((p) => byPath.has(p));
      const thumbs = await Promise.all(images.map(async (p) => {
        const record = byPath.get(p);
        const uri = await thumbnail(record?.source);
        const label = labelName(record?.label);
        const tags = `<span class="label ${label.replace(/\s/g, '-')}">${esc(label)}</span>${record?.split ? `<span class="split">${esc(record.split)}</span>` : ''}`;
        const file = typeof record?.source === 'string' ? pathToFileURL(path.resolve(input.root, record.source)).href : undefined;
        const picture = uri ? `<img src="${uri}" alt="${esc(p)}">` : '<div class="nopreview">no preview</div>';
        const linked = file ? `<a href="${esc(file)}" target="_blank" title="open the full image">${picture}</a>` : picture;
        return `<figure>${linked}<figcaption>${tags}<br>${esc(p)}${file ? '' : ' <em>(inside its file: no image file to open)</em>'}</figcaption></figure>`;
      }));
      cards.push(`<div class="card ${f.severity}">${thumbs.join('') || `<div class="path">${esc(f.path)}</div>`}<p>${esc(f.message)}</p></div>`);
    }
    const more = findings.length > perCheck ? `<p class="more">... and ${findings.length - perCheck} more (see --json)</p>` : '';
    sections.push(`<section><h2 id="${esc(check)}">${esc(check)} <small>${findings.length} ${findings[0]!.severity}</small></h2><div class="cards">${cards.join('')}</div>${more}</section>`);
  }
  const rows = Object.entries(input.summary)
    .map(([check, s]) => `<tr class="${s.severity}"><td><a href="#${esc(check)}">${esc(check)}</a></td><td>${s.severity}</td><td>${s.count}</td></tr>`)
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(input.title)}</title><style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}
tr.error td:nth-child(2),.card.error p{color:#b00020}tr.warning td:nth-child(2){color:#a15c00}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;max-width:400px}.card figure{display:inline-block;margin:0 8px 0 0;vertical-align:top}
.card img{max-width:180px;max-height:180px;display:block;border:1px solid #ccc}.card a:hover img{outline:2px solid #1a73e8}figcaption{font-size:11px;word-break:break-all;max-width:180px;margin-top:3px}
.card p{font-size:12px;margin:6px 0 0}.label{display:inline-block;padding:0 6px;border-radius:8px;font-weight:600;color:#fff;background:#777;margin-right:4px}
.label.roadwork{background:#d9480f}.label.none{background:#1864ab}.split{display:inline-block;padding:0 6px;border-radius:8px;background:#e9ecef}
.nopreview{width:180px;height:100px;background:#eee;display:flex;align-items:center;justify-content:center;font-size:11px}small{font-weight:normal;color:#666}</style></head><body>
<h1>${esc(input.title)}</h1><p>${esc(input.root)} (${esc(input.format)}), ${input.images} images, ${input.findings.length} findings.</p>
<table><tr><th>check</th><th>severity</th><th>count</th></tr>${rows || '<tr><td colspan="3">no findings</td></tr>'}</table>${sections.join('\n')}</body></html>
`;
}

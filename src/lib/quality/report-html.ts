/**
 * A self-contained HTML page of validate-data's findings: a summary table, then thumbnails of flagged images
 * grouped by check (duplicates side by side). Thumbnails are small JPEG data URIs made from the flagged files only.
 */
import sharp from 'sharp';
import type {Finding, ImageRecord} from './validate.js';

const esc = (t: string): string => t.replace(/[<>&"]/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'})[c]!);

async function thumbnail(source: string | Uint8Array | undefined): Promise<string | undefined> {
  if (!source) return undefined;
  try {
    const input = typeof source === 'string' ? source : Buffer.from(source);
    const jpeg = await sharp(input, {failOn: 'none', limitInputPixels: 100_000_000}).rotate().resize(128, 128, {fit: 'inside'}).jpeg({quality: 70}).toBuffer();
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
        const uri = await thumbnail(byPath.get(p)?.source);
        return uri ? `<figure><img src="${uri}" alt=""><figcaption>${esc(p)}</figcaption></figure>` : `<figure class="none"><div>no preview</div><figcaption>${esc(p)}</figcaption></figure>`;
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
.card{border:1px solid #ddd;border-radius:6px;padding:8px;max-width:300px}.card figure{display:inline-block;margin:0 6px 0 0;vertical-align:top}
.card img{max-width:128px;max-height:128px;display:block}figcaption{font-size:11px;word-break:break-all;max-width:128px}.card p{font-size:12px;margin:6px 0 0}
.none div{width:128px;height:72px;background:#eee;display:flex;align-items:center;justify-content:center;font-size:11px}small{font-weight:normal;color:#666}</style></head><body>
<h1>${esc(input.title)}</h1><p>${esc(input.root)} (${esc(input.format)}), ${input.images} images, ${input.findings.length} findings.</p>
<table><tr><th>check</th><th>severity</th><th>count</th></tr>${rows || '<tr><td colspan="3">no findings</td></tr>'}</table>${sections.join('\n')}</body></html>
`;
}

/**
 * Manifest datasets: a CSV (header row) or JSON-lines file with `path`, `label`, optional `split`, and any other
 * columns, kept as metadata. Paths are relative to the manifest's folder and must stay inside it.
 */
import {createReadStream} from 'node:fs';
import path from 'node:path';
import {createInterface} from 'node:readline';
import {parse as parseCsv} from 'csv-parse';
import {namesByLabel, parseLabelValue} from './labels.js';
import {PathEscapeError, relativePosix, resolveInsideRoot} from './safe-path.js';
import type {Dataset, ReaderOptions, Sample} from './sample.js';
import {splitForFolder} from './folder.js';

export const MANIFEST_NAMES = ['manifest.csv', 'manifest.jsonl', 'manifest.ndjson', 'labels.csv', 'labels.jsonl'];
const PATH_COLUMNS = ['path', 'image_path', 'file', 'filename', 'filepath', 'image'];

async function* manifestRows(file: string): AsyncIterable<{row: Record<string, unknown>; line: number} | {error: string; line: number}> {
  if (/\.(jsonl|ndjson)$/i.test(file)) {
    const lines = createInterface({input: createReadStream(file), crlfDelay: Infinity});
    let n = 0;
    for await (const text of lines) {
      n++;
      if (text.trim() === '') continue;
      try {
        const value = JSON.parse(text) as unknown;
        if (value === null || typeof value !== 'object' || Array.isArray(value)) yield {error: 'not a JSON object', line: n};
        else yield {row: value as Record<string, unknown>, line: n};
      } catch (error) {
        yield {error: `not valid JSON: ${(error as Error).message}`, line: n};
      }
    }
    return;
  }
  const parser = createReadStream(file).pipe(parseCsv({columns: true, skip_empty_lines: true, trim: true, relax_column_count: true, bom: true}));
  let n = 1;
  for await (const record of parser) {
    n++;
    yield {row: record as Record<string, unknown>, line: n};
  }
}

export async function readManifestDataset(manifestFile: string, options: ReaderOptions = {}): Promise<Dataset> {
  const root = path.dirname(manifestFile);
  const manifestRel = relativePosix(root, manifestFile);
  const seen = new Map<number, string>();
  return {
    format: 'manifest',
    root,
    get classNames() {
      return namesByLabel(seen);
    },
    async *samples(): AsyncIterable<Sample> {
      for await (const item of manifestRows(manifestFile)) {
        if ('error' in item) {
          options.onIssue?.({check: 'label-malformed', path: manifestRel, line: item.line, message: `${manifestRel}:${item.line}: ${item.error}`});
          continue;
        }
        const {row, line} = item;
        const pathKey = PATH_COLUMNS.find((k) => typeof row[k] === 'string' && row[k] !== '');
        if (!pathKey) {
          options.onIssue?.({check: 'label-malformed', path: manifestRel, line, message: `${manifestRel}:${line}: no path column (${PATH_COLUMNS.join('/')})`});
          continue;
        }
        const requested = String(row[pathKey]);
        let absPath: string;
        try {
          absPath = resolveInsideRoot(root, requested);
        } catch (error) {
          if (error instanceof PathEscapeError) {
            options.onIssue?.({check: 'path-escape', path: manifestRel, line, value: requested, message: `${manifestRel}:${line}: ${error.message}`});
            continue;
          }
          throw error;
        }
        const rawSplit = row.split === undefined || row.split === '' ? undefined : String(row.split);
        const split = rawSplit ? (splitForFolder(rawSplit) ?? rawSplit) : undefined;
        if (options.splits && (!split || !options.splits.includes(split))) continue;
        const label = parseLabelValue(row.label, options.classMap);
        const rel = relativePosix(root, absPath);
        if (label === undefined) {
          options.onIssue?.({
            check: row.label === undefined || row.label === '' ? 'label-missing' : 'label-class-unknown',
            path: rel,
            line,
            value: row.label,
            message: `${manifestRel}:${line}: label ${row.label === undefined || row.label === '' ? 'missing' : `"${String(row.label)}" unknown`}`,
          });
        } else if (!seen.has(label) && typeof row.label === 'string' && !/^\d+$/.test(row.label)) {
          seen.set(label, row.label);
        }
        const metadata: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(row)) if (k !== pathKey && k !== 'label' && k !== 'split') metadata[k] = v;
        yield {
          id: typeof row.id === 'string' || typeof row.id === 'number' ? String(row.id) : rel,
          path: rel,
          absPath,
          label: label ?? null,
          labelName: typeof row.label === 'string' ? row.label : undefined,
          split,
          metadata,
        };
      }
    },
  };
}

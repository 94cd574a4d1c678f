/**
 * Manifest datasets: a CSV (header row) or JSON-lines file with `path`, `label`, optional `split`, and any other
 * columns, kept as metadata. Paths are relative to the manifest's folder and must stay inside it.
 */
import path from 'node:path';
import {createInterface} from 'node:readline';
import {parse as parseCsv} from 'csv-parse';
import {openUserFileStream} from '../util/user-files.js';
import {namesByLabel, parseLabelValue} from './labels.js';
import {PathEscapeError, relativePosix, resolveInsideRoot} from './safe-path.js';
import type {Dataset, ReaderOptions, Sample} from './sample.js';
import {splitForFolder} from './folder.js';

export const MANIFEST_NAMES = ['manifest.csv', 'manifest.jsonl', 'manifest.ndjson', 'labels.csv', 'labels.jsonl'];
const PATH_COLUMNS = ['path', 'image_path', 'file', 'filename', 'filepath', 'image'];

type ManifestRow = {row: Record<string, unknown>; line: number} | {error: string; line?: number};

async function* manifestRows(file: string): AsyncIterable<ManifestRow> {
  // Only a regular file is opened (a FIFO would block forever); a directory, chmod 000 or a symlink loop is an
  // error naming the file and what happened.
  const input = await openUserFileStream(file);
  if (/\.(jsonl|ndjson)$/i.test(file)) {
    const lines = createInterface({input, crlfDelay: Infinity});
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
  // Records with a CSV error (a bare quote, junk after a closing quote, a wrong column count...) are skipped and
  // reported with their line; an error that ends parsing (an unclosed quote) is reported and reading stops.
  const pending: ManifestRow[] = [];
  const lineOf = (error: unknown): number | undefined => {
    const e = error as {lines?: number; info?: {lines?: number}};
    return e.lines ?? e.info?.lines;
  };
  const parser = input.pipe(
    parseCsv({
      columns: (header: string[]) => {
        const seen = new Map<string, number>();
        const duplicates = new Set<string>();
        const names = header.map((raw) => {
          const name = String(raw).trim();
          const count = (seen.get(name) ?? 0) + 1;
          seen.set(name, count);
          if (count === 1) return name;
          duplicates.add(name);
          return `${name} (column ${count})`;
        });
        if (duplicates.size > 0) {
          pending.push({error: `duplicate header column(s) ${[...duplicates].map((d) => `"${d}"`).join(', ')}: the first of each is used; remove the others`, line: 1});
        }
        return names;
      },
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      bom: true,
      info: true,
      skip_records_with_error: true,
      on_skip: (error: Error | undefined) => {
        if (error) pending.push({error: `CSV error: ${error.message}`, line: lineOf(error)});
      },
    }),
  );
  input.on('error', (error) => parser.destroy(error));
  let rows = 0;
  try {
    for await (const item of parser as AsyncIterable<{record: Record<string, unknown>; info: {lines: number}}>) {
      while (pending.length > 0) yield pending.shift()!;
      rows++;
      yield {row: item.record, line: item.info.lines};
    }
  } catch (error) {
    while (pending.length > 0) yield pending.shift()!;
    yield {error: `CSV error, reading stopped: ${(error as Error).message}`, line: lineOf(error)};
    return;
  }
  while (pending.length > 0) yield pending.shift()!;
  if (rows === 0) yield {error: 'no data rows (the file is empty or has only a header)'};
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
          const where = item.line === undefined ? manifestRel : `${manifestRel}:${item.line}`;
          options.onIssue?.({check: 'label-malformed', path: manifestRel, ...(item.line === undefined ? {} : {line: item.line}), message: `${where}: ${item.error}`});
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
            message: `${manifestRel}:${line}: label ${row.label === undefined || row.label === '' ? 'missing' : `${JSON.stringify(row.label)} is neither a non-negative integer nor a known class name`}`,
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

/**
 * Hugging Face parquet shards in the NATIX layout (one file or a folder of `*.parquet`): one row per image, the
 * image in the first column whose name contains "image" (a struct with `bytes`, or raw bytes), `label`, an optional
 * `split` (else taken from the shard name, `train-00000-of-00026.parquet`), every other column kept as metadata
 * (struct columns flattened to dotted keys too: `scene_level_tags.weather`, `video_info.vid_id`).
 * Rows are read one row group at a time from a file-backed buffer: a shard's images are never all in memory.
 */
import {stat} from 'node:fs/promises';
import path from 'node:path';
import fg from 'fast-glob';
import {asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema} from 'hyparquet';
import {compressors} from 'hyparquet-compressors';
import {namesByLabel, parseLabelValue} from './labels.js';
import {relativePosix} from './safe-path.js';
import type {Dataset, ReaderOptions, Sample} from './sample.js';
import {splitForFolder} from './folder.js';

/** JSON-friendly values: bigint -> number, byte arrays -> length note (metadata never carries image bytes). */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object' && !(value instanceof Date)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function flatten(prefix: string, value: unknown, out: Record<string, unknown>): void {
  if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v, out);
  } else {
    out[prefix] = plain(value);
  }
}

function decodeText(value: unknown): unknown {
  return value instanceof Uint8Array ? new TextDecoder().decode(value) : value;
}

/** The image bytes of a row, from a struct {bytes} or raw bytes. */
function imageBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (value && typeof value === 'object' && (value as {bytes?: unknown}).bytes instanceof Uint8Array) return (value as {bytes: Uint8Array}).bytes;
  return undefined;
}

export async function parquetFiles(input: string): Promise<{root: string; files: string[]}> {
  if ((await stat(input)).isFile()) return {root: path.dirname(input), files: [input]};
  const files = (await fg('**/*.parquet', {cwd: input, absolute: true, followSymbolicLinks: false, deep: 4})).sort();
  return {root: input, files};
}

export async function readParquetDataset(input: string, options: ReaderOptions = {}): Promise<Dataset> {
  const {root, files} = await parquetFiles(input);
  const seen = new Map<number, string>();
  return {
    format: 'parquet',
    root,
    get classNames() {
      return namesByLabel(seen);
    },
    async *samples(): AsyncIterable<Sample> {
      for (const file of files) {
        const rel = relativePosix(root, file);
        const shardSplit = splitForFolder(path.basename(file).split(/[-_.]/)[0] ?? '');
        let buffer;
        let metadata;
        try {
          buffer = await asyncBufferFromFile(file);
          metadata = await parquetMetadataAsync(buffer);
        } catch (error) {
          options.onIssue?.({check: 'unreadable', path: rel, message: `${rel}: not a readable parquet file (${(error as Error).message})`});
          continue;
        }
        const columns = parquetSchema(metadata).children.map((c) => c.element.name);
        const imageColumn = columns.find((c) => c.toLowerCase().includes('image'));
        if (!imageColumn) {
          options.onIssue?.({check: 'label-malformed', path: rel, message: `${rel}: no column whose name contains "image" (columns: ${columns.join(', ')})`});
          continue;
        }
        let rowStart = 0;
        for (const group of metadata.row_groups) {
          const rowEnd = rowStart + Number(group.num_rows);
          if (options.splits && shardSplit && !options.splits.includes(shardSplit) && !columns.includes('split')) {
            rowStart = rowEnd;
            continue;
          }
          const rows = (await parquetReadObjects({file: buffer, metadata, rowStart, rowEnd, compressors, utf8: false})) as Array<Record<string, unknown>>;
          for (let i = 0; i < rows.length; i++) {
            const row = rows[i]!;
            const index = rowStart + i;
            const id = `${rel}#${index}`;
            const rawSplit = decodeText(row.split);
            const split = typeof rawSplit === 'string' && rawSplit !== '' ? (splitForFolder(rawSplit) ?? rawSplit) : shardSplit;
            if (options.splits && (!split || !options.splits.includes(split))) continue;
            const labelValue = decodeText(row.label);
            const label = parseLabelValue(labelValue, options.classMap);
            if (label === undefined) {
              options.onIssue?.({check: labelValue === undefined || labelValue === null || labelValue === '' ? 'label-missing' : 'label-class-unknown', path: id, value: plain(labelValue), message: `${id}: label ${labelValue === undefined || labelValue === null ? 'missing' : `"${String(labelValue)}" unknown`}`});
            } else if (!seen.has(label)) seen.set(label, label === 1 ? 'Roadwork' : label === 0 ? 'None' : `class_${label}`);
            const meta: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(row)) {
              if (k === imageColumn || k === 'label' || k === 'split') continue;
              flatten(k, v instanceof Uint8Array ? decodeText(v) : v, meta);
            }
            const imageValue = row[imageColumn];
            if (imageValue && typeof imageValue === 'object' && 'path' in imageValue) meta[`${imageColumn}.path`] = decodeText((imageValue as {path?: unknown}).path);
            const bytes = imageBytes(imageValue);
            if (!bytes) {
              options.onIssue?.({check: 'unreadable', path: id, message: `${id}: no image bytes in column "${imageColumn}"`});
              continue;
            }
            yield {id: typeof meta.id === 'string' ? meta.id : id, path: id, bytes, label: label ?? null, split, metadata: meta};
          }
          rowStart = rowEnd;
        }
      }
    },
  };
}

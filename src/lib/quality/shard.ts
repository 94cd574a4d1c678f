/**
 * Shard files of `natix validate-data --shard i/n` and their merge. A shard file (JSON Lines) holds a header (the
 * dataset, the shard, every option that changes a verdict), the shard's per-image and reader findings, and one
 * fingerprint record per image (~1.5 KB of text: the pHash, the base64 grey signature, the pixel key, size, mean
 * brightness, split, label, video). `mergeShards` checks that the files are the n shards of one run, puts the
 * records back in reader order and runs the cross-image checks over all of them: the result is the one an unsharded
 * run gives (tested), except timings.
 */
import {createReadStream, createWriteStream} from 'node:fs';
import {once} from 'node:events';
import path from 'node:path';
import {createInterface} from 'node:readline';
import {ExitCode, NatixError} from '../errors.js';
import {FingerprintTable} from './fingerprints.js';
import type {PairSearchStats} from './hash-index.js';
import type {Shard} from './shard-key.js';
import {crossImageChecks, datasetStatistics, findingSink, sortFindings, type Finding, type ImageRecord, type ValidateOptions, type ValidationResult} from './validate.js';

/** 3: images carry `fr` (decided at full resolution) and the header the exact-brightness option. */
export const SHARD_FORMAT_VERSION = 3;

/** What every shard of one run must agree on (and what merge needs to run the cross-image checks). */
export interface ShardHeader {
  natixValidateShard: number;
  shard: Shard;
  dataset: {root: string; format: string; detectedBy: string};
  options: Pick<ValidateOptions, 'thresholds' | 'severities' | 'hamming' | 'expectedSplits' | 'exactBrightness'>;
  images: number;
  seconds: number;
}

interface RecordLine {
  o: number;
  p: string;
  s?: string;
  l: number | null;
  v?: string;
  src?: string;
  fp?: {w: number; h: number; b: number; ph: string; sig: string; px: string};
  /** ImageRecord.fullResolution */
  fr?: 1;
}

/** The default file name of shard i of n. */
export function shardFileName(shard: Shard): string {
  return `validate-shard-${shard.index}-of-${shard.count}.jsonl`;
}

async function writeLine(stream: NodeJS.WritableStream, value: unknown): Promise<void> {
  if (!stream.write(`${JSON.stringify(value)}\n`)) await once(stream, 'drain');
}

export async function writeShardFile(file: string, header: Omit<ShardHeader, 'natixValidateShard'>, result: ValidationResult): Promise<void> {
  const stream = createWriteStream(file);
  const closed = once(stream, 'close');
  await writeLine(stream, {natixValidateShard: SHARD_FORMAT_VERSION, ...header});
  for (const f of result.findings) await writeLine(stream, {f});
  for (const r of result.images) {
    const line: RecordLine = {o: r.ordinal, p: r.path, l: r.label};
    if (r.split !== undefined) line.s = r.split;
    if (r.video !== undefined) line.v = r.video;
    if (typeof r.source === 'string') line.src = r.source;
    if (r.fullResolution) line.fr = 1;
    const fp = r.fingerprint === undefined ? undefined : result.fingerprints.get(r.fingerprint);
    if (fp) line.fp = {w: fp.width, h: fp.height, b: fp.meanBrightness, ph: fp.phash.toString(16), sig: Buffer.from(fp.signature.buffer, fp.signature.byteOffset, fp.signature.byteLength).toString('base64'), px: fp.pixelKey};
    await writeLine(stream, {i: line});
  }
  stream.end();
  await closed;
}

export interface ShardContents {
  header: ShardHeader;
  findings: Finding[];
  images: ImageRecord[];
}

/** Reads a shard file; its fingerprints are appended to `fingerprints` (the images refer to their rows there). */
export async function readShardFile(file: string, fingerprints: FingerprintTable): Promise<ShardContents> {
  const lines = createInterface({input: createReadStream(file), crlfDelay: Infinity});
  let header: ShardHeader | undefined;
  const findings: Finding[] = [];
  const images: ImageRecord[] = [];
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      const value = JSON.parse(line) as {f?: Finding; i?: RecordLine} & Partial<ShardHeader>;
      if (!header) {
        if (value.natixValidateShard !== SHARD_FORMAT_VERSION) throw new Error(`not a natix validate-data shard file of this natix version (format ${SHARD_FORMAT_VERSION}): write the shards and merge them with one version`);
        header = value as ShardHeader;
      } else if (value.f) findings.push(value.f);
      else if (value.i) {
        const r = value.i;
        const record: ImageRecord = {ordinal: r.o, path: r.p, label: r.l};
        if (r.s !== undefined) record.split = r.s;
        if (r.v !== undefined) record.video = r.v;
        if (r.src !== undefined) record.source = r.src;
        if (r.fr) record.fullResolution = true;
        if (r.fp) record.fingerprint = fingerprints.add({width: r.fp.w, height: r.fp.h, meanBrightness: r.fp.b, phash: BigInt(`0x${r.fp.ph}`), signature: new Int8Array(Buffer.from(r.fp.sig, 'base64')), pixelKey: r.fp.px});
        images.push(record);
      }
    }
  } catch (error) {
    if (error instanceof NatixError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new NatixError(`${file}: line ${n}: ${reason}`, {code: 'SHARD_INVALID', exitCode: ExitCode.Usage, actions: ['pass the files written by `natix validate-data DATASET --shard i/n`']});
  }
  if (!header) throw new NatixError(`${file}: empty shard file`, {code: 'SHARD_INVALID', exitCode: ExitCode.Usage});
  return {header, findings, images};
}

export interface MergedRun {
  dataset: ShardHeader['dataset'];
  result: ValidationResult;
}

/** Runs the cross-image checks over the fingerprints of all n shards of one run. */
export async function mergeShards(files: string[], onSearch?: (done: number, total: number) => void): Promise<MergedRun> {
  const started = performance.now();
  const fingerprints = new FingerprintTable();
  const shards = await Promise.all(files.map((file) => readShardFile(file, fingerprints)));
  const first = shards[0]!.header;
  const usage = (message: string): NatixError => new NatixError(message, {code: 'SHARD_MISMATCH', exitCode: ExitCode.Usage, actions: ['merge the n files of ONE run: same dataset, same options, shards 1..n each once']});
  const seen = new Map<number, string>();
  shards.forEach(({header}, k) => {
    const name = path.basename(files[k]!);
    if (header.shard.count !== first.shard.count) throw usage(`${name} is shard ${header.shard.index}/${header.shard.count}, ${path.basename(files[0]!)} is one of ${first.shard.count}`);
    if (header.dataset.root !== first.dataset.root || header.dataset.format !== first.dataset.format) throw usage(`${name} checked ${header.dataset.root} (${header.dataset.format}), ${path.basename(files[0]!)} ${first.dataset.root} (${first.dataset.format})`);
    if (JSON.stringify(header.options) !== JSON.stringify(first.options)) throw usage(`${name} was run with other options (thresholds, severities, hamming, expected splits or --exact-brightness) than ${path.basename(files[0]!)}`);
    if (seen.has(header.shard.index)) throw usage(`shard ${header.shard.index}/${header.shard.count} given twice (${seen.get(header.shard.index)} and ${name})`);
    seen.set(header.shard.index, name);
  });
  const missing = Array.from({length: first.shard.count}, (_, k) => k + 1).filter((k) => !seen.has(k));
  if (missing.length) throw usage(`missing shard${missing.length > 1 ? 's' : ''} ${missing.map((k) => `${k}/${first.shard.count}`).join(', ')}`);

  const findings: Finding[] = shards.flatMap((s) => s.findings);
  const images = shards.flatMap((s) => s.images).sort((a, b) => a.ordinal - b.ordinal);
  const options = {...first.options, onSearch};
  const search: PairSearchStats = await crossImageChecks(images, fingerprints, options, findingSink(options, findings));
  return {
    dataset: first.dataset,
    result: {findings: sortFindings(findings), images, fingerprints, statistics: datasetStatistics(images, fingerprints, findings), search, seconds: (performance.now() - started) / 1000},
  };
}

/**
 * Crash-safe checkpoints: `<run>/epoch-NNNN/` holds the weights, the optimizer state and the trainer state, with a
 * `manifest.json` of SHA-256 per file. A checkpoint is written into a temporary folder, every file fsynced, then
 * renamed into place (and the run folder fsynced): a reader never sees a half-written checkpoint. `last.json` and
 * `best.json` point at checkpoints and are replaced atomically. Loading verifies every checksum first, then validates
 * `state.json` against its JSON Schema (src/lib/config/schemas/train-state.ts). A kill during a write leaves only
 * temporary names behind (`.epoch-N.tmp-*`, `.history.csv.*.tmp`): `cleanStaleTemporaries` removes them on resume.
 */
import {mkdir, readdir, rename, rm, stat} from 'node:fs/promises';
import path from 'node:path';
import {randomBytes} from 'node:crypto';
import {validateAgainstSchema} from '../config/load.js';
import {trainerStateSchema, type TrainerStateFile} from '../config/schemas/train-state.js';
import {ExitCode, NatixError} from '../errors.js';
import {fsyncDir, sha256, writeFileAtomic, writeFileSynced} from '../util/fs.js';
import {readUserFile} from '../util/user-files.js';

export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface TrainerState {
  /** Epochs completed. */
  epoch: number;
  /** Steps completed inside the epoch `epoch` (0 for a checkpoint at an epoch boundary). */
  stepInEpoch: number;
  /** Optimizer steps completed overall. */
  step: number;
  /** Randomness is derived from (seed, epoch, index); nothing else to restore. */
  rng: {seed: number; scheme: 'seed-epoch-index'};
  best: {metric: string; value: number | null; epoch: number | null};
  history: Array<Record<string, number>>;
  epochsPlanned: number;
  natixVersion: string;
  backend: string;
  stoppedEarly?: boolean;
  /** Running sums of the interrupted epoch `epoch` (mid-epoch checkpoints only). */
  partial?: {lossSum: number; accSum: number; counted: number; seconds: number};
}

/** Validates a parsed `state.json` (throws a NatixError naming the file) and restores NaN metrics stored as null. */
export function parseTrainerState(raw: unknown, label: string): TrainerState {
  const file = validateAgainstSchema<TrainerStateFile>(trainerStateSchema, raw, label);
  const history = file.history.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? v : Number.NaN])));
  return {...file, history} as TrainerState;
}

export interface Checkpoint {
  dir: string;
  weights: NamedArray[];
  optimizer: NamedArray[];
  state: TrainerState;
}

function packArrays(arrays: NamedArray[]): {index: string; bin: Uint8Array} {
  const total = arrays.reduce((n, a) => n + a.data.length, 0);
  const bin = new Float32Array(total);
  let offset = 0;
  const index = arrays.map((a) => {
    bin.set(a.data, offset);
    const entry = {name: a.name, shape: a.shape, offset, length: a.data.length};
    offset += a.data.length;
    return entry;
  });
  return {index: JSON.stringify(index), bin: new Uint8Array(bin.buffer)};
}

function unpackArrays(index: string, bin: Buffer): NamedArray[] {
  const floats = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  return (JSON.parse(index) as Array<{name: string; shape: number[]; offset: number; length: number}>).map((e) => {
    if (e.offset + e.length > floats.length) throw new Error(`weights file too short for ${e.name}`);
    return {name: e.name, shape: e.shape, data: floats.slice(e.offset, e.offset + e.length)};
  });
}

export function checkpointName(epoch: number, stepInEpoch: number): string {
  return stepInEpoch > 0 ? `epoch-${String(epoch).padStart(4, '0')}-step-${String(stepInEpoch).padStart(6, '0')}` : `epoch-${String(epoch).padStart(4, '0')}`;
}

/** Writes a checkpoint atomically; returns its folder. */
export async function writeCheckpoint(runDir: string, weights: NamedArray[], optimizer: NamedArray[], state: TrainerState): Promise<string> {
  const name = checkpointName(state.epoch, state.stepInEpoch);
  const final = path.join(runDir, name);
  const tmp = path.join(runDir, `.${name}.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, {recursive: true});
  const w = packArrays(weights);
  const o = packArrays(optimizer);
  const files: Record<string, string | Uint8Array> = {
    'weights.bin': w.bin,
    'weights.json': w.index,
    'optimizer.bin': o.bin,
    'optimizer.json': o.index,
    'state.json': JSON.stringify(state, null, 2),
  };
  const manifest: Record<string, string> = {};
  for (const [file, data] of Object.entries(files)) {
    await writeFileSynced(path.join(tmp, file), data);
    manifest[file] = sha256(data);
  }
  await writeFileSynced(path.join(tmp, 'manifest.json'), JSON.stringify({format: 'natix-checkpoint/1', files: manifest}, null, 2));
  await fsyncDir(tmp);
  await rm(final, {recursive: true, force: true});
  await rename(tmp, final);
  await fsyncDir(runDir);
  return final;
}

/** Reads a checkpoint after verifying every file against its manifest; throws on any mismatch. */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const manifest = JSON.parse(await readUserFile(path.join(dir, 'manifest.json'), 'utf8')) as {files: Record<string, string>};
  const contents: Record<string, Buffer> = {};
  for (const [file, hash] of Object.entries(manifest.files)) {
    // Regular files inside the checkpoint folder only: a FIFO would block the resume, `../x` would read outside.
    const relative = path.relative(dir, path.resolve(dir, file));
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) throw new Error(`${path.basename(dir)}/manifest.json lists "${file}", which is not inside the checkpoint folder`);
    const data = await readUserFile(path.join(dir, file));
    if (sha256(data) !== hash) throw new Error(`${path.basename(dir)}/${file}: checksum mismatch (corrupt or truncated)`);
    contents[file] = data;
  }
  for (const required of ['weights.bin', 'weights.json', 'optimizer.bin', 'optimizer.json', 'state.json']) {
    if (!contents[required]) throw new Error(`${path.basename(dir)}: manifest lacks ${required}`);
  }
  return {
    dir,
    weights: unpackArrays(contents['weights.json']!.toString('utf8'), contents['weights.bin']!),
    optimizer: unpackArrays(contents['optimizer.json']!.toString('utf8'), contents['optimizer.bin']!),
    state: parseTrainerState(JSON.parse(contents['state.json']!.toString('utf8')) as unknown, `${path.basename(dir)}/state.json`),
  };
}

/**
 * Removes what a kill in the middle of a write leaves in a run folder: checkpoint folders that were never renamed
 * into place (`.epoch-0003.tmp-1a2b3c4d`) and files of atomic writes (`.history.csv.0123456789ab.tmp`). Returns
 * their names. Only names natix itself generates are touched.
 */
export async function cleanStaleTemporaries(runDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return [];
  }
  const stale = names.filter((n) => /^\.epoch-\d{4}(-step-\d{6})?\.tmp-[0-9a-f]{8}$/.test(n) || /^\.[A-Za-z0-9._-]+\.[0-9a-f]{12}\.tmp$/.test(n));
  for (const n of stale) await rm(path.join(runDir, n), {recursive: true, force: true});
  return stale;
}

/** Checkpoint folders of a run, newest first (by epoch, then step). */
export async function listCheckpoints(runDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^epoch-\d{4}(-step-\d{6})?$/.test(n))
    .sort()
    .reverse()
    .map((n) => path.join(runDir, n));
}

/** The newest checkpoint whose checksums verify; corrupt newer ones are reported through `warn` and skipped. */
export async function latestValidCheckpoint(runDir: string, warn: (message: string) => void): Promise<Checkpoint | undefined> {
  for (const dir of await listCheckpoints(runDir)) {
    try {
      return await readCheckpoint(dir);
    } catch (error) {
      warn(`skipping checkpoint ${path.basename(dir)}: ${(error as Error).message}`);
    }
  }
  return undefined;
}

export async function writePointer(runDir: string, name: 'last' | 'best', checkpointDir: string, extra: Record<string, unknown> = {}): Promise<void> {
  await writeFileAtomic(path.join(runDir, `${name}.json`), `${JSON.stringify({checkpoint: path.basename(checkpointDir), ...extra}, null, 2)}\n`);
}

export async function readPointer(runDir: string, name: 'last' | 'best'): Promise<string | undefined> {
  try {
    const p = JSON.parse(await readUserFile(path.join(runDir, `${name}.json`), 'utf8')) as {checkpoint: string};
    return path.join(runDir, p.checkpoint);
  } catch {
    return undefined;
  }
}

/** Keeps the newest `keep` epoch checkpoints and never the one `best.json` points at; mid-epoch ones go once superseded. */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<string[]> {
  const best = await readPointer(runDir, 'best');
  const all = await listCheckpoints(runDir);
  const removed: string[] = [];
  let kept = 0;
  for (const dir of all) {
    const partial = /-step-/.test(dir);
    if (dir === best) continue;
    if (!partial && kept < keep) {
      kept++;
      continue;
    }
    if (partial && all.indexOf(dir) === 0) continue; // the newest may be an interrupted epoch: keep it
    await rm(dir, {recursive: true, force: true});
    removed.push(path.basename(dir));
  }
  return removed;
}

/** Resolves a checkpoint argument: a checkpoint folder, or a run folder (its best, else last). */
export async function resolveCheckpointDir(target: string): Promise<string> {
  const info = await stat(target).catch(() => undefined);
  if (!info?.isDirectory()) throw new NatixError(`Checkpoint not found: ${target}`, {code: 'CHECKPOINT_NOT_FOUND', exitCode: ExitCode.Usage});
  const names = await readdir(target);
  if (names.includes('manifest.json')) return target;
  const pointed = (await readPointer(target, 'best')) ?? (await readPointer(target, 'last'));
  if (pointed) return pointed;
  throw new NatixError(`${target} is neither a checkpoint (manifest.json) nor a run folder (best.json / last.json)`, {code: 'CHECKPOINT_NOT_FOUND', exitCode: ExitCode.Usage});
}

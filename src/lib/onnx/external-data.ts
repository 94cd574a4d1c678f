/**
 * The files an .onnx model makes onnxruntime open: the model itself and the external data files its tensors name
 * (`model.onnx_data`, written by torch.onnx / optimum for models over 2 GB). onnxruntime opens them by path, so a
 * FIFO among them would block `InferenceSession.create` forever: `assertOnnxModelFiles` checks every one of them is
 * a regular file (symlinks followed) before a session is created, and that no location leaves the model's folder.
 *
 * The locations are found by walking the protobuf without reading the weights: length-delimited fields that cannot
 * hold a tensor (raw_data, node names, docs...) are skipped by position, so a multi-GB model costs a few small reads.
 */
import {open} from 'node:fs/promises';
import path from 'node:path';
import {ExitCode, NatixError} from '../errors.js';
import {assertOpenableRegularFile, toUserFileError} from '../util/user-files.js';

/** Which fields of which message may lead to a TensorProto (ONNX field numbers). */
type Message = 'model' | 'graph' | 'node' | 'attribute' | 'sparse' | 'tensor' | 'entry';
const CHILDREN: Record<Exclude<Message, 'tensor' | 'entry'>, Record<number, Message>> = {
  model: {7: 'graph'},
  // node, initializer, sparse_initializer
  graph: {1: 'node', 5: 'tensor', 15: 'sparse'},
  node: {5: 'attribute'},
  // t, g, tensors, graphs, sparse_tensor, sparse_tensors
  attribute: {5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse'},
  // values, indices
  sparse: {1: 'tensor', 2: 'tensor'},
};
/** Deeper than any real model (subgraphs of If/Loop nest a few levels); a hostile file cannot recurse forever. */
const MAX_DEPTH = 64;

/** Buffered positional reads over a file handle. */
class Cursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  pos = 0;

  constructor(
    private readonly handle: Awaited<ReturnType<typeof open>>,
    readonly size: number,
  ) {}

  /** Makes at least `n` bytes from `pos` available (fewer at the end of the file). */
  private async ensure(n: number): Promise<void> {
    const offset = this.pos - this.bufferStart;
    if (offset >= 0 && offset + n <= this.buffer.length) return;
    const length = Math.min(Math.max(n, 16 * 1024), this.size - this.pos);
    const buffer = Buffer.alloc(Math.max(0, length));
    const {bytesRead} = length > 0 ? await this.handle.read(buffer, 0, length, this.pos) : {bytesRead: 0};
    this.buffer = buffer.subarray(0, bytesRead);
    this.bufferStart = this.pos;
  }

  async varint(): Promise<number> {
    await this.ensure(10);
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.buffer[this.pos - this.bufferStart];
      if (byte === undefined) throw new Error('truncated varint');
      this.pos++;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new Error('varint too long');
  }

  async bytes(n: number): Promise<Buffer> {
    await this.ensure(n);
    const start = this.pos - this.bufferStart;
    if (start + n > this.buffer.length) throw new Error('truncated field');
    this.pos += n;
    return this.buffer.subarray(start, start + n);
  }

  skip(n: number): void {
    this.pos += n;
  }
}

/** Skips one field of `wireType` (the tag already read). */
async function skipField(cursor: Cursor, wireType: number): Promise<void> {
  if (wireType === 0) await cursor.varint();
  else if (wireType === 1) cursor.skip(8);
  else if (wireType === 2) cursor.skip(await cursor.varint());
  else if (wireType === 5) cursor.skip(4);
  else throw new Error(`unsupported wire type ${wireType}`);
}

/** Walks a message of kind `kind` up to `end`, collecting external data locations. */
async function walk(cursor: Cursor, kind: Message, end: number, depth: number, out: Set<string>): Promise<void> {
  if (depth > MAX_DEPTH) throw new Error('messages nested too deeply');
  let key: string | undefined;
  let value: string | undefined;
  while (cursor.pos < end) {
    const tag = await cursor.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (wireType === 2 && kind === 'entry' && (field === 1 || field === 2)) {
      const text = (await cursor.bytes(await cursor.varint())).toString('utf8');
      if (field === 1) key = text;
      else value = text;
      continue;
    }
    const child = kind === 'tensor' ? (field === 13 ? 'entry' : undefined) : kind === 'entry' ? undefined : CHILDREN[kind][field];
    if (wireType === 2 && child) {
      const length = await cursor.varint();
      const childEnd = cursor.pos + length;
      if (childEnd > end) throw new Error('field runs past its message');
      if (child === 'entry') {
        const entry = new Set<string>();
        await walk(cursor, 'entry', childEnd, depth + 1, entry);
        for (const location of entry) out.add(location);
      } else await walk(cursor, child, childEnd, depth + 1, out);
      cursor.pos = childEnd;
      continue;
    }
    await skipField(cursor, wireType);
  }
  if (cursor.pos > end) throw new Error('field runs past its message');
  if (kind === 'entry' && key === 'location' && value !== undefined) out.add(value);
}

/** The external data locations named in an .onnx file, as written (relative to the model's folder). */
export async function onnxExternalDataLocations(onnxFile: string): Promise<string[]> {
  const handle = await open(onnxFile, 'r');
  try {
    const cursor = new Cursor(handle, (await handle.stat()).size);
    const out = new Set<string>();
    await walk(cursor, 'model', cursor.size, 0, out);
    return [...out];
  } finally {
    await handle.close();
  }
}

/**
 * Checks, before onnxruntime opens anything, that `onnxFile` and every external data file it names are regular
 * files (a FIFO, a directory or a symlink to either is refused, naming the file: exit 2) and that no external data
 * location is absolute or leaves the model's folder. A file that is not valid protobuf is left to onnxruntime,
 * which says so itself.
 */
export async function assertOnnxModelFiles(onnxFile: string): Promise<void> {
  await assertOpenableRegularFile(onnxFile);
  let locations: string[];
  try {
    locations = await onnxExternalDataLocations(onnxFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code) throw toUserFileError(onnxFile, error);
    return; // not parseable as ONNX: onnxruntime reports it
  }
  const folder = path.dirname(path.resolve(onnxFile));
  for (const location of locations) {
    const normalised = location.replaceAll('\\', '/');
    const target = path.resolve(folder, normalised);
    const relative = path.relative(folder, target);
    if (location.includes('\0') || path.isAbsolute(normalised) || /^[a-zA-Z]:\//.test(normalised) || relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new NatixError(`${onnxFile} names the external data file "${location}", which is not inside the model's folder ${folder}`, {
        code: 'MODEL_INVALID',
        exitCode: ExitCode.Usage,
        actions: ["Keep a model's external data files next to it (torch.onnx / optimum write model.onnx_data beside model.onnx)."],
      });
    }
    await assertOpenableRegularFile(target);
  }
}

/**
 * Decoder errors belong to the file that failed (issue 10). libvips keeps one error buffer per process; under
 * concurrency a failing JPEG used to carry a garbled AVIF's "bad seek" lines (another file's path in its finding).
 * Reproduced with garbled AVIFs (which log warnings while decoding) decoded next to broken JPEGs and PNGs.
 * Also: permission errors and empty files say what they are.
 */
import {chmod, mkdir, mkdtemp, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {beforeAll, describe, expect, it} from 'vitest';
import {decodeImage} from '../../src/lib/image/decode.js';
import {CAN_OBSERVE_EACCES} from '../helpers/corrupt.js';

let dir: string;
const files: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'natix-decode-errors-'));
  const create = {width: 300, height: 200, channels: 3 as const, background: {r: 200, g: 10, b: 10}};
  const jpeg = await sharp({create}).jpeg().toBuffer();
  const png = await sharp({create}).png().toBuffer();
  const avif = await sharp({create}).avif().toBuffer();
  await mkdir(dir, {recursive: true});
  for (let i = 0; i < 36; i++) {
    const kind = i % 3;
    const name = path.join(dir, `bad${i}.${['jpg', 'png', 'avif'][kind]}`);
    let bytes: Buffer;
    if (kind === 0) bytes = jpeg.subarray(0, jpeg.length / 2);
    else if (kind === 1) {
      bytes = Buffer.from(png);
      for (let k = 100; k < 200; k++) bytes[k]! ^= 0x55;
    } else {
      bytes = Buffer.from(avif);
      for (let k = 300; k < Math.min(avif.length, 800); k++) bytes[k]! ^= 0x5a;
    }
    await writeFile(name, bytes);
    files.push(name);
  }
  for (let i = 0; i < 36; i++) {
    const name = path.join(dir, `good${i}.jpg`);
    await writeFile(name, jpeg);
    files.push(name);
  }
});

describe('decoder errors', () => {
  it('under concurrency, no error message names another file', async () => {
    const foreign: string[] = [];
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        files.map(async (file) => {
          try {
            await decodeImage(file, {maxSide: 64});
          } catch (error) {
            const message = (error as Error).message;
            const others = files.filter((o) => o !== file && message.includes(path.basename(o)));
            if (others.length > 0) foreign.push(`${path.basename(file)}: ${message.split('\n')[0]}`);
          }
        }),
      );
    }
    expect(foreign).toEqual([]);
  }, 60_000);

  it('an empty file is said to be empty', async () => {
    const empty = path.join(dir, 'empty.jpg');
    await writeFile(empty, '');
    await expect(decodeImage(empty)).rejects.toThrow(/empty file \(0 bytes\)/);
  });

  it.runIf(CAN_OBSERVE_EACCES)('a chmod 000 file is a permission error, not an unsupported format', async () => {
    const locked = path.join(dir, 'locked.jpg');
    await writeFile(locked, await sharp({create: {width: 8, height: 8, channels: 3, background: '#888'}}).jpeg().toBuffer());
    await chmod(locked, 0o000);
    await expect(decodeImage(locked)).rejects.toThrow(/permission denied/);
  });
});

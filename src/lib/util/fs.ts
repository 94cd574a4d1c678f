/**
 * File helpers with crash-safety guarantees: atomic writes (temp file, fsync, rename, fsync of the folder) and
 * SHA-256. A reader never sees a half-written file.
 */
import {createHash, randomBytes} from 'node:crypto';
import {mkdir, open, rename, rm} from 'node:fs/promises';
import path from 'node:path';

/** fsyncs a folder so a rename inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `file` and fsyncs it before returning (no rename: see writeFileAtomic). */
export async function writeFileSynced(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `file` atomically: readers see the old content or the new, never a mix. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, {recursive: true});
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFileSynced(tmp, data);
  try {
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, {force: true});
    throw error;
  }
  await fsyncDir(dir);
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

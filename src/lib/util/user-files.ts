/**
 * Opening files a user named (dataset images, manifests, label files, config files, models and their weight files,
 * checkpoints) without ever hanging or crashing: only regular files are opened (a FIFO named `x.jpg` or
 * `model.onnx` would block `open()` forever, in natix or in a native library such as onnxruntime or libvips), and
 * every file-system error is described as what it is (permission denied, symlink loop, a directory...) rather than
 * surfacing as a raw errno or an "unsupported image format". Symlinks are followed and their target is checked;
 * the message names the target when it is the target that is wrong.
 */
import {constants, type ReadStream, type Stats} from 'node:fs';
import {lstat, open, realpath, stat} from 'node:fs/promises';
import {ExitCode, NatixError} from '../errors.js';

/** Why a user file could not be read; the check ids and messages derive from it. */
export type UnreadableReason = 'missing' | 'empty' | 'permission' | 'loop' | 'directory' | 'fifo' | 'socket' | 'device' | 'not-a-file' | 'name-too-long' | 'io';

/** A user-named file that cannot be read, with the reason in words. Exit 2 when it reaches a command. */
export class UserFileError extends NatixError {
  constructor(
    readonly file: string,
    readonly reason: UnreadableReason,
    readonly what: string,
    cause?: unknown,
  ) {
    super(`${file} ${what}`, {code: 'FILE_UNREADABLE', exitCode: ExitCode.Usage, cause, data: {reason}});
    this.name = 'UserFileError';
  }
}

/** What kind of non-regular file `info` is, in words; undefined for a regular file. */
export function nonRegularKind(info: Stats): {reason: UnreadableReason; what: string} | undefined {
  if (info.isFile()) return undefined;
  if (info.isDirectory()) return {reason: 'directory', what: 'is a directory, not a file'};
  if (info.isFIFO()) return {reason: 'fifo', what: 'is a FIFO (named pipe), not a regular file; it was not opened'};
  if (info.isSocket()) return {reason: 'socket', what: 'is a socket, not a regular file; it was not opened'};
  if (info.isCharacterDevice() || info.isBlockDevice()) return {reason: 'device', what: 'is a device, not a regular file; it was not opened'};
  return {reason: 'not-a-file', what: 'is not a regular file; it was not opened'};
}

/** A file-system error in words: "permission denied", "symlink loop", ... */
export function describeFsError(error: unknown): {reason: UnreadableReason; what: string} {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return {reason: 'missing', what: 'does not exist'};
    case 'ENOTDIR':
      return {reason: 'missing', what: 'does not exist (a parent is not a folder)'};
    case 'EACCES':
    case 'EPERM':
      return {reason: 'permission', what: 'cannot be read: permission denied'};
    case 'ELOOP':
      return {reason: 'loop', what: 'is a symlink loop (too many levels of symbolic links)'};
    case 'EISDIR':
      return {reason: 'directory', what: 'is a directory, not a file'};
    case 'ENAMETOOLONG':
      return {reason: 'name-too-long', what: 'has a name that is too long'};
    default:
      return {reason: 'io', what: `cannot be read (${code ?? (error instanceof Error ? error.message : String(error))})`};
  }
}

/** A UserFileError for `file` from any error (UserFileErrors pass through). */
export function toUserFileError(file: string, error: unknown): UserFileError {
  if (error instanceof UserFileError) return error;
  const {reason, what} = describeFsError(error);
  return new UserFileError(file, reason, what, error);
}

/** UserFileError for a non-regular `file`; through a symlink, the message names the target too. */
async function nonRegularError(file: string, kind: {reason: UnreadableReason; what: string}): Promise<UserFileError> {
  const target = (await lstat(file).catch(() => undefined))?.isSymbolicLink() ? await realpath(file).catch(() => undefined) : undefined;
  return new UserFileError(file, kind.reason, target ? `(a symlink to ${target}) ${kind.what}` : kind.what);
}

/**
 * Throws UserFileError unless `file` (symlinks followed) is a regular file. For consumers that open the path
 * themselves (libvips); readers of text use readUserFile, which checks the opened descriptor instead.
 */
export async function assertRegularFile(file: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await stat(file);
  } catch (error) {
    throw toUserFileError(file, error);
  }
  const kind = nonRegularKind(info);
  if (kind) throw await nonRegularError(file, kind);
  return info;
}

/**
 * Throws UserFileError unless `file` can be opened for reading and is a regular file: it is opened with O_NONBLOCK
 * (a FIFO open returns at once), its descriptor fstat-ed, and closed. For paths handed to a native library that
 * opens them itself and would block on a FIFO (onnxruntime's InferenceSession.create(path), libvips). Symlinks are
 * followed to their real target, which is what is checked.
 */
export async function assertOpenableRegularFile(file: string): Promise<Stats> {
  const handle = await openRegular(file);
  try {
    return await handle.stat();
  } finally {
    await handle.close();
  }
}

/**
 * Opens `file` for reading without blocking (O_NONBLOCK: opening a FIFO returns at once), checks the opened
 * descriptor is a regular file, and returns it. The caller closes it.
 */
async function openRegular(file: string): Promise<Awaited<ReturnType<typeof open>>> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw toUserFileError(file, error);
  }
  try {
    const kind = nonRegularKind(await handle.stat());
    if (kind) throw await nonRegularError(file, kind);
    return handle;
  } catch (error) {
    await handle.close();
    throw toUserFileError(file, error);
  }
}

/** Reads a user-named regular file whole; UserFileError for anything else. */
export async function readUserFile(file: string): Promise<Buffer>;
export async function readUserFile(file: string, encoding: 'utf8'): Promise<string>;
export async function readUserFile(file: string, encoding?: 'utf8'): Promise<Buffer | string> {
  const handle = await openRegular(file);
  try {
    const data = await handle.readFile();
    return encoding ? data.toString(encoding) : data;
  } catch (error) {
    throw toUserFileError(file, error);
  } finally {
    await handle.close();
  }
}

/** A read stream over a user-named regular file (checked before streaming); UserFileError for anything else. */
export async function openUserFileStream(file: string): Promise<ReadStream> {
  const handle = await openRegular(file);
  return handle.createReadStream({autoClose: true});
}

/** Why `file` cannot be opened for reading right now (permission denied...), or undefined when it can. */
export async function probeReadable(file: string): Promise<UserFileError | undefined> {
  try {
    const handle = await openRegular(file);
    await handle.close();
    return undefined;
  } catch (error) {
    return toUserFileError(file, error);
  }
}

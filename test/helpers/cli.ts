/** Spawns the real `bin/run.js` (built dist/) and captures its output, for end-to-end tests. */
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it is JSON, else undefined. */
  json?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  input?: string;
  /** Run as this user (needs root): e.g. to observe permission errors, which root never gets. */
  uid?: number;
  gid?: number;
}

export function runNatix(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: {...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...options.env},
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.uid === undefined ? {} : {uid: options.uid, gid: options.gid ?? options.uid}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({code, signal, stdout, stderr, json});
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Options that run natix as an unprivileged user when the tests run as root (root reads chmod 000 files, so
 * permission errors can only be observed as another user). `home` must be readable by that user.
 */
export function unprivileged(home: string): Pick<RunOptions, 'uid' | 'gid' | 'env'> {
  if (process.getuid?.() !== 0) return {};
  return {uid: 65534, gid: 65534, env: {HOME: home}};
}

/** A natix run in the background, for tests that signal it (SIGINT, SIGKILL) while it works. */
export function spawnNatix(args: string[]): {kill: (s: NodeJS.Signals) => void; done: Promise<{code: number | null; signal: NodeJS.Signals | null; stderr: string}>} {
  const child = spawn(process.execPath, [BIN, ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}});
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  return {kill: (s) => child.kill(s), done: new Promise((resolve) => child.on('close', (code, signal) => resolve({code, signal, stderr})))};
}

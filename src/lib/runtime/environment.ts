/**
 * What this machine offers natix: versions, cores, and which optional engines are installed. Nothing here loads
 * a model or touches the network; optional packages are only resolved, not imported.
 */
import {createRequire} from 'node:module';
import os from 'node:os';
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The natix package root (where package.json, datasets/ and checkpoints/ live). */
export function packageRoot(): string {
  // dist/lib/runtime/environment.js or src/lib/runtime/environment.ts -> three levels up.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function natixVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {version: string};
  return pkg.version;
}

/** The installed version of an npm package, or null when it is not installed. */
export function installedVersion(name: string): string | null {
  try {
    const entry = require.resolve(name);
    let dir = path.dirname(entry);
    for (let i = 0; i < 6; i++) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {name?: string; version?: string};
        if (pkg.name === name) return pkg.version ?? null;
      } catch {
        // keep walking up
      }
      dir = path.dirname(dir);
    }
    return 'unknown';
  } catch {
    return null;
  }
}

export interface EnvironmentReport {
  natix: string;
  node: string;
  platform: string;
  cpus: number;
  memoryGiB: number;
  packages: Record<string, string | null>;
}

export const OPTIONAL_ENGINES = ['onnxruntime-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm'] as const;

export function describeEnvironment(): EnvironmentReport {
  const packages: Record<string, string | null> = {sharp: installedVersion('sharp')};
  for (const name of OPTIONAL_ENGINES) packages[name] = installedVersion(name);
  return {
    natix: natixVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    packages,
  };
}

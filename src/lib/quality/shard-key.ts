/**
 * Which shard of `natix validate-data --shard i/n` a sample belongs to: a stable hash of its id (the path relative
 * to the root, or `<file>#<row>`), so every machine, run and reader order puts a sample in the same shard, and the
 * shards of one dataset split it without overlap or gaps.
 */
import {hashString} from '../util/random.js';

export interface Shard {
  /** 1-based, as in `--shard 2/4` (Kubernetes' 0-based JOB_COMPLETION_INDEX + 1). */
  index: number;
  count: number;
}

/** Parses "i/n" (1 <= i <= n); returns an error message for anything else. */
export function parseShard(text: string): Shard | string {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) return `--shard takes i/n, e.g. 2/4 (got "${text}")`;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) return `--shard ${text}: i must be between 1 and n (shards are numbered 1..n)`;
  return {index, count};
}

/** 0-based shard of an id among `count` shards: FNV-1a with a murmur3 finaliser (so similar ids spread evenly). */
export function shardOf(id: string, count: number): number {
  let h = hashString(id);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h % count;
}

export function inShard(id: string, shard: Shard): boolean {
  return shardOf(id, shard.count) === shard.index - 1;
}

/**
 * Bounds and parsers shared by every numeric flag, so that no value can make a command run forever or allocate
 * without limit (`--warmup 99999999999999999999` used to). Parsers throw plain Errors; the base command names the
 * flag (command line) or the file and key (config file) in front of the message.
 */
import {Errors, Flags} from '@oclif/core';

/** Upper bounds of the numeric flags, by kind. Generous for real use, finite for everything. */
export const LIMITS = {
  /** Threads per session, decodes or queries in flight. */
  concurrency: 1024,
  /** Queries, images, challenges. */
  count: 10_000_000,
  /** Any duration given on the command line (warm-up, minimum duration): one day. */
  durationMs: 86_400_000,
  /** Warm-up queries. */
  warmupQueries: 1_000_000,
  /** Seeds: unsigned 32-bit. */
  seed: 0xffff_ffff,
  /** Latency targets and per-model timeouts, ms: one hour. */
  timeoutMs: 3_600_000,
  /** `--tracking-timeout`, seconds: how long a tracking server may hold up the start or the end of a run. */
  trackingTimeoutS: {min: 0.05, max: 600},
} as const;

/** `500ms`, `10s`, `2m` or a bare number of ms, at most LIMITS.durationMs. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,12}(?:\.\d{1,6})?)\s*(ms|s|m)?$/.exec(String(text).trim());
  if (!m) throw new Error(`expects a duration like 500ms, 10s or 2m, got "${text}"`);
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1);
  if (!(ms <= LIMITS.durationMs)) throw new Error(`expects a duration of at most ${LIMITS.durationMs / 3_600_000} h, got "${text}"`);
  return ms;
}

/** A warm-up: a query count (`5`) or a duration (`200ms`), both bounded. */
export function parseWarmup(text: string): {queries: number; ms: number} {
  const trimmed = String(text).trim();
  if (/^\d+$/.test(trimmed)) {
    const queries = Number(trimmed);
    if (trimmed.length > 9 || queries > LIMITS.warmupQueries) throw new Error(`expects at most ${LIMITS.warmupQueries} warm-up queries (or a duration like 200ms), got "${text}"`);
    return {queries, ms: 0};
  }
  return {queries: 1, ms: parseDuration(trimmed)};
}

/** A number in [min, max] (a decimal, no hex, no Infinity). */
export function parseNumberIn(text: string, min: number, max: number): number {
  const trimmed = String(text).trim();
  const value = Number(trimmed);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) || !Number.isFinite(value) || value < min || value > max) {
    throw new Error(`expects a number in [${min}, ${max}], got "${text}"`);
  }
  return value;
}

/** A flag parser whose errors oclif reports as usage errors (exit 2) naming the flag. */
export function flagParser<T>(parse: (input: string) => T): (input: string) => Promise<T> {
  return async (input: string) => {
    try {
      return parse(input);
    } catch (error) {
      throw new Errors.CLIError(error instanceof Error ? error.message : String(error));
    }
  };
}

/** A probability threshold in [0, 1]. */
export const thresholdFlag = (description: string) => Flags.custom<number>({description, parse: flagParser((input) => parseNumberIn(input, 0, 1))})();

/** A duration flag (`500ms`, `10s`, `2m`), parsed to ms. */
export const durationFlag = (description: string, defaultMs: number, defaultHelp: string) =>
  Flags.custom<number>({description, default: defaultMs, defaultHelp: async () => defaultHelp, parse: flagParser(parseDuration)})();

/**
 * `--tracking-timeout <seconds>` (or NATIX_TRACKING_TIMEOUT), parsed to ms: how long run creation, and separately the
 * final flush, may wait on an MLflow server in all before natix goes on with the local spool (default 1 s).
 */
export const trackingTimeoutFlag = () =>
  Flags.custom<number>({
    description: `Seconds run creation, and the final flush, may each wait on an http(s) MLflow server in all (every try together) before natix goes on with the local spool (replay: natix tracking sync); ${LIMITS.trackingTimeoutS.min} to ${LIMITS.trackingTimeoutS.max}.`,
    env: 'NATIX_TRACKING_TIMEOUT',
    defaultHelp: async () => '1',
    helpGroup: 'TRACKING',
    parse: flagParser((input) => Math.round(parseNumberIn(input, LIMITS.trackingTimeoutS.min, LIMITS.trackingTimeoutS.max) * 1000)),
  })();

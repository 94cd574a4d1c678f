/**
 * Class name -> integer label. The rule (documented in the README):
 *   roadwork | 1 | positive | yes            -> 1
 *   none | no_roadwork | 0 | negative | no | background | not_roadwork -> 0
 *   street_signs                             -> 2 (the subnet's next task type)
 * Matching ignores case, spaces and dashes. A `classMap` override wins over the rule. Anything else is unknown.
 */

const DEFAULT_RULE: Record<string, number> = {
  roadwork: 1,
  '1': 1,
  positive: 1,
  yes: 1,
  none: 0,
  noroadwork: 0,
  notroadwork: 0,
  '0': 0,
  negative: 0,
  no: 0,
  background: 0,
  streetsigns: 2,
  '2': 2,
};

function canonical(name: string): string {
  return name.trim().toLowerCase().replace(/[\s_-]+/g, '');
}

/** The label of a class name, or undefined when neither the override nor the rule knows it. */
export function labelForClassName(name: string, classMap?: Record<string, number>): number | undefined {
  if (classMap) {
    if (Object.hasOwn(classMap, name)) return classMap[name];
  }
  // A signed or decimal number is never a class name: canonical() would turn "-1" into "1".
  if (/^\s*[+-]?\d*[.+-]\d/.test(name) || /^\s*[+-]\d/.test(name)) return undefined;
  if (classMap) {
    const c = canonical(name);
    for (const [key, value] of Object.entries(classMap)) if (canonical(key) === c) return value;
  }
  const c = canonical(name);
  return Object.hasOwn(DEFAULT_RULE, c) ? DEFAULT_RULE[c] : undefined;
}

/** Labels are small non-negative integers; anything beyond this is a typo or garbage, never a class. */
export const MAX_LABEL = 1_000_000;

/**
 * Parses a label cell (manifest, parquet) strictly: a non-negative integer (up to MAX_LABEL) as it is, a class
 * name through the rule; anything else - `-1`, `1.5`, `1e21`, `0x1`, `999999999999999999999` - is undefined (the
 * reader reports it), never a label that merely looks close.
 */
export function parseLabelValue(value: unknown, classMap?: Record<string, number>): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 && value <= MAX_LABEL ? value : undefined;
  if (typeof value === 'bigint') return value >= 0n && value <= BigInt(MAX_LABEL) ? Number(value) : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return text.length <= 7 && Number(text) <= MAX_LABEL ? Number(text) : undefined;
  // Number-like text that is not a plain integer is never a class name ("-1" would otherwise canonicalise to "1").
  if (/^[+-]?[\d.]/.test(text) || /^[+-]?(0x|infinity|nan)/i.test(text)) return undefined;
  return labelForClassName(text, classMap);
}

/** `a=1,b=0` -> {a: 1, b: 0}, for the `--class-map` flag. */
export function parseClassMapFlag(text: string): Record<string, number> {
  const map: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if (!k || v === undefined || !/^\d+$/.test(v.trim())) throw new Error(`bad --class-map entry "${part}" (expected name=integer)`);
    map[k.trim()] = Number(v.trim());
  }
  return map;
}

/** Class names by label index from the (label -> name) pairs a reader has seen. */
export function namesByLabel(seen: Map<number, string>): string[] {
  return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
}

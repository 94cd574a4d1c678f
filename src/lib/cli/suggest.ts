/** "Did you mean ...?" for mistyped commands and flags: the closest known names by edit distance. */

/** Optimal-string-alignment distance (Levenshtein plus swapping two neighbours: `bnech` -> `bench` is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({length: a.length + 1}, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known names closest to `input` (at most 3), within a distance that grows with the length of the name, or
 * names that start with it (`--min-m` -> `--min-mcc`).
 */
export function suggest(input: string, known: Iterable<string>): string[] {
  const limit = Math.max(1, Math.min(3, Math.floor(input.length / 3)));
  const scored = [...new Set(known)]
    .map((name) => ({name, distance: name.startsWith(input) && input.length >= 3 ? 0.5 : editDistance(input, name)}))
    .filter((s) => s.distance <= limit)
    .sort((x, y) => x.distance - y.distance || x.name.localeCompare(y.name));
  return scored.slice(0, 3).map((s) => s.name);
}

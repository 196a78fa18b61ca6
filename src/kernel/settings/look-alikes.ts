type Env = Record<string, string | undefined>;

/**
 * Variables that look like one of the settings but are not (CORS_ORIGIN, DATABSE_URL): without a warning the
 * service would run on the default and nobody would know why.
 */
export function settingLookAlikes(env: Env, names: readonly string[]): string[] {
  const known = new Set<string>(names);
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (known.has(name) || env[name] === undefined) continue;
    const near = names.find((setting) => editDistance(name.toUpperCase(), setting) <= (setting.length <= 6 ? 1 : 2));
    if (near) warnings.push(`${name} is set but is not a setting of this service: did you mean ${near}? (ignored)`);
  }
  return warnings;
}

/** Damerau-Levenshtein (optimal string alignment): a swapped pair of letters is one typo, not two. */
export function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

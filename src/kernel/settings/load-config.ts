import { annotateLookAlikes, findLookAlikes, lookAlikeProblem } from './look-alikes.js';
import { InvalidSetting } from './setting-kinds.js';
import type { CheckedSettings, ConfigOf, SettingRow, SettingsTable, SettingValuesOf } from './settings-table.js';

/**
 * Reading the settings of a list of tables (src/settings.ts) from the environment. Everything comes from
 * environment variables (src/startup.ts loads `.env` into them first); the functions here take them as an
 * argument, so tests can build any configuration without touching process.env.
 */

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** The rows of every table, in the order of the tables; a name in two tables is a mistake in the code. */
export function rowsOf(tables: readonly SettingsTable[]): SettingRow[] {
  const rows = tables.flatMap((table) => table.rows);
  const seen = new Set<string>();
  for (const { name } of rows) {
    if (seen.has(name)) throw new Error(`The setting ${name} is in two settings tables`);
    seen.add(name);
  }
  return rows;
}

export interface ParsedSettings extends CheckedSettings<Record<string, unknown>> {
  /** Each refused value, in the order of the rows. */
  problems: string[];
}

/** Every setting parsed on its own (no rule that spans several): a refused value stands at its default. */
export function parseSettings(rows: readonly SettingRow[], env: Env): ParsedSettings {
  const byName = new Map(rows.map((row) => [row.name, row]));
  const problems: string[] = [];
  const given = new Set<string>();
  const refused = new Set<string>();
  const resolved = new Map<string, unknown>();
  const resolving: string[] = [];
  // What computed defaults read: each setting is resolved when first asked for.
  const view = Object.defineProperties(
    {},
    Object.fromEntries(rows.map(({ name }) => [name, { get: () => resolve(name), enumerable: true }])),
  );

  function resolve(name: string): unknown {
    if (resolved.has(name)) return resolved.get(name);
    if (resolving.includes(name)) throw new Error(`The defaults of ${[...resolving, name].join(' → ')} depend on each other`);
    resolving.push(name);
    const row = byName.get(name)!;
    // A copy, so that no configuration shares (and could change) the table's own objects.
    const fallback = (): unknown => (typeof row.default === 'function' ? (row.default as (settings: object) => unknown)(view) : structuredClone(row.default));
    // An empty value (`KEY=` in .env) means "not set", as it does for most tools.
    const text = env[name]?.trim() || undefined;
    let value: unknown;
    try {
      if (text === undefined) {
        value = fallback();
      } else {
        given.add(name);
        value = row.kind.parse(text, name);
      }
    } catch (error) {
      if (!(error instanceof InvalidSetting)) throw error;
      problems.push(...error.problems);
      if (text !== undefined) refused.add(name);
      value = text === undefined ? undefined : defaultOrUndefined(fallback, problems);
    }
    resolving.pop();
    resolved.set(name, value);
    return value;
  }

  for (const { name } of rows) resolve(name);
  return { values: Object.fromEntries(rows.map(({ name }) => [name, resolved.get(name)])), problems, given, refused };
}

function defaultOrUndefined(fallback: () => unknown, problems: string[]): unknown {
  try {
    return fallback();
  } catch (error) {
    if (!(error instanceof InvalidSetting)) throw error;
    problems.push(...error.problems);
    return undefined;
  }
}

/**
 * The configuration the tables build from `env`, and the value of every setting; throws a ConfigError naming
 * every problem at once. A variable that resembles a setting (DATABSE_URL) is named in the refusal, beside the
 * setting it resembles when a problem names that one; production refuses it even when nothing else is wrong.
 */
export function loadSettings<const Tables extends readonly SettingsTable[]>(
  tables: Tables,
  env: Env,
): { config: ConfigOf<Tables>; values: SettingValuesOf<Tables> } {
  const rows = rowsOf(tables);
  const parsed = parseSettings(rows, env);
  const found = [...parsed.problems, ...tables.flatMap((table) => table.validate(parsed))];
  const lookAlikes = annotateLookAlikes(found, findLookAlikes(env, rows.map((row) => row.name)));
  const production = parsed.values['NODE_ENV'] === 'production';
  const problems = [...lookAlikes.problems, ...(production || found.length > 0 ? lookAlikes.unmentioned.map(lookAlikeProblem) : [])];
  if (problems.length > 0) throw new ConfigError(problems);

  const config: Record<string, unknown> = {};
  for (const table of tables) {
    const slice = table.config(parsed.values) as Record<string, unknown>;
    for (const key of Object.keys(slice)) {
      if (Object.hasOwn(config, key)) throw new Error(`Two settings tables build the configuration's ${key}`);
    }
    Object.assign(config, slice);
  }
  return { config: config as ConfigOf<Tables>, values: parsed.values as SettingValuesOf<Tables> };
}

/**
 * Every setting's value in effect, as its kind writes it, for one log line at start: a secret shows only
 * whether it is set, or what its row allows (a URL without its password).
 */
export function describeSettings(rows: readonly SettingRow[], values: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(
    rows.map(({ name, kind, secret }) => {
      const value = values[name];
      if (value === undefined) return [name, '(unset)'];
      if (secret === true) return [name, '(set)'];
      return [name, secret ? secret(value) : kind.format(value)];
    }),
  );
}

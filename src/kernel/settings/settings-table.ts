import type { SettingType } from './setting-kinds.js';

/**
 * A table of settings, built row by row: each row is the one place its setting is named, with how its text is
 * read (its kind), its default, its documentation, and whether it is secret. The type of its value comes from its
 * kind, so nothing else lists the settings: the values a table parses, and the slice of the configuration it
 * builds from them, are typed by the rows.
 *
 *   export const AUDIT_SETTINGS = settingsTable<ServiceValues>()
 *     .add('AUDIT_RETENTION_DAYS', { kind: integer(1, 3650), default: 90, description: '…', group: 'Audit trail' })
 *     .config((s) => ({ audit: { retentionDays: s.AUDIT_RETENTION_DAYS } }));
 *
 * `ServiceValues` names the settings of other tables that this one's defaults and checks may read; a row may
 * also read the rows above it in its own table. src/settings.ts lists every table.
 */

/** Worth setting in production: .env.production.example lists the setting first, with this example and why. */
export interface ProductionExample {
  example: string;
  why: string;
}

interface RowBase<T> {
  kind: SettingType<T>;
  /** The README's description (Markdown). */
  description: string;
  /** Its heading in .env.production.example; SETTING_GROUPS in src/settings.ts orders the headings. */
  group: string;
  production?: ProductionExample;
  /**
   * The start-up log never shows its value: `true` shows only whether it is set; a function says what of it may
   * be shown (a URL without its password, a key's id).
   */
  secret?: true | ((value: T) => string);
}

/** A setting that always has a value: a fixed default, or one computed from other settings. */
export type RequiredRow<T, View> = RowBase<T> &
  (
    | { default: NoInfer<T>; shown?: undefined; unset?: undefined }
    | {
        /** Each setting it reads is resolved first, in whatever order they depend on each other. */
        default: (settings: View) => NoInfer<T>;
        /** What the README shows as the default. */
        shown: string;
        unset?: undefined;
      }
  );

/** A setting the service does without when it is not set. */
export type OptionalRow<T, View> = RowBase<T> & {
  /** What the README shows as the default. */
  unset: string;
  /** When it is not set, a value computed from other settings, if any. */
  default?: (settings: View) => NoInfer<T> | undefined;
  shown?: undefined;
};

/** A row as the loader and the documentation read it, whatever its type. */
export interface SettingRow {
  name: string;
  kind: SettingType<unknown>;
  /** A value, a function of the other settings, or undefined (unset). */
  default: unknown;
  /** What the README shows as the default. */
  shown: string;
  /** The default as the setting's own text, when it is a single value (not computed, not unset). */
  literal: string | undefined;
  description: string;
  group: string;
  production: ProductionExample | undefined;
  secret: true | ((value: unknown) => string) | undefined;
}

/** The parsed settings a table's checks read. */
export interface CheckedSettings<Values> {
  values: Values;
  /** Set in the environment (to a non-empty value), whether accepted or not. */
  given: ReadonlySet<keyof Values>;
  /** Given but refused: each stands at its default, and has its problem already. */
  refused: ReadonlySet<keyof Values>;
}

/** One table: its rows, the rules that span several of its settings, and the slice of the configuration it builds. */
export interface SettingsTable<Values = unknown, Slice = unknown> {
  readonly rows: readonly SettingRow[];
  /** Every rule that spans several settings, once each is parsed on its own; returns the problems. */
  validate(checked: CheckedSettings<Readonly<Record<string, unknown>>>): string[];
  /** Its part of the configuration, from the values of every setting (refused settings never get this far). */
  config(values: Readonly<Record<string, unknown>>): Slice;
  /** Only a type: the value of each of its settings. */
  readonly valueTypes?: Values;
}

/** An object type written out, so that editors show its members rather than a chain of intersections. */
export type Flatten<T> = { [K in keyof T]: T[K] } & {};

type Check = SettingsTable['validate'];
// The rows' own types are checked by the overloads of `add`; past them, one row is as good as another.
type AnyRow = RequiredRow<any, any> | OptionalRow<any, any>;

class TableBuilder<Needs, Values> {
  constructor(
    private readonly rows: readonly SettingRow[],
    private readonly checks: readonly Check[],
  ) {}

  /** A setting; its name must be new to every table (rowsOf refuses a name twice). */
  add<N extends string, T>(name: N, row: RequiredRow<T, Flatten<Needs & Values>>): TableBuilder<Needs, Values & { [K in N]: T }>;
  add<N extends string, T>(name: N, row: OptionalRow<T, Flatten<Needs & Values>>): TableBuilder<Needs, Values & { [K in N]: T | undefined }>;
  add(name: string, row: AnyRow): TableBuilder<Needs, any> {
    const literal = row.default === undefined || typeof row.default === 'function' ? undefined : row.kind.format(row.default);
    const setting: SettingRow = {
      name,
      kind: row.kind,
      default: row.default,
      shown: row.unset ?? row.shown ?? literal!,
      literal,
      description: row.description,
      group: row.group,
      production: row.production,
      secret: row.secret,
    };
    return new TableBuilder([...this.rows, setting], this.checks);
  }

  /** A rule that spans several settings; each problem it returns names them and says what to set. */
  validate(check: (checked: CheckedSettings<Flatten<Needs & Values>>) => string[]): TableBuilder<Needs, Values> {
    return new TableBuilder(this.rows, [...this.checks, check as unknown as Check]);
  }

  /** The end of the table: its slice of the configuration, built from the parsed values. */
  config<Slice>(build: (values: Flatten<Needs & Values>) => Slice): SettingsTable<Flatten<Values>, Slice> {
    const checks = this.checks;
    return {
      rows: this.rows,
      validate: (checked) => checks.flatMap((check) => check(checked)),
      config: build as unknown as SettingsTable<unknown, Slice>['config'],
    };
  }
}

/** A new table whose computed defaults and checks may read the settings `Needs` (of other tables) besides its own. */
export function settingsTable<Needs = object>(): TableBuilder<Needs, object> {
  return new TableBuilder([], []);
}

export type ValuesOf<Table> = Table extends SettingsTable<infer Values, unknown> ? Values : never;
export type SliceOf<Table> = Table extends SettingsTable<unknown, infer Slice> ? Slice : never;
type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** The configuration that `Tables` build together: every table's slice. */
export type ConfigOf<Tables extends readonly SettingsTable[]> = Flatten<Intersection<SliceOf<Tables[number]>>>;
/** The value of every setting of `Tables`, by name. */
export type SettingValuesOf<Tables extends readonly SettingsTable[]> = Flatten<Intersection<ValuesOf<Tables[number]>>>;

/** `rows` by group, in the order of `groups`, and in table order within one; a group missing from `groups` is a mistake in the code. */
export function inGroupOrder(rows: readonly SettingRow[], groups: readonly string[]): SettingRow[] {
  const unknown = rows.find((row) => !groups.includes(row.group));
  if (unknown) throw new Error(`The setting ${unknown.name} is in the group "${unknown.group}", which is not in the list of groups`);
  return groups.flatMap((group) => rows.filter((row) => row.group === group));
}

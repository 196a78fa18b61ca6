import { dictionary } from '@zxcvbn-ts/language-common';

/** HS256 keys are 256 bits: a shared secret with less randomness is the weakest part of every token. */
export const MIN_SECRET_BITS = 256;
export const GENERATE_SECRET_COMMAND = 'openssl rand -base64 32';

// A repeated run counts when it holds this many bits (5 base64 characters, 7 hex digits), and words and common
// passwords from this length: long enough that a really random 32-byte key written in base64 or hex holds one by
// chance less than once in ten thousand.
const REPEAT_BITS = 28;
const MIN_WORD = 6;
const MIN_COMMON_PASSWORD = 8;

let words: Set<string> | undefined;
function knownWords(): Set<string> {
  words ??= new Set([
    ...dictionary['diceware-common']!.map(String).filter((word) => word.length >= MIN_WORD),
    ...dictionary['passwords-common']!.map(String).filter((word) => word.length >= MIN_COMMON_PASSWORD),
  ].map((word) => word.toLowerCase()));
  return words;
}

/**
 * How much randomness a secret can hold at most, in bits: its length times the bits per character of the
 * smallest usual alphabet it is written in (hex 4, base64 6, any printable character about 6.6). A person's
 * phrase is refused by the checks below before this upper bound could flatter it.
 */
function bitsPerCharacter(secret: string): number {
  const body = secret.replace(/=+$/, '');
  return /^[0-9a-fA-F]+$/.test(body) ? 4 : /^[A-Za-z0-9+/_-]+$/.test(body) ? 6 : Math.log2(95);
}

function repeatedRun(secret: string, runLength: number): string | undefined {
  const earlier = new Set<string>();
  for (let i = 0; i + runLength <= secret.length; i++) {
    // Only runs that end before this one starts: "aaaaa" does not repeat itself, "abcdabcd" does.
    if (i >= runLength) earlier.add(secret.slice(i - runLength, i));
    const run = secret.slice(i, i + runLength);
    if (earlier.has(run)) return run;
  }
  return undefined;
}

function containedWord(secret: string): string | undefined {
  const lower = secret.toLowerCase();
  const known = knownWords();
  for (let start = 0; start < lower.length; start++) {
    for (let end = start + MIN_WORD; end <= lower.length && end - start <= 32; end++) {
      const candidate = lower.slice(start, end);
      if (known.has(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Why `secret` cannot hold 256 bits of randomness, or undefined if it plausibly does. */
export function secretWeakness(secret: string): string | undefined {
  const perCharacter = bitsPerCharacter(secret);
  const bits = Math.floor([...secret.replace(/=+$/, '')].length * perCharacter);
  if (bits < MIN_SECRET_BITS) return `it can hold at most ${bits} bits of randomness, and ${MIN_SECRET_BITS} are needed`;
  const run = repeatedRun(secret, Math.ceil(REPEAT_BITS / perCharacter));
  if (run !== undefined) return `it repeats itself ("${run.slice(0, 2)}…" appears more than once)`;
  const word = containedWord(secret);
  if (word !== undefined) return 'it contains a dictionary word or a common password';
  return undefined;
}

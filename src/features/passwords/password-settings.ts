import { availableParallelism } from 'node:os';
import { integer } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

/** argon2 needs this much memory per lane. */
const ARGON2_KIB_PER_LANE = 8;
/** OWASP's argon2id configurations (KiB, passes), equally strong; production needs one of them or more. */
const OWASP_ARGON2 = [
  { memoryKib: 47_104, timeCost: 1 },
  { memoryKib: 19_456, timeCost: 2 },
  { memoryKib: 12_288, timeCost: 3 },
  { memoryKib: 9_216, timeCost: 4 },
  { memoryKib: 7_168, timeCost: 5 },
] as const;
/** The default: OWASP's second line, which the refusal of a weaker one also suggests. */
const ARGON2_DEFAULT = OWASP_ARGON2[1];

/** How passwords are hashed (argon2id on a pool of threads) and which passwords are accepted. */
export const PASSWORD_SETTINGS = settingsTable<ServiceValues>()
  // The lower bounds let tests hash cheaply; production refuses less than OWASP's minimum (below).
  .add('ARGON2_MEMORY_KIB', {
    kind: integer(64, 4 * 1024 * 1024),
    default: ARGON2_DEFAULT.memoryKib,
    description: 'argon2id memory cost in KiB (OWASP: 19 MiB).',
    group: 'Password hashing',
  })
  .add('ARGON2_TIME_COST', {
    kind: integer(1, 100),
    default: ARGON2_DEFAULT.timeCost,
    description: 'argon2id iterations.',
    group: 'Password hashing',
  })
  .add('ARGON2_PARALLELISM', {
    kind: integer(1, 16),
    default: 1,
    description: 'argon2id lanes.',
    group: 'Password hashing',
  })
  .add('HASH_THREADS', {
    kind: integer(1, 256),
    default: () => availableParallelism(),
    shown: 'the number of CPU cores',
    description: 'Threads that hash passwords, at low priority so that token checks stay fast while logins saturate the CPU.',
    group: 'Password hashing',
  })
  .add('HASH_QUEUE_LIMIT', {
    kind: integer(0, 100_000),
    default: 1000,
    description:
      'A safety cap on the logins and registrations waiting for a hashing thread, whatever their expected wait (which `HASH_QUEUE_MAX_WAIT_MS` bounds long before); beyond it they are answered at once with `503 overloaded`.',
    group: 'Password hashing',
  })
  .add('HASH_QUEUE_MAX_WAIT_MS', {
    kind: integer(0, 600_000),
    default: 2000,
    description:
      "A login or registration is admitted while its expected wait for a hashing thread (the hashes ahead of it × the moving average of a hash's time ÷ `HASH_THREADS`) is under this; beyond it, it is answered at once with `503 overloaded` and a `Retry-After` of that expected wait (at least 1 s). A burst the threads clear within this time is served whole.",
    group: 'Password hashing',
  })
  .add('PASSWORD_MIN_LENGTH', {
    kind: integer(8, 128),
    default: 8,
    description: 'Shortest password accepted (characters after NFKC). No composition rules (NIST SP 800-63B).',
    group: 'Password policy',
  })
  .add('PASSWORD_MIN_SCORE', {
    kind: integer(0, 4),
    default: 0,
    description:
      'Lowest zxcvbn strength score (0–4) accepted for a new password; 0 turns the score check off. Only the first 100 characters are scored, after the cheaper checks and re-authentication. The 49,000 most common passwords and the username are refused regardless.',
    group: 'Password policy',
  })
  .validate(({ values: s }) => {
    const { ARGON2_MEMORY_KIB: memoryKib, ARGON2_TIME_COST: timeCost, ARGON2_PARALLELISM: parallelism } = s;
    if (memoryKib < ARGON2_KIB_PER_LANE * parallelism) {
      return [
        `ARGON2_MEMORY_KIB=${memoryKib} is too little for ARGON2_PARALLELISM=${parallelism}: argon2 needs ${ARGON2_KIB_PER_LANE} KiB per lane, ` +
          `so set ARGON2_MEMORY_KIB to at least ${ARGON2_KIB_PER_LANE * parallelism} or lower ARGON2_PARALLELISM`,
      ];
    }
    if (s.NODE_ENV !== 'production' || OWASP_ARGON2.some((o) => memoryKib >= o.memoryKib && timeCost >= o.timeCost)) return [];
    const enough = OWASP_ARGON2.filter((o) => memoryKib >= o.memoryKib).map((o) => o.timeCost);
    const least = OWASP_ARGON2[OWASP_ARGON2.length - 1]!;
    return [
      (enough.length > 0
        ? `ARGON2_TIME_COST=${timeCost} with ARGON2_MEMORY_KIB=${memoryKib} is weaker than OWASP's minimum for production: set ARGON2_TIME_COST to at least ${Math.min(...enough)}`
        : `ARGON2_MEMORY_KIB=${memoryKib} is below OWASP's minimum for production: set ARGON2_MEMORY_KIB to at least ${least.memoryKib} (with ARGON2_TIME_COST at least ${least.timeCost})`) +
        `, or unset ARGON2_MEMORY_KIB and ARGON2_TIME_COST for ${ARGON2_DEFAULT.memoryKib} KiB and ${ARGON2_DEFAULT.timeCost} passes`,
    ];
  })
  .config((s) => ({
    argon2: { memoryKib: s.ARGON2_MEMORY_KIB, timeCost: s.ARGON2_TIME_COST, parallelism: s.ARGON2_PARALLELISM },
    /**
     * The argon2 threads; a hash is admitted while its expected wait for a thread is under `maxWaitMs`, and
     * never beyond `queueLimit` waiting hashes; the excess is answered 503.
     */
    hashing: { threads: s.HASH_THREADS, queueLimit: s.HASH_QUEUE_LIMIT, maxWaitMs: s.HASH_QUEUE_MAX_WAIT_MS },
    passwordPolicy: { minLength: s.PASSWORD_MIN_LENGTH, minScore: s.PASSWORD_MIN_SCORE },
  }));

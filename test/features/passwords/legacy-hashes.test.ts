import argon2 from '@node-rs/argon2';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change, json, login, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

const PASSWORD = 'correct horse battery';
const UNICODE_PASSWORD = 'Pässwörd ñ 日本語';

/**
 * Werkzeug-format hashes computed by Python's hashlib (what Werkzeug itself calls), not by Node: an independent
 * implementation. Generated with, e.g.:
 *   python3 -c "import hashlib; print(hashlib.scrypt(b'correct horse battery', salt=b'Hq2Ls9DkXw4MvT7p',
 *               n=32768, r=8, p=1, maxmem=132*32768*8).hex())"
 */
const WERKZEUG_VECTORS: [string, string, string][] = [
  [
    'Werkzeug 3.1 default: scrypt',
    PASSWORD,
    'scrypt:32768:8:1$Hq2Ls9DkXw4MvT7p$169c408d62bacaeb5845e592e77a4cd95bb94e8baba3c7b786570d4e6e8457f55e43fefe923b5f18a042e83265a8bba4fbd28726f6e435b63eb7d040e6d6712b',
  ],
  [
    'scrypt, non-ASCII password',
    UNICODE_PASSWORD,
    'scrypt:32768:8:1$Aa0Bb1Cc2Dd3Ee4F$2189f7ad9c048adedab7e7472ee335be3428a3e7b0d426bd65c3f051bd0db20c7d1ac077de1c327fac5cdf57a5c62f1411278f919cf9a4dc8ec095585124ed8b',
  ],
  ['Werkzeug 3.0: pbkdf2 sha256, 600000 rounds', PASSWORD, 'pbkdf2:sha256:600000$NtXr4GqYh2mWcB8z$632c45218ce06466235ac27b60f7ebdecf90d863f102c8ebd5b5715710d22d52'],
  ['Werkzeug 2.x: pbkdf2 sha256, 260000 rounds', PASSWORD, 'pbkdf2:sha256:260000$NtXr4GqYh2mWcB8z$7786295f1e1dd729cbdea93df59287cf493ca38985005fdb2858af5864383fbe'],
  [
    'pbkdf2 sha512',
    PASSWORD,
    'pbkdf2:sha512:210000$Zq81LkWm0pVtRr5e$c1f4aaf44b9ee825dd775c1d69c32b2014cc62c869fb6794f4d65c0d4063d718ffcb9295c4d944c003c051043bf1ac4f6756598264e4d5b7fff5920551b6deff',
  ],
  ['pbkdf2, non-ASCII password', UNICODE_PASSWORD, 'pbkdf2:sha256:600000$Aa0Bb1Cc2Dd3Ee4F$6465daf9c15537458ca238a7624b3686bda6454f202edab32b7176b2946e5430'],
];

let t: TestApp;
beforeAll(async () => {
  // The app's own argon2 parameters: hashes are upgraded to them, and checked against them.
  t = await startTestApp({}, { cheapHashing: false });
});
afterAll(() => t.close());

/** A user as an import from another system leaves it: a row with that system's hash. */
async function insertUser(passwordHash: string): Promise<{ id: string; username: string }> {
  const username = uniqueName('legacy');
  const [row] = await t.db.query<{ id: string | number }>(
    'INSERT INTO users (username, username_normalized, password_hash) VALUES ($1, $1, $2) RETURNING id',
    [username, passwordHash],
  );
  return { id: String(row!.id), username };
}

async function storedHash(id: string): Promise<string> {
  const [row] = await t.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [id]);
  return row!.password_hash;
}

const CURRENT_ARGON2 = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;

describe('logging in with a hash from another system', () => {
  const bcryptVectors: [string, string, () => string][] = [
    ['bcrypt $2b$ (bcryptjs, cost 10)', PASSWORD, () => bcrypt.hashSync(PASSWORD, 10)],
    ['bcrypt $2a$ (bcryptjs, cost 8), non-ASCII password', UNICODE_PASSWORD, () => bcrypt.hashSync(UNICODE_PASSWORD, bcrypt.genSaltSync(8).replace(/^\$2b\$/, '$2a$'))],
    // PHP's password_hash() writes $2y$; the same algorithm.
    ['bcrypt $2y$ (as PHP writes it)', PASSWORD, () => bcrypt.hashSync(PASSWORD, 8).replace(/^\$2b\$/, '$2y$')],
  ];
  const cases: [string, string, () => string][] = [...WERKZEUG_VECTORS.map(([n, p, h]): [string, string, () => string] => [n, p, () => h]), ...bcryptVectors];

  it.each(cases)('%s: a wrong password is refused, the right one signs in and the hash becomes argon2id', async (_name, password, makeHash) => {
    const hash = makeHash();
    const user = await insertUser(hash);

    const wrong = await login(t.app, user.username, `${password}x`);
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)['error']).toBe('invalid_credentials');
    expect(await storedHash(user.id)).toBe(hash);

    const right = await login(t.app, user.username, password);
    expect(right.statusCode).toBe(200);
    expect(await storedHash(user.id)).toMatch(CURRENT_ARGON2);
    // The new hash works, and it is still the same password.
    expect((await login(t.app, user.username, password)).statusCode).toBe(200);
    expect((await login(t.app, user.username, `${password}x`)).statusCode).toBe(401);
  });

  it('refuses a tampered or absurd legacy hash with 401, never a 500 or a stall', async () => {
    const [, , scryptHash] = WERKZEUG_VECTORS[0]!;
    for (const hash of [
      scryptHash.replace(/.$/, (c) => (c === '0' ? '1' : '0')), // last digit changed
      'scrypt:1073741824:8:1$salt$00', // 1 TiB of memory asked for
      'pbkdf2:sha256:999999999$salt$00', // a billion rounds
      'pbkdf2:md4:1000$salt$00',
      'plain text password',
    ]) {
      const user = await insertUser(hash);
      const response = await login(t.app, user.username, PASSWORD);
      expect(response.statusCode).toBe(401);
      expect(await storedHash(user.id)).toBe(hash);
    }
  });
});

describe('argon2 hashes made with weaker parameters', () => {
  it.each([
    ['argon2id with less memory and fewer passes', { algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 }],
    ['argon2i', { algorithm: 1, memoryCost: 19456, timeCost: 2, parallelism: 1 }],
  ])('%s: upgraded on the next login', async (_name, options) => {
    const weak = await argon2.hash(PASSWORD, options as never);
    const user = await insertUser(weak);

    expect((await login(t.app, user.username, PASSWORD)).statusCode).toBe(200);

    expect(await storedHash(user.id)).toMatch(CURRENT_ARGON2);
  });

  it('leaves a hash with the current parameters alone', async () => {
    const current = await argon2.hash(PASSWORD, { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 } as never);
    const user = await insertUser(current);
    expect((await login(t.app, user.username, PASSWORD)).statusCode).toBe(200);
    expect(await storedHash(user.id)).toBe(current);
  });
});

describe('current_password against a legacy hash', () => {
  it('is verified with the legacy algorithm when the password is changed', async () => {
    const [, , hash] = WERKZEUG_VECTORS[2]!;
    const user = await insertUser(hash);
    const { access_token: token } = json(await login(t.app, user.username, PASSWORD));
    // Put the legacy hash back, as for a user whose session began before the upgrade existed.
    await t.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [user.id, hash]);
    const NEW = 'a brand new passphrase';

    const wrong = await change(t.app, { new_password: NEW, new_password_confirm: NEW, current_password: 'wrong' }, token);
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)['error']).toBe('invalid_credentials');
    expect(await storedHash(user.id)).toBe(hash);

    const right = await change(t.app, { new_password: NEW, new_password_confirm: NEW, current_password: PASSWORD }, token);
    expect(right.statusCode).toBe(200);
    expect(await storedHash(user.id)).toMatch(CURRENT_ARGON2);
    expect((await login(t.app, user.username, NEW)).statusCode).toBe(200);
  });
});
